"""CenterNet = backbone + neck + heads, and the one factory that builds every supported network."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch
from torch import nn

from centerpose.keypoints import COCO_PERSON, KeypointSpec
from centerpose.models.heads import CenterNetHeads, pose_heads
from centerpose.models.registry import ArchSpec, get_arch, named_neck


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


def build_model(
    backbone: str = "dla34",
    heads: Mapping[str, int] | None = None,
    keypoints: KeypointSpec = COCO_PERSON,
    pretrained: bool = False,
    pretrained_file: str | Path | None = None,
    head_conv: int | None = None,
    use_dcn: bool | None = None,
    pretrained_tag: str | None = None,
    joint_offsets: str = "shared",
    neck: str | None = None,
    neck_width: int = 64,
    **options,
) -> CenterNet:
    """Build a CenterNet for multi-person pose (or any head set): one registry lookup, one builder.

    Architectures (:mod:`centerpose.models.registry`):
        - ``dla34`` (``dla``, ``dla_34``): timm DLA-34 + DLA-up neck with DCNs; head_conv 256, dla head init.
        - ``resnet50`` (``res_50``): timm ResNet-50 + 3× deconv neck (256); head_conv 64, res head init,
          heads registered in sorted order (as the original).
        - ``resdcn_50``: ResNet-50 + DCN/deconv neck (256, 128, 64); head_conv 64, resdcn head init.
        - ``hourglass``: Hourglass-104, 2 stacks, 256-wide heads (``head_conv`` is ignored, as the original).
        - any other timm model name: timm ``features_only`` levels from stride 4 + DLA-up neck with plain convs
          (``use_dcn=True`` puts DCNs in); head_conv 256, dla head init.

    Args:
        backbone: architecture or timm model name.
        heads: ``{name: channels}``; default :func:`pose_heads` of ``keypoints`` and ``joint_offsets``.
        keypoints: skeleton used for the default heads.
        pretrained: ImageNet weights from the timm hub (``dla34.in1k``, ``resnet50.tv_in1k``, ...).
        pretrained_tag: which hub weights of the architecture (timm's tag, e.g. ``tv_in1k``, ``a1_in1k``);
            None = the original's ImageNet start (``dla34.in1k``, ``resnet50.tv_in1k``) or timm's default. The
            tag is kept apart from ``backbone``: the architecture name alone decides the network.
        pretrained_file: local backbone weights file (timm key names), for machines without hub access.
        head_conv: width of each head's 3×3 conv; None = the architecture's default.
        use_dcn: DCNs in the DLA-up neck; None = True for dla34, False for other timm backbones. Ignored
            by res_50 / resdcn_50 / hourglass, whose names fix it.
        joint_offsets: ``shared`` (``hp_offset`` 2, the original) or ``per_joint`` (``hp_offset`` 2J); see
            :func:`pose_heads`. Ignored when ``heads`` is given.
        neck: None = the architecture's own neck; ``dla_up`` or ``fpn`` (a top-down pyramid of
            ``neck_width`` channels) on any backbone with feature levels that double in stride (timm models,
            DLA-34); see :func:`~centerpose.models.registry.named_neck`.
        neck_width: the ``fpn`` neck's channels.
        **options: passed to the architecture's own neck (``num_filters`` for the ResNet necks) or, for
            Hourglass, to the backbone (``num_stacks``, ...).

    Raises:
        ValueError: unknown backbone name (the message lists the choices), or an original architecture
            named with a weights tag (``resnet50.tv_in1k``), which would otherwise fall through to timm's
            generic network.
    """
    spec = get_arch(backbone)
    return build_from_spec(
        spec,
        backbone,
        heads=dict(heads) if heads is not None else pose_heads(keypoints, joint_offsets=joint_offsets),
        pretrained=pretrained,
        pretrained_file=pretrained_file,
        head_conv=head_conv,
        use_dcn=use_dcn,
        pretrained_tag=pretrained_tag,
        neck=neck,
        neck_width=neck_width,
        **options,
    )


def build_from_spec(
    spec: ArchSpec,
    name: str,
    heads: Mapping[str, int],
    pretrained: bool = False,
    pretrained_file: str | Path | None = None,
    head_conv: int | None = None,
    use_dcn: bool | None = None,
    pretrained_tag: str | None = None,
    neck: str | None = None,
    neck_width: int = 64,
    **options,
) -> CenterNet:
    """The generic builder: ``spec``'s backbone, then its neck (or the ``neck`` named), then heads sized from
    the neck (in this order, so a seeded build draws the same random init as the original's)."""
    if pretrained_tag is not None and not spec.hub_weights:
        raise ValueError(f"{spec.name} has no hub weights to pick a tag from (pretrained_tag={pretrained_tag!r})")
    tag_kw = {} if pretrained_tag is None else {"pretrained_tag": pretrained_tag}
    to_backbone = options if spec.options_to == "backbone" else {}
    to_neck = options if spec.options_to == "neck" else {}
    bb = spec.backbone(name, pretrained=pretrained, pretrained_file=pretrained_file, **tag_kw, **to_backbone)
    if neck is None:
        neck_mod = spec.neck(bb, spec.default_use_dcn if use_dcn is None else bool(use_dcn), **to_neck)
    elif to_neck:
        raise ValueError(f"options {sorted(to_neck)} are for {spec.name}'s own neck, not neck={neck!r}")
    else:  # a chosen neck has no DCNs unless asked for
        neck_mod = named_neck(neck, bb, bool(use_dcn), neck_width)
    width = getattr(neck_mod, "out_channels", None) or bb.out_channels  # Hourglass: no neck, the trunk's width
    if spec.head_conv is None:  # fixed by the architecture
        head_conv = width
    elif head_conv is None:
        head_conv = spec.head_conv
    heads_mod = CenterNetHeads(
        width,
        heads,
        head_conv,
        init_style=spec.head_init,
        num_stacks=getattr(bb, "num_stacks", 1),
        sorted_registration=spec.sorted_heads,
    )
    arch = name if spec.name == "timm" else spec.name
    return CenterNet(bb, neck_mod, heads_mod, arch=arch)
