"""Convert the original CenterNet's released checkpoints into centerpose checkpoints (strict).

Converting a released multi_pose file into a centerpose checkpoint (every tensor or nothing)::

    python -m centerpose.convert multi_pose_dla_3x.pth dla_3x.ckpt [--arch dla34|hourglass|resnet50|resdcn_50]
    python -m centerpose.evaluate ckpt_path=dla_3x.ckpt data=coco      # or centerpose.predict ckpt_path=...
    python -m centerpose.train init_from=dla_3x.ckpt ...               # fine-tune: weights only, fresh optimizer

A converted checkpoint has no optimizer or loop state, so ``centerpose.train ckpt_path=`` (resume) refuses it.
Detection (ctdet) files are not converted; ``init_from=`` loads their matching tensors (:func:`load_matching`).
The key mapping itself lives in :mod:`centerpose.checkpoints.original` (re-exported here); which train-config
overrides build each architecture, in its :mod:`centerpose.models.registry` entry.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Mapping

import torch
from torch import nn

from centerpose.checkpoints.format import save
from centerpose.checkpoints.original import (
    HEAD_PREFIX,
    LoadReport,
    OriginalCheckpoint,
    convert_original_state_dict,
    load_matching,
    load_original_checkpoint,
    original_to_ours,
    ours_to_original,
    read_original,
    strip_wrapper_prefix,
    to_original_state_dict,
)
from centerpose.errors import RunError, debug_enabled, error_boundary, print_error, program_name
from centerpose.models.registry import ARCHITECTURES, canonical_arch

__all__ = [
    "ARCH_OVERRIDES",
    "CheckpointMismatchError",
    "LoadReport",
    "OriginalCheckpoint",
    "convert_checkpoint",
    "convert_original_state_dict",
    "converted_config",
    "guess_arch",
    "infer_heads",
    "load_matching",
    "load_original",
    "load_original_checkpoint",
    "main",
    "original_to_ours",
    "ours_to_original",
    "read_original",
    "strip_wrapper_prefix",
    "to_original_state_dict",
]


# ------------------------------------------------------------------------------------- strict conversion
#: Train-config overrides that build each original architecture (the registry entries' ``config_overrides``).
ARCH_OVERRIDES: dict[str, tuple[str, ...]] = {
    name: spec.config_overrides for name, spec in ARCHITECTURES.items() if spec.original_keys is not None
}
#: The multi_pose heads in the original's output order (extra heads follow, sorted).
_POSE_HEAD_ORDER = ("hm", "wh", "hps", "reg", "hm_hp", "hp_offset")
_REPORT_LIMIT = 25  # keys listed per category; a wrong --arch would otherwise list hundreds


class CheckpointMismatchError(RunError, ValueError):
    """An original checkpoint does not fit the model tensor for tensor; nothing was loaded.

    Attributes:
        source: the file (or ``"<state dict>"``).
        arch: the architecture the file was matched against.
        hint: a likely cause, or "".
        missing: model keys absent from the file (original names).
        unexpected: file keys the model does not have (original names).
        mismatched: ``(key, file shape, model shape)`` of keys present in both with another shape.
    """

    def __init__(
        self,
        source: str,
        arch: str,
        missing: list[str],
        unexpected: list[str],
        mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]],
        hint: str = "",
    ) -> None:
        self.source, self.arch, self.hint = source, arch, hint
        self.missing, self.unexpected, self.mismatched = missing, unexpected, mismatched
        lines = [f"{source} does not match the {arch} model tensor for tensor; nothing was loaded:"]
        sections = (
            ("missing from the file", missing),
            ("unexpected in the file", unexpected),
            ("shape differs", [f"{k}: file {tuple(a)}, model {tuple(b)}" for k, a, b in mismatched]),
        )
        for title, items in sections:
            if items:
                lines.append(f"  {len(items)} {title}:")
                lines += [f"    {item}" for item in items[:_REPORT_LIMIT]]
                if len(items) > _REPORT_LIMIT:
                    lines.append(f"    ... and {len(items) - _REPORT_LIMIT} more")
        if hint:
            lines.append(hint)
        self.details = tuple(lines[1:])  # the error boundary prints the key lists below its one line
        super().__init__("\n".join(lines))


def guess_arch(state_dict: Mapping[str, torch.Tensor]) -> str:
    """The original architecture of a state dict, from its key names and the first deconv's shape.

    ``base.`` / ``dla_up.`` → ``dla34``; ``pre.`` / ``kps.`` → ``hourglass``; ``deconv_layers.0.weight``
    of a ConvTranspose2d ``(2048, 256, 4, 4)`` → ``res_50``, of a 3×3 DCN ``(256, 2048, 3, 3)`` →
    ``resdcn_50``.

    Raises:
        ValueError: none of these markers is present.
    """
    keys = {strip_wrapper_prefix(k): v for k, v in state_dict.items()}
    if any(k.startswith(("base.", "dla_up.", "ida_up.")) for k in keys):
        return "dla34"
    if any(k.startswith(("pre.", "kps.")) for k in keys):
        return "hourglass"
    deconv = keys.get("deconv_layers.0.weight")
    if deconv is not None and deconv.dim() == 4:
        if "deconv_layers.0.conv_offset_mask.weight" in keys or tuple(deconv.shape[2:]) == (3, 3):
            return "resdcn_50"
        return "res_50"
    if any(k.startswith(("net.", "backbone.", "neck.", "heads.")) for k in keys):
        raise ValueError("this is a centerpose state dict already (net./backbone./heads. keys), not an original one")
    raise ValueError(
        "cannot tell the architecture from the keys (no base./dla_up., pre./kps. or "
        "deconv_layers.0.weight); pass --arch dla34|hourglass|resnet50|resdcn_50"
    )


def infer_heads(state_dict: Mapping[str, torch.Tensor], arch: str) -> dict[str, int]:
    """``{head: output channels}`` of an original state dict, read from each head's 1×1 output conv.

    A multi_pose file gives ``{hm: 1, wh: 2, hps: 2J, reg: 2, hm_hp: J, hp_offset: 2}``, a ctdet file
    ``{hm: 80, wh: 2, reg: 2}``. Names outside the trunk without a 1×1 conv are not heads and are left out
    (a strict load reports them). Descriptive only: :func:`load_original` checks every shape.
    """
    channels: dict[str, list[int]] = {}
    for key, value in state_dict.items():
        ours = original_to_ours(strip_wrapper_prefix(key), arch)
        if (
            ours.startswith(HEAD_PREFIX)
            and key.endswith("weight")
            and value.dim() == 4
            and tuple(value.shape[2:]) == (1, 1)
        ):
            channels.setdefault(ours[len(HEAD_PREFIX) :].split(".", 1)[0], []).append(int(value.shape[0]))
    order = [n for n in _POSE_HEAD_ORDER if n in channels] + sorted(set(channels) - set(_POSE_HEAD_ORDER))
    # Hourglass has one output conv per stack; a corrupted file may disagree: report the commonest.
    return {n: max(set(channels[n]), key=channels[n].count) for n in order}


def _format_heads(heads: Mapping[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in heads.items())


def _require_pose_heads(heads: Mapping[str, int], source: str) -> None:
    """Refuse a detection (ctdet) file: it has no pose heads, it can only initialise a training."""
    if "hps" not in heads:
        raise ValueError(
            f"{source} is not a multi_pose checkpoint (heads: {_format_heads(heads)}; no 'hps'), e.g. a ctdet "
            "detection model. It cannot become a pose model by conversion; start a multi_pose training from its "
            f"matching tensors instead: python -m centerpose.train init_from={source} ..."
        )


def load_original(
    source: str | Path | Mapping[str, torch.Tensor], model: nn.Module, arch: str | None = None
) -> OriginalCheckpoint:
    """Load an original CenterNet checkpoint into ``model`` strictly: every tensor, or nothing.

    Args:
        source: a file (``{'epoch', 'state_dict'[, 'optimizer']}`` or a bare state dict, read with
            ``weights_only=True``), such a dict already loaded, or a state dict; ``module.`` / tensorboy
            prefixes are accepted.
        model: a :class:`~centerpose.models.CenterNet` (or any module with our key names).
        arch: the file's architecture; default ``model.arch``, else guessed with :func:`guess_arch`.

    Returns:
        The renamed state dict (our keys) and the file's epoch (None for a state dict or without one).

    Raises:
        CheckpointMismatchError: (a ValueError) missing, unexpected or mis-shaped keys, all listed; the
            model is left untouched.
        ValueError: unreadable file, or the architecture cannot be guessed.
    """
    if not isinstance(source, Mapping):
        name, (state_dict, epoch) = str(source), read_original(source)
    elif isinstance(source.get("state_dict"), Mapping):  # a file's dict, already loaded
        name, state_dict, epoch = "<checkpoint>", dict(source["state_dict"]), source.get("epoch")
    else:
        name, state_dict, epoch = "<state dict>", dict(source), None
    guessed = None
    try:
        guessed = canonical_arch(guess_arch(state_dict))
    except ValueError as err:
        if not (arch or getattr(model, "arch", "")):
            raise ValueError(f"{name}: {err}") from err
    arch = canonical_arch(arch or getattr(model, "arch", "") or guessed)
    ours = convert_original_state_dict(state_dict, arch)
    own = model.state_dict()
    missing = [ours_to_original(k, arch) for k in own if k not in ours]
    unexpected = [ours_to_original(k, arch) for k in ours if k not in own]
    mismatched = [
        (ours_to_original(k, arch), tuple(v.shape), tuple(own[k].shape))
        for k, v in ours.items()
        if k in own and tuple(v.shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or mismatched:
        hint = ""
        if guessed and guessed != arch:
            hint = f"The file looks like {guessed}, not {arch}."
        else:
            try:
                _require_pose_heads(infer_heads(state_dict, arch), name)
            except ValueError as err:
                hint = str(err)
        raise CheckpointMismatchError(name, arch, missing, unexpected, mismatched, hint)
    model.load_state_dict(ours, strict=True)
    return OriginalCheckpoint(ours, None if epoch is None else int(epoch))


def converted_config(arch: str, heads: Mapping[str, int], overrides: list[str] | tuple[str, ...] = ()) -> dict:
    """The train config a converted checkpoint carries: plain containers, resolved.

    Composed like ``python -m centerpose.train backbone=<group> <overrides>``. The head *set* follows the
    file (the original's ``--not_hm_hp`` / ``--not_reg_offset`` / ``--not_reg_hp_offset`` variants drop
    heads; ``model.net.heads`` is then written out); head widths follow the configured keypoints, so a file
    for another skeleton fails the strict load on ``hps`` / ``hm_hp``.
    """
    from hydra.utils import instantiate

    from centerpose.config import compose, resolved_config
    from centerpose.models.heads import pose_heads

    # output_dir is a ${hydra:runtime...} path that only a real run sets; the checkpoint needs none.
    cfg = compose("train", [*ARCH_OVERRIDES[canonical_arch(arch)], "paths.output_dir=.", *overrides])
    config = resolved_config(cfg)
    keypoints = instantiate(config["keypoints"])
    wanted = pose_heads(
        keypoints, hm_hp="hm_hp" in heads, reg_offset="reg" in heads, reg_hp_offset="hp_offset" in heads
    )
    if wanted != pose_heads(keypoints):
        config["model"]["net"]["heads"] = wanted
    return config


def convert_checkpoint(
    src: str | Path,
    dst: str | Path,
    arch: str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    overwrite: bool = False,
) -> dict:
    """Convert an original multi_pose file into a centerpose checkpoint at ``dst``.

    The result is a weights-only centerpose checkpoint (:mod:`centerpose.checkpoints.format`) whose
    ``epoch`` is the source's count of finished epochs (0 if absent), with ``centerpose_source``. It has
    no optimizer or loop state, so it serves ``ckpt_path=`` of evaluate / predict / ``train=false``, and
    ``init_from=`` to train from it; ``centerpose.train ckpt_path=`` refuses it.

    Args:
        src: original file.
        dst: output ``.ckpt``; written only after the strict load succeeded.
        arch: ``dla34 | hourglass | resnet50 | resdcn_50`` (or an alias); None guesses from the keys.
        overrides: extra train-config overrides (e.g. ``data.input_size=640``).
        overwrite: replace an existing ``dst``.

    Returns:
        ``{"arch", "epoch", "heads", "num_tensors"}`` of what was written.

    Raises:
        FileNotFoundError: ``src`` missing. FileExistsError: ``dst`` exists and not ``overwrite``.
        ValueError: unreadable file, ctdet file, unknown architecture, or (CheckpointMismatchError) any
            missing / unexpected / mis-shaped key.
    """
    from hydra.errors import HydraException
    from hydra.utils import instantiate
    from omegaconf.errors import OmegaConfBaseException

    src, dst = Path(src), Path(dst)
    if dst.exists() and not overwrite:
        raise FileExistsError(f"{dst} exists; pass --overwrite to replace it")
    state_dict, epoch = read_original(src)
    try:
        guessed = guess_arch(state_dict)
    except ValueError as err:
        if not arch:
            raise ValueError(f"{src}: {err}") from err
        guessed = None
    arch = canonical_arch(arch) if arch else guessed
    if arch not in ARCH_OVERRIDES:
        raise ValueError(f"no original architecture {arch!r}; choose from dla34, hourglass, resnet50, resdcn_50")
    if guessed and guessed != arch:
        raise ValueError(
            f"{src}: its keys are those of {guessed}, not {arch} (--arch); drop --arch to use the "
            "architecture of the file"
        )
    heads = infer_heads(state_dict, arch)
    _require_pose_heads(heads, str(src))
    try:
        config = converted_config(arch, heads, overrides)
    except (HydraException, OmegaConfBaseException) as err:
        raise ValueError(f"cannot compose the train config with overrides {list(overrides)}: {err}") from err
    net = instantiate(config["model"]["net"])  # exactly what Predictor.from_checkpoint will rebuild
    try:
        load_original(state_dict, net, arch)
    except CheckpointMismatchError as err:
        j = instantiate(config["keypoints"]).num_joints
        hint = err.hint
        if heads.get("hps", 2 * j) != 2 * j:
            hint = (
                f"The file's hps head has {heads['hps']} channels ({heads['hps'] // 2} keypoints); the "
                f"configured keypoints have {j}: pass the matching keypoints=<group> override."
            )
        raise CheckpointMismatchError(str(src), arch, err.missing, err.unexpected, err.mismatched, hint) from None
    checkpoint = save(
        dst,
        net,
        config,
        epoch=epoch or 0,  # atomic: never half-written under the final name
        source={
            "path": str(src.resolve()),
            "format": "CenterNet original",
            "arch": arch,
            "epoch": epoch,
            "heads": dict(heads),
        },
    )
    return {"arch": arch, "epoch": epoch, "heads": dict(heads), "num_tensors": len(checkpoint["state_dict"])}


# ---------------------------------------------------------------------------------------------------- CLI
_CLI_ARCHS = "dla34|hourglass|resnet50|resdcn_50"


def _arch_arg(value: str) -> str:
    arch = canonical_arch(value)
    if arch not in ARCH_OVERRIDES:
        raise argparse.ArgumentTypeError(f"unknown architecture {value!r}; choose {_CLI_ARCHS}")
    return arch


def main(argv: list[str] | None = None) -> int:
    """``python -m centerpose.convert SRC.pth DST.ckpt [--arch A] [overrides...]``; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog=program_name("python -m centerpose.convert"),
        description="Convert an original CenterNet multi_pose checkpoint (xingyizhou/CenterNet .pth) into a "
        "centerpose checkpoint, strictly: every tensor maps onto the model or nothing is written.",
        epilog="Use the result with `centerpose.evaluate ckpt_path=DST`, `centerpose.predict ckpt_path=DST` or "
        "`Predictor.from_checkpoint(DST)`, and train from it with `centerpose.train init_from=DST` (it has "
        "no optimizer state to resume). Detection (ctdet) files are not converted: pass them to "
        "`centerpose.train init_from=SRC`.",
    )
    parser.add_argument("src", type=Path, help="original checkpoint ({'epoch', 'state_dict'} or a state dict)")
    parser.add_argument("dst", type=Path, help="centerpose checkpoint to write (.ckpt)")
    parser.add_argument(
        "--arch", type=_arch_arg, metavar=_CLI_ARCHS, help="architecture of SRC (default: guessed from its keys)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace DST if it exists")
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="train-config overrides stored with the checkpoint, e.g. data.input_size=640",
    )
    args = parser.parse_args(argv)
    try:
        info = convert_checkpoint(args.src, args.dst, args.arch, args.overrides, args.overwrite)
    except (FileNotFoundError, FileExistsError, ValueError, RunError) as err:
        if debug_enabled():
            raise
        print_error(err, "centerpose.convert")
        return 1
    epoch = "unknown" if info["epoch"] is None else info["epoch"]
    print(
        f"{args.src} ({info['arch']}, epoch {epoch}, heads {_format_heads(info['heads'])}) -> {args.dst}: "
        f"{info['num_tensors']} tensors"
    )
    return 0


if __name__ == "__main__":
    with error_boundary("centerpose.convert"):
        sys.exit(main())
