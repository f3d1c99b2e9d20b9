"""Networks: backbones (timm + our own registry), necks, heads and the :func:`build_model` factory."""

from centerpose.models.backbones import TimmBackbone, create_backbone, list_backbones, register_backbone
from centerpose.models.centernet import CenterNet, build_model, canonical_arch, valid_backbones
from centerpose.models.dcn import DCN
from centerpose.models.heads import CenterNetHeads, pose_heads
from centerpose.models.hourglass import HourglassBackbone

__all__ = [
    "CenterNet", "CenterNetHeads", "DCN", "HourglassBackbone", "TimmBackbone", "build_model", "canonical_arch", "create_backbone",
    "list_backbones", "pose_heads", "register_backbone", "valid_backbones",
]
