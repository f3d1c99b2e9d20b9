"""The architecture registry: every entry builds what it says, aliases resolve, unknown names list the choices."""

from __future__ import annotations

import pytest
import torch

from centerpose.models import build_model
from centerpose.models.registry import (
    ARCH_ALIASES,
    ARCHITECTURES,
    TIMM,
    canonical_arch,
    get_arch,
    original_arch,
    valid_backbones,
)


@pytest.mark.parametrize("name", [*ARCHITECTURES, "resnet18"])
def test_every_entry_builds_its_network(name):
    spec = get_arch(name)
    with torch.device("meta"):  # shapes only: Hourglass-104 costs nothing
        net = build_model(name)
    assert net.arch == (name if spec is TIMM else spec.name)
    width = spec.head_conv or net.backbone.out_channels
    first_conv = next(m for m in net.heads.modules() if isinstance(m, torch.nn.Conv2d))
    assert first_conv.out_channels == width
    # the original res_50 registers its heads in sorted order; outputs keep the pose order either way
    registered = [n for n, _ in net.heads.named_children()]
    assert registered == (sorted(net.heads_spec) if spec.sorted_heads else list(net.heads_spec))
    assert spec.test_pad + 1 == spec.input_multiple and spec.input_multiple % 32 == 0


def test_aliases_resolve_to_one_entry():
    for alias, name in ARCH_ALIASES.items():
        assert get_arch(alias) is ARCHITECTURES[name] and canonical_arch(alias) == name
    assert canonical_arch("convnext_nano") == "convnext_nano" and get_arch("convnext_nano") is TIMM
    assert get_arch("hg").test_pad == 127 and get_arch("resnet50").test_pad == 31
    assert get_arch("res").head_conv == 64 and get_arch("dla").head_conv == 256


def test_unknown_names_list_the_choices():
    with pytest.raises(ValueError, match="unknown backbone 'nope'") as err:
        get_arch("nope")
    assert all(name in str(err.value) for name in valid_backbones())
    with pytest.raises(ValueError, match="pretrained_tag='tv_in1k'"):
        get_arch("resnet50.tv_in1k")
    with pytest.raises(ValueError, match="no original checkpoint layout for arch 'resnet18'") as err:
        original_arch("resnet18")
    assert all(name in str(err.value) for name in ARCHITECTURES)
    with pytest.raises(ValueError, match="no hub weights"):
        build_model("hourglass", pretrained_tag="in1k")


def test_conversion_overrides_build_the_entry():
    """The train-config overrides an entry names (used by centerpose.convert) build that entry's network."""
    import hydra

    from centerpose.config import compose

    for name, spec in ARCHITECTURES.items():
        cfg = compose("train", list(spec.config_overrides))
        with torch.device("meta"):
            net = hydra.utils.instantiate(cfg.model.net, pretrained=False, pretrained_file=None)
        assert net.arch == name
