"""One entry per architecture: everything that differs between dla34, res_50, resdcn_50, hourglass and timm.

An :class:`ArchSpec` says how to build the network (backbone factory, neck factory, head width, head init,
head registration order), what input it takes (the canvas multiple; the test pad is that minus one), how
the original CenterNet names its tensors (trunk key rules, for conversion) and which training-config
overrides build it. :func:`~centerpose.models.build_model` is one lookup here plus one generic builder;
the converter, the checkpoint format and the predictor ask the same entry.

The training numbers (base LR per global batch, batch per device, what ``1x`` / ``3x`` mean) are not here:
each model-zoo row's are in its ``configs/experiment/`` file (the schedule, gpus and module groups default to
DLA's). The entry names the config group that builds it (``config_overrides``).

Pretrained-weight tags (``tv_in1k``, ``a1_in1k``) are not architecture names: ``resnet50.tv_in1k`` is
refused with the spelling that works (``backbone=resnet50 pretrained_tag=tv_in1k``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal

import timm
from torch import nn

from centerpose.models import hourglass as _hourglass  # noqa: F401  (registers the "hourglass" trunk)
from centerpose.models.backbones import create_backbone, list_backbones
from centerpose.models.heads import INIT_STYLES
from centerpose.models.necks import DLAUpNeck, FPNNeck, ResNetDeconvNeck

#: ``(original key prefix, our key prefix)`` pairs, first match wins; keys matching none are heads.
KeyRules = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ArchSpec:
    """How one architecture is built, fed and named.

    Attributes:
        name: our architecture name (``CenterNet.arch``; for ``timm``, the timm model name is used instead).
        aliases: other names accepted for it (``dla``, ``res``, ``hg``, ...).
        backbone: ``backbone(name, pretrained=, pretrained_file=, **kw) -> nn.Module`` returning a list of
            feature maps (``name`` is the requested name: the timm model for the generic entry).
        neck: ``neck(backbone, use_dcn, **kw) -> nn.Module`` mapping that list to the stride-4 map(s).
        head_conv: default width of each head's 3×3 conv; None = the trunk's own width, not configurable
            (Hourglass: ``cnv_dim`` 256, as the original).
        head_init: one of :data:`~centerpose.models.heads.INIT_STYLES` (QUIRK 2.8.5).
        sorted_heads: register heads in sorted name order (the original ``res_50``, QUIRK 2.8.9).
        options_to: where ``build_model``'s extra keyword options go: the ``neck`` (``num_filters``) or the
            ``backbone`` (Hourglass: ``num_stacks``, ...).
        default_use_dcn: ``use_dcn`` when the caller passes None (the neck factory may ignore it).
        input_multiple: input sides must be multiples of this (the test canvas is padded to it).
        hub_weights: ImageNet weights exist on the timm hub (a ``pretrained_tag`` is meaningful).
        original_keys: trunk key rules of the original CenterNet checkpoints; None = no original counterpart.
        config_overrides: train-config overrides that build this architecture (its config group).
        summary: one line for docs and error messages.
    """

    name: str
    aliases: tuple[str, ...]
    backbone: Callable[..., nn.Module]
    neck: Callable[..., nn.Module]
    head_conv: int | None
    head_init: str
    sorted_heads: bool = False
    options_to: Literal["neck", "backbone"] = "neck"
    default_use_dcn: bool = False
    input_multiple: int = 32
    hub_weights: bool = True
    original_keys: KeyRules | None = None
    config_overrides: tuple[str, ...] = ()
    summary: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.head_init not in INIT_STYLES:
            raise ValueError(f"{self.name}: unknown head init style {self.head_init!r}; choose from {INIT_STYLES}")

    @property
    def test_pad(self) -> int:
        """The original's ``--pad``: test canvases are ``(side | test_pad) + 1`` (31; 127 for Hourglass)."""
        return self.input_multiple - 1


# ------------------------------------------------------------------------------------------- factories
def _trunk(registered: str) -> Callable[..., nn.Module]:
    """A factory building the registered trunk ``registered`` whatever name was asked for (aliases)."""

    def build(name: str, **kwargs) -> nn.Module:
        return create_backbone(registered, **kwargs)

    build.__name__ = f"{registered}_trunk"
    return build


def _timm_trunk(name: str, **kwargs) -> nn.Module:
    """Any timm model (or registered trunk) in ``features_only`` mode, levels from stride 4 on."""
    bb = create_backbone(name, min_reduction=4, **kwargs)
    if bb.reductions[0] != 4:
        raise ValueError(f"backbone {name!r} has no stride-4 feature level (strides {bb.reductions})")
    return bb


def _dla_up(backbone: nn.Module, use_dcn: bool, **kwargs) -> nn.Module:
    return DLAUpNeck(backbone.channels, backbone.reductions, use_dcn=use_dcn, **kwargs)


#: Necks ``build_model(..., neck=...)`` puts on any backbone with feature levels whose strides double, in
#: place of the architecture's own.
NECKS = ("dla_up", "fpn")


def named_neck(name: str, backbone: nn.Module, use_dcn: bool, width: int = 64) -> nn.Module:
    """A neck chosen by name: ``dla_up`` (the DLA-up path; its output keeps the stride-4 level's width) or
    ``fpn`` (an :class:`FPNNeck` of ``width`` channels, plain convs).

    Raises:
        ValueError: unknown name, ``fpn`` with DCNs, or a backbone without two or more feature levels
            (ResNet-50's trunk ends at stride 32 for its deconv neck; Hourglass ends at stride 4).
    """
    if name not in NECKS:
        raise ValueError(f"unknown neck {name!r}; choose from {NECKS} (or null: the architecture's own)")
    levels = list(getattr(backbone, "reductions", []))
    if len(levels) < 2 or any(b != 2 * a for a, b in zip(levels, levels[1:])):
        raise ValueError(
            f"neck={name!r} needs a backbone whose feature levels double in stride; this one gives "
            f"strides {levels} (use model.net.neck=null for the architecture's own neck)"
        )
    if name == "dla_up":
        return _dla_up(backbone, use_dcn)
    if use_dcn:
        raise ValueError("the fpn neck has no DCN variant; use_dcn=True needs neck='dla_up'")
    return FPNNeck(backbone.channels, backbone.reductions, width=width)


def _deconv(dcn: bool) -> Callable[..., nn.Module]:
    def build(backbone: nn.Module, use_dcn: bool, **kwargs) -> nn.Module:  # the name fixes DCN or not
        return ResNetDeconvNeck(backbone.channels[-1], use_dcn=dcn, **kwargs)

    build.__name__ = "resdcn_up" if dcn else "res_up"
    return build


def _no_neck(backbone: nn.Module, use_dcn: bool) -> nn.Module:
    return nn.Identity()  # Hourglass stacks end at stride 4 already


# --------------------------------------------------------------------------------------------- entries
_RES_RULES: KeyRules = (
    ("conv1.", "backbone.body.conv1."),
    ("bn1.", "backbone.body.bn1."),
    *((f"layer{i}.", f"backbone.body.layer{i}.") for i in range(1, 5)),
    ("deconv_layers.", "neck.deconv_layers."),
)

DLA34 = ArchSpec(
    name="dla34",
    aliases=("dla", "dla_34"),
    backbone=_trunk("dla34"),
    neck=_dla_up,
    head_conv=256,
    head_init="dla",
    default_use_dcn=True,
    original_keys=(
        ("base.fc.", "backbone.fc."),
        ("base.", "backbone.body."),
        ("dla_up.", "neck.dla_up."),
        ("ida_up.", "neck.ida_up."),
    ),
    config_overrides=("backbone=dla",),
    summary="timm DLA-34 + DLA-up neck with DCNs; 256-wide heads",
)
RES_50 = ArchSpec(
    name="res_50",
    aliases=("resnet50", "res"),
    backbone=_trunk("resnet50"),
    neck=_deconv(False),
    head_conv=64,
    head_init="res",
    sorted_heads=True,
    original_keys=_RES_RULES,
    config_overrides=("backbone=resnet50",),
    summary="timm ResNet-50 + 3 deconvs (256); 64-wide heads, registered in sorted order",
)
RESDCN_50 = ArchSpec(
    name="resdcn_50",
    aliases=("resdcn50",),
    backbone=_trunk("resnet50"),
    neck=_deconv(True),
    head_conv=64,
    head_init="resdcn",
    original_keys=_RES_RULES,
    config_overrides=("backbone=resnet50", "model.net.backbone=resdcn_50"),
    summary="timm ResNet-50 + DCN/deconv neck (256, 128, 64); 64-wide heads",
)
HOURGLASS = ArchSpec(
    name="hourglass",
    aliases=("hourglass104", "hg"),
    backbone=_trunk("hourglass"),
    neck=_no_neck,
    head_conv=None,
    head_init="hourglass",
    options_to="backbone",
    input_multiple=128,
    hub_weights=False,
    original_keys=tuple((f"{p}.", f"backbone.{p}.") for p in ("pre", "kps", "cnvs", "inters", "inters_", "cnvs_")),
    config_overrides=("backbone=hourglass",),
    summary="Hourglass-104, 2 stacks; 256-wide heads (head_conv is ignored, as the original)",
)
TIMM = ArchSpec(
    name="timm",
    aliases=(),
    backbone=_timm_trunk,
    neck=_dla_up,
    head_conv=256,
    head_init="dla",
    config_overrides=("backbone=timm",),
    summary="any timm model: features_only levels from stride 4 + DLA-up neck with plain convs "
    "(use_dcn=True puts DCNs in); 256-wide heads",
)

#: The original architectures by name; any other timm model name builds :data:`TIMM`.
ARCHITECTURES: dict[str, ArchSpec] = {s.name: s for s in (DLA34, RES_50, RESDCN_50, HOURGLASS)}
#: Every accepted spelling of an original architecture -> its name.
ARCH_ALIASES: dict[str, str] = {a: s.name for s in ARCHITECTURES.values() for a in (s.name, *s.aliases)}


def valid_backbones() -> list[str]:
    """Names :func:`get_arch` accepts besides any timm model name."""
    return sorted(set(ARCH_ALIASES) | set(list_backbones()))


def canonical_arch(name: str) -> str:
    """Map an alias (``dla``, ``resnet50``, ``hg``, ...) to our architecture name; timm names pass through."""
    return ARCH_ALIASES.get(name, name)


def get_arch(name: str) -> ArchSpec:
    """The entry that builds ``name``: an original architecture (or alias), else :data:`TIMM`.

    Raises:
        ValueError: an original architecture spelled with a weights tag (``resnet50.tv_in1k``, which timm
            would build as its generic network), or a name that is neither ours nor a timm model (the
            message lists the choices).
    """
    base, dot, tag = name.partition(".")
    if dot and base in ARCH_ALIASES:
        raise ValueError(
            f"backbone {name!r}: a weights tag in the name would build timm's generic {base} "
            f"network, not the original {canonical_arch(base)}; pass backbone={base!r} and "
            f"pretrained_tag={tag!r}"
        )
    if name in ARCH_ALIASES:
        return ARCHITECTURES[ARCH_ALIASES[name]]
    if name in list_backbones() or timm.is_model(name):
        return TIMM
    raise ValueError(
        f"unknown backbone {name!r}; choose one of {valid_backbones()} or any timm model name (timm.list_models())"
    )


def original_arch(name: str) -> ArchSpec:
    """The entry of an original CenterNet architecture (one with checkpoint key rules).

    Raises:
        ValueError: ``name`` is not one (the message lists them and their aliases).
    """
    spec = ARCHITECTURES.get(canonical_arch(name))
    if spec is None or spec.original_keys is None:
        choices = ", ".join(f"{s.name} ({', '.join(s.aliases)})" for s in ARCHITECTURES.values())
        raise ValueError(f"no original checkpoint layout for arch {name!r}; choose from {choices}")
    return spec
