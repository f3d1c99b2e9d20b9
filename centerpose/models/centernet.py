"""CenterNet = backbone + neck + heads, and the one factory that builds every supported network."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import timm
import torch
from torch import nn

from centerpose.keypoints import COCO_PERSON, KeypointSpec
from centerpose.models import hourglass as _hourglass  # noqa: F401  (registers the "hourglass" backbone)
from centerpose.models.backbones import create_backbone, list_backbones
from centerpose.models.heads import CenterNetHeads, pose_heads
from centerpose.models.necks import DLAUpNeck, ResNetDeconvNeck

# Our names for the original architectures, and the aliases accepted for them.
ARCH_ALIASES: dict[str, str] = {
    "dla34": "dla34", "dla": "dla34", "dla_34": "dla34",
    "resnet50": "res_50", "res_50": "res_50", "res": "res_50",
    "resdcn_50": "resdcn_50", "resdcn50": "resdcn_50",
    "hourglass": "hourglass", "hourglass104": "hourglass", "hg": "hourglass",
}


class CenterNet(nn.Module):
    """A CenterNet: ``heads(neck(backbone(x)))``, one output dict per stack.

    Args:
        backbone: returns a list of feature maps.
        neck: maps that list to one stride-4 map, or to a list with one map per stack (Hourglass).
        heads: :class:`CenterNetHeads`.
        arch: the architecture name it was built as (informational).

    Attributes:
        heads_spec: ``{head: channels}`` in output order.
        num_stacks: number of output dicts.
        down_ratio: output stride (always 4).
    """

    down_ratio = 4

    def __init__(self, backbone: nn.Module, neck: nn.Module, heads: CenterNetHeads, arch: str = "") -> None:
        super().__init__()
        self.backbone = backbone
        self.neck = neck
        self.heads = heads
        self.arch = arch

    @property
    def heads_spec(self) -> dict[str, int]:
        return dict(self.heads.heads)

    @property
    def num_stacks(self) -> int:
        return self.heads.num_stacks

    def forward(self, x: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """Run the network.

        Args:
            x: (B, 3, H, W) normalised images (H, W multiples of 32; 128 for Hourglass).

        Returns:
            One dict per stack (the last is the one used at test time) of raw logits
            ``{head: (B, C_head, H/4, W/4)}`` in ``heads_spec`` order.
        """
        y = self.neck(self.backbone(x))
        return self.heads(list(y) if isinstance(y, (list, tuple)) else [y])


def valid_backbones() -> list[str]:
    """Names :func:`build_model` accepts besides any timm model name."""
    return sorted(set(ARCH_ALIASES) | set(list_backbones()))


def canonical_arch(name: str) -> str:
    """Map an alias (``dla``, ``res_50``, ...) to our architecture name; timm names pass through."""
    return ARCH_ALIASES.get(name, name)


def build_model(backbone: str = "dla34", heads: Mapping[str, int] | None = None,
                keypoints: KeypointSpec = COCO_PERSON, pretrained: bool = False,
                pretrained_file: str | Path | None = None, head_conv: int | None = None,
                use_dcn: bool | None = None, pretrained_tag: str | None = None, **neck_kwargs) -> CenterNet:
    """Build a CenterNet for multi-person pose (or any head set).

    Architectures:
        - ``dla34`` (``dla``, ``dla_34``): timm DLA-34 + DLA-up neck with DCNs; head_conv 256, dla head init.
        - ``resnet50`` (``res_50``): timm ResNet-50 + 3× deconv neck (256); head_conv 64, res head init,
          heads registered in sorted order (as the original).
        - ``resdcn_50``: ResNet-50 + DCN/deconv neck (256, 128, 64); head_conv 64, resdcn head init.
        - ``hourglass``: Hourglass-104, 2 stacks, 256-wide heads (``head_conv`` is ignored, as the original).
        - any other timm model name: timm ``features_only`` levels from stride 4 + DLA-up neck with plain convs
          (``use_dcn=True`` puts DCNs in); head_conv 256, dla head init.

    Args:
        backbone: architecture or timm model name.
        heads: ``{name: channels}``; default :func:`pose_heads` of ``keypoints``.
        keypoints: skeleton used for the default heads.
        pretrained: ImageNet weights from the timm hub (``dla34.in1k``, ``resnet50.tv_in1k``, ...).
        pretrained_tag: which hub weights of the architecture (timm's tag, e.g. ``tv_in1k``, ``a1_in1k``);
            None = the original's ImageNet start (``dla34.in1k``, ``resnet50.tv_in1k``) or timm's default. The
            tag is kept apart from ``backbone``: the architecture name alone decides the network.
        pretrained_file: local backbone weights file (timm key names), for machines without hub access.
        head_conv: width of each head's 3×3 conv; None = the architecture's default.
        use_dcn: DCNs in the DLA-up neck; None = True for dla34, False for other timm backbones. Ignored
            by res_50 / resdcn_50 / hourglass, whose names fix it.
        **neck_kwargs: passed to the neck (``num_filters`` for the ResNet necks) or, for Hourglass, to
            the backbone (``num_stacks``, ...).

    Raises:
        ValueError: unknown backbone name (the message lists the choices), or an original architecture
            named with a weights tag (``resnet50.tv_in1k``), which would otherwise fall through to timm's
            generic network.
    """
    arch = canonical_arch(backbone)
    base, dot, tag = backbone.partition(".")
    if dot and base in ARCH_ALIASES:
        raise ValueError(f"backbone {backbone!r}: a weights tag in the name would build timm's generic {base} "
                         f"network, not the original {canonical_arch(base)}; pass backbone={base!r} and "
                         f"pretrained_tag={tag!r}")
    if pretrained_tag is not None and arch == "hourglass":
        raise ValueError(f"hourglass has no hub weights to pick a tag from (pretrained_tag={pretrained_tag!r})")
    tag_kw = {} if pretrained_tag is None else {"pretrained_tag": pretrained_tag}
    heads = dict(heads) if heads is not None else pose_heads(keypoints)
    if arch == "dla34":
        bb = create_backbone("dla34", pretrained=pretrained, pretrained_file=pretrained_file, **tag_kw)
        neck = DLAUpNeck(bb.channels, bb.reductions, use_dcn=True if use_dcn is None else use_dcn, **neck_kwargs)
        hc, style, sorted_reg = 256, "dla", False
    elif arch in ("res_50", "resdcn_50"):
        bb = create_backbone("resnet50", pretrained=pretrained, pretrained_file=pretrained_file, **tag_kw)
        neck = ResNetDeconvNeck(bb.channels[-1], use_dcn=arch == "resdcn_50", **neck_kwargs)
        hc, style, sorted_reg = 64, ("res" if arch == "res_50" else "resdcn"), arch == "res_50"
    elif arch == "hourglass":
        bb = create_backbone("hourglass", pretrained=pretrained, pretrained_file=pretrained_file, **neck_kwargs)
        heads_mod = CenterNetHeads(bb.out_channels, heads, bb.out_channels, init_style="hourglass",
                                   num_stacks=bb.num_stacks)
        return CenterNet(bb, nn.Identity(), heads_mod, arch=arch)
    elif arch in list_backbones() or timm.is_model(arch):
        bb = create_backbone(arch, pretrained=pretrained, pretrained_file=pretrained_file, min_reduction=4,
                             **tag_kw)
        if bb.reductions[0] != 4:
            raise ValueError(f"backbone {backbone!r} has no stride-4 feature level (strides {bb.reductions})")
        neck = DLAUpNeck(bb.channels, bb.reductions, use_dcn=bool(use_dcn), **neck_kwargs)
        hc, style, sorted_reg = 256, "dla", False
    else:
        raise ValueError(f"unknown backbone {backbone!r}; choose one of {valid_backbones()} or any timm model "
                         f"name (timm.list_models())")
    head_conv = hc if head_conv is None else head_conv
    heads_mod = CenterNetHeads(neck.out_channels, heads, head_conv, init_style=style,
                               sorted_registration=sorted_reg)
    return CenterNet(bb, neck, heads_mod, arch=arch)

