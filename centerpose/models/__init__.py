"""Networks: backbones (timm + our own trunks), necks, heads, one registry entry per architecture
(:mod:`centerpose.models.registry`) and the :func:`build_model` factory."""

from centerpose.models.backbones import TimmBackbone, create_backbone, list_backbones, register_backbone
from centerpose.models.centernet import CenterNet, build_model
from centerpose.models.dcn import DCN
from centerpose.models.heads import CenterNetHeads, pose_heads
from centerpose.models.hourglass import HourglassBackbone
from centerpose.models.registry import ARCHITECTURES, ArchSpec, canonical_arch, get_arch, valid_backbones

__all__ = [
    "ARCHITECTURES",
    "ArchSpec",
    "CenterNet",
    "CenterNetHeads",
    "DCN",
    "HourglassBackbone",
    "TimmBackbone",
    "build_model",
    "canonical_arch",
    "create_backbone",
    "get_arch",
    "list_backbones",
    "pose_heads",
    "register_backbone",
    "valid_backbones",
]
