"""Original-checkpoint conversion: every key of the original's four networks lands 1:1 in ours."""

from __future__ import annotations

import ast

import pytest
import torch
from conftest import KEYS_DIR

from centerpose.convert import (
    convert_original_state_dict,
    load_matching,
    load_original_checkpoint,
    original_to_ours,
    to_original_state_dict,
)
from centerpose.models import build_model

ARCHS = {"dla_34": "dla34", "res_50": "res_50", "resdcn_50": "resdcn_50", "hourglass": "hourglass"}
_MODELS: dict[str, torch.nn.Module] = {}


def original_keys(arch: str) -> dict[str, tuple[int, ...]]:
    path = KEYS_DIR / f"keys_{arch}.txt"
    if not path.is_file():
        pytest.skip(f"key list not found: {path}")
    keys = {}
    for line in path.read_text().splitlines():
        name, shape = line.split()
        keys[name] = ast.literal_eval(shape)
    return keys


def fake_state_dict(keys: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        k: (
            torch.randint(0, 100, (), generator=g) if k.endswith("num_batches_tracked") else torch.randn(s, generator=g)
        )
        for k, s in keys.items()
    }


def model_for(arch: str) -> torch.nn.Module:
    if arch not in _MODELS:  # Hourglass takes seconds to build; build each network once
        _MODELS[arch] = build_model(ARCHS[arch])
    return _MODELS[arch]


@pytest.mark.parametrize("arch", list(ARCHS))
def test_original_keys_load_strictly(arch):
    keys = original_keys(arch)
    fake = fake_state_dict(keys)
    ours = convert_original_state_dict(fake, arch)
    model = model_for(arch)
    own = model.state_dict()
    assert set(ours) == set(own)  # nothing missing, nothing left over
    assert all(tuple(own[k].shape) == tuple(v.shape) for k, v in ours.items())
    model.load_state_dict(ours, strict=True)
    loaded = model.state_dict()
    assert all(torch.equal(loaded[original_to_ours(k, arch)], v) for k, v in fake.items())
    back = to_original_state_dict(loaded, arch)
    assert set(back) == set(keys) and all(tuple(back[k].shape) == keys[k] for k in keys)


def test_key_mapping_examples():
    assert original_to_ours("base.level3.project.0.weight", "dla_34") == "backbone.body.level3.project.0.weight"
    assert original_to_ours("base.fc.weight", "dla") == "backbone.fc.weight"
    assert original_to_ours("dla_up.ida_0.up_1.weight", "dla34") == "neck.dla_up.ida_0.up_1.weight"
    assert (
        original_to_ours("ida_up.node_2.conv.conv_offset_mask.bias", "dla_34")
        == "neck.ida_up.node_2.conv.conv_offset_mask.bias"
    )
    assert original_to_ours("hm.2.bias", "dla_34") == "heads.hm.2.bias"
    assert original_to_ours("layer4.2.bn3.weight", "res_50") == "backbone.body.layer4.2.bn3.weight"
    assert original_to_ours("deconv_layers.0.weight", "resdcn_50") == "neck.deconv_layers.0.weight"
    assert original_to_ours("inters_.0.1.bias", "hourglass") == "backbone.inters_.0.1.bias"
    assert original_to_ours("hm.1.0.conv.weight", "hourglass") == "heads.hm.1.0.conv.weight"
    with pytest.raises(ValueError, match="no original checkpoint layout"):
        original_to_ours("hm.0.weight", "convnext_nano")


def test_module_and_tensorboy_prefixes():
    sd = {"module.base.base_layer.0.weight": torch.zeros(1), "module.hm.0.bias": torch.zeros(1)}
    assert set(convert_original_state_dict(sd, "dla_34")) == {"backbone.body.base_layer.0.weight", "heads.hm.0.bias"}
    tb = {"backbone_model.layer1.0.conv1.weight": torch.zeros(1), "head_model.wh.2.bias": torch.zeros(1)}
    assert set(convert_original_state_dict(tb, "res_50")) == {"backbone.body.layer1.0.conv1.weight", "heads.wh.2.bias"}


@pytest.mark.parametrize("arch", ["dla_34", "res_50"])
def test_ctdet_checkpoint_into_multi_pose(arch):
    """§2.5: a ctdet file has hm (80), wh, reg only: hm's output conv is skipped, pose heads missing."""
    keys = original_keys(arch)
    last = "hm.2"
    ctdet = {k: s for k, s in keys.items() if not k.startswith(("hps.", "hm_hp.", "hp_offset."))}
    ctdet[f"{last}.weight"] = (80,) + keys[f"{last}.weight"][1:]
    ctdet[f"{last}.bias"] = (80,)
    fake = fake_state_dict(ctdet)
    model = model_for(arch)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = load_matching(model, convert_original_state_dict(fake, arch))
    assert sorted(k for k, *_ in report.skipped) == ["heads.hm.2.bias", "heads.hm.2.weight"]
    assert ("heads.hm.2.weight", (80, 64 if arch == "res_50" else 256, 1, 1)) == report.skipped[
        [k for k, *_ in report.skipped].index("heads.hm.2.weight")
    ][:2]
    assert report.unexpected == []
    assert sorted(report.missing) == sorted(
        k for k in before if k.startswith(("heads.hps.", "heads.hm_hp.", "heads.hp_offset."))
    )
    after = model.state_dict()
    assert torch.equal(after["heads.hm.2.weight"], before["heads.hm.2.weight"])
    assert torch.equal(after["heads.wh.0.weight"], fake["wh.0.weight"])
    assert len(report.loaded) == len(ctdet) - 2 == (400 if arch == "dla_34" else 348) - 2


def test_load_original_checkpoint(tmp_path):
    keys = original_keys("res_50")
    fake = fake_state_dict(keys)
    for i, legacy in enumerate((False, True)):
        path = tmp_path / f"model_{i}.pth"
        torch.save(
            {
                "epoch": 230,
                "state_dict": {"module." + k: v for k, v in fake.items()},
                "optimizer": {"state": {}, "param_groups": [{"lr": 5e-4, "params": [0]}]},
            },
            path,
            _use_new_zipfile_serialization=not legacy,
        )
        ckpt = load_original_checkpoint(path, "res_50")
        assert ckpt.epoch == 230
        assert torch.equal(ckpt.state_dict["neck.deconv_layers.0.weight"], fake["deconv_layers.0.weight"])
        assert len(ckpt.state_dict) == len(keys)
    torch.save([1, 2], tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="bad.pth"):
        load_original_checkpoint(tmp_path / "bad.pth", "res_50")
    with pytest.raises(FileNotFoundError):
        load_original_checkpoint(tmp_path / "missing.pth", "res_50")
