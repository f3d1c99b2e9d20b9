"""Backbones: timm ``features_only`` models plus a small registry for our own trunks.

Every backbone returns a list of feature maps and exposes ``channels`` and ``reductions`` (one entry
per returned map, read from timm's ``feature_info``, never from a table), so necks and heads size
themselves from the backbone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import timm
import torch
from torch import nn

# the leaf reader (the checkpoints package imports its model-aware modules lazily)
from centerpose.checkpoints.reader import read_tensors

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register_backbone(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: register a backbone factory ``fn(pretrained=False, pretrained_file=None, **kw)``."""

    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"backbone {name!r} is already registered")
        _REGISTRY[name] = fn
        return fn

    return deco


def list_backbones() -> list[str]:
    """Names registered here (timm model names are accepted on top of these)."""
    return sorted(_REGISTRY)


def create_backbone(
    name: str, pretrained: bool = False, pretrained_file: str | Path | None = None, **kwargs
) -> nn.Module:
    """Build a registered backbone, or any timm model as :class:`TimmBackbone`.

    Raises:
        ValueError: ``name`` is neither registered nor a timm model.
    """
    if name in _REGISTRY:
        return _REGISTRY[name](pretrained=pretrained, pretrained_file=pretrained_file, **kwargs)
    if timm.is_model(name):
        tag = kwargs.pop("pretrained_tag", None)
        name = name if tag is None else f"{name}.{tag}"
        return TimmBackbone(name, pretrained=pretrained, pretrained_file=pretrained_file, **kwargs)
    raise ValueError(
        f"unknown backbone {name!r}; registered: {list_backbones()}, or any timm model name (see timm.list_models())"
    )


def read_weights_file(path: str | Path) -> dict[str, torch.Tensor]:
    """A local weights file's tensors (``.safetensors`` or torch, ``weights_only=True``), through the one reader.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file holds no tensor dict.
    """
    return read_tensors(path, what="pretrained weights file")


class TimmBackbone(nn.Module):
    """A timm model in ``features_only`` mode.

    Args:
        name: timm model name, optionally with a pretrained tag (``resnet50.tv_in1k``).
        pretrained: fetch timm's hub weights (needs network access).
        pretrained_file: a local weights file (timm key names) loaded after construction, for
            air-gapped machines; takes precedence over ``pretrained``.
        out_indices: feature levels to compute (timm's default when None).
        min_reduction: return only levels at this stride or deeper (e.g. 4 to drop a stride-2 stem level).
        **timm_kwargs: passed to ``timm.create_model``.

    Attributes:
        body: the timm feature model (its keys are the timm model's keys).
        channels: channels of each returned map.
        reductions: stride of each returned map.
    """

    def __init__(
        self,
        name: str,
        pretrained: bool = False,
        pretrained_file: str | Path | None = None,
        out_indices: Sequence[int] | None = None,
        min_reduction: int = 1,
        **timm_kwargs,
    ) -> None:
        super().__init__()
        if out_indices is not None:
            timm_kwargs["out_indices"] = tuple(out_indices)
        use_hub = pretrained and pretrained_file is None
        try:
            self.body = timm.create_model(name, features_only=True, pretrained=use_hub, **timm_kwargs)
        except Exception as e:  # hub errors come in many types (HTTP, offline mode, missing file)
            if not use_hub:
                raise
            raise RuntimeError(
                f"could not fetch pretrained weights for timm model {name!r} ({e}); on a machine "
                f"without hub access pass pretrained_file=<local weights file>"
            ) from e
        self.name = name
        info = self.body.feature_info
        self.keep = [i for i, r in enumerate(info.reduction()) if r >= min_reduction]
        if not self.keep:
            raise ValueError(
                f"timm model {name!r} has no feature level with stride >= {min_reduction} (strides {info.reduction()})"
            )
        self.channels: list[int] = [info.channels()[i] for i in self.keep]
        self.reductions: list[int] = [info.reduction()[i] for i in self.keep]
        if pretrained_file is not None:
            self.load_pretrained_file(pretrained_file)

    def load_pretrained_file(self, path: str | Path) -> None:
        """Load timm-named weights; keys of the full model that features_only dropped are ignored.

        Raises:
            ValueError: a backbone tensor is missing from the file or has another shape.
        """
        sd = read_weights_file(path)
        optional = self.optional_keys()
        picked: dict[str, torch.Tensor] = {}
        for key, ref in self.state_dict().items():
            src = sd.get(key.removeprefix("body."), sd.get(key))
            if src is None:
                if key in optional or key.endswith("num_batches_tracked"):
                    continue
                raise ValueError(f"{path}: no tensor for backbone key {key!r}")
            if src.shape != ref.shape:
                raise ValueError(f"{path}: {key!r} has shape {tuple(src.shape)}, backbone expects {tuple(ref.shape)}")
            picked[key] = src
        self.load_state_dict(picked, strict=False)

    def optional_keys(self) -> set[str]:
        """Keys a weights file may lack (they keep their fresh init)."""
        return set()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Args: x: (B, 3, H, W). Returns: one (B, channels[i], H/r_i, W/r_i) map per level."""
        feats = self.body(x)
        return [feats[i] for i in self.keep]


class DLA34Backbone(TimmBackbone):
    """timm DLA-34 at strides 4..32 with the original's unused tensors reinstated (QUIRK 2.8.1/2).

    ``level3.project`` / ``level4.project`` are computed by timm's tree and thrown away, exactly as in
    the original; ``fc`` is never called. They exist so the tensor set equals the original ``base.*``
    (236 keys) one to one, and their BN statistics drift in training as the original's do.
    """

    def __init__(
        self,
        name: str = "dla34",
        pretrained: bool = False,
        pretrained_file: str | Path | None = None,
        out_indices: Sequence[int] = (2, 3, 4, 5),
        keep_unused: bool = True,
        **timm_kwargs,
    ) -> None:
        # fc and the dead projections must exist before a local file (which may hold them) is loaded
        super().__init__(name, pretrained=pretrained, pretrained_file=None, out_indices=out_indices, **timm_kwargs)
        if keep_unused:
            for level in ("level3", "level4"):
                tree = getattr(self.body, level)
                cin, cout = tree.tree1.tree1.conv1.in_channels, tree.tree1.tree1.conv1.out_channels
                tree.project = nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))
            self.fc = nn.Conv2d(self.body.level5.root.conv.out_channels, 1000, 1, bias=True)
        if pretrained_file is not None:
            self.load_pretrained_file(pretrained_file)

    def optional_keys(self) -> set[str]:
        """timm's DLA files lack the unused tensors; the original's ``dla34-ba72cf86`` has them."""
        return {k for k in self.state_dict() if k.startswith(("fc.", "body.level3.project.", "body.level4.project."))}


@register_backbone("dla34")
def dla34(
    pretrained: bool = False, pretrained_file: str | Path | None = None, pretrained_tag: str = "in1k", **kwargs
) -> DLA34Backbone:
    """DLA-34 (timm ``dla34.in1k`` weights, the original's ImageNet start) at strides 4, 8, 16, 32."""
    name = f"dla34.{pretrained_tag}" if pretrained else "dla34"
    return DLA34Backbone(name, pretrained=pretrained, pretrained_file=pretrained_file, **kwargs)


@register_backbone("resnet50")
def resnet50(
    pretrained: bool = False, pretrained_file: str | Path | None = None, pretrained_tag: str = "tv_in1k", **kwargs
) -> TimmBackbone:
    """ResNet-50 at stride 32 only, with torchvision's V1 weights (the original's ImageNet start) by default."""
    kwargs.setdefault("out_indices", (4,))
    name = f"resnet50.{pretrained_tag}" if pretrained else "resnet50"
    return TimmBackbone(name, pretrained=pretrained, pretrained_file=pretrained_file, **kwargs)
