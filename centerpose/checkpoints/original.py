"""The original CenterNet (xingyizhou/CenterNet) checkpoint layout: key mapping, file reading, matching loads.

Our networks keep the original tensor names under three prefixes (METHOD.md §2.5, §2.7):

=============  ===============================  ==============================
arch           original key                     ours
=============  ===============================  ==============================
dla34          ``base.fc.*``                    ``backbone.fc.*``
dla34          ``base.*``                       ``backbone.body.*``
dla34          ``dla_up.*`` / ``ida_up.*``      ``neck.dla_up.*`` / ``neck.ida_up.*``
res_50/resdcn  ``conv1 bn1 layer1..4 .*``       ``backbone.body.*``
res_50/resdcn  ``deconv_layers.*``              ``neck.deconv_layers.*``
hourglass      ``pre kps cnvs inters inters_ cnvs_ .*``  ``backbone.*``
all            ``<head>.*`` (anything else)     ``heads.<head>.*``
=============  ===============================  ==============================

The prefixes are each architecture's ``original_keys`` in :mod:`centerpose.models.registry`. The rest of
each name and every shape are unchanged (ConvTranspose weights are not transposed, QUIRK
2.8.14). tensorboy/centerpose files (``backbone_model.*``, ``head_model.*``) are read as the original.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, NamedTuple

import torch
from torch import nn

from centerpose.checkpoints.reader import CheckpointLoadError, is_tensor_dict, read_checkpoint
from centerpose.models.registry import KeyRules, original_arch

HEAD_PREFIX = "heads."
_TB_PREFIXES = ("backbone_model.", "head_model.")


def _rules(arch: str) -> KeyRules:
    """The trunk key rules of ``arch`` (its registry entry's ``original_keys``)."""
    return original_arch(arch).original_keys


def original_to_ours(key: str, arch: str) -> str:
    """One original key name (after ``module.`` stripping) → ours."""
    for orig, ours in _rules(arch):
        if key.startswith(orig):
            return ours + key[len(orig) :]
    return HEAD_PREFIX + key


def ours_to_original(key: str, arch: str) -> str:
    """One of our key names → the original's.

    Raises:
        ValueError: the key is under none of our prefixes for ``arch``.
    """
    for orig, ours in _rules(arch):
        if key.startswith(ours):
            return orig + key[len(ours) :]
    if key.startswith(HEAD_PREFIX):
        return key[len(HEAD_PREFIX) :]
    raise ValueError(f"key {key!r} has no original counterpart for arch {arch!r}")


def strip_wrapper_prefix(key: str) -> str:
    """Drop a DataParallel ``module.`` and a tensorboy ``backbone_model.`` / ``head_model.`` prefix."""
    if key.startswith("module."):
        key = key[len("module.") :]
    for prefix in _TB_PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix) :]
    return key


def convert_original_state_dict(state_dict: Mapping[str, torch.Tensor], arch: str) -> dict[str, torch.Tensor]:
    """Rename an original (or tensorboy) state dict to our keys; tensors are shared, not copied.

    A leading ``module.`` (DataParallel) is stripped, as the original loader does.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        new = original_to_ours(strip_wrapper_prefix(key), arch)
        if new in out:
            raise ValueError(f"two checkpoint keys map onto {new!r}")
        out[new] = value
    return out


def to_original_state_dict(state_dict: Mapping[str, torch.Tensor], arch: str) -> dict[str, torch.Tensor]:
    """Rename our state dict to the original's keys (e.g. to run it in the original code)."""
    return {ours_to_original(k, arch): v for k, v in state_dict.items()}


class OriginalCheckpoint(NamedTuple):
    """An original checkpoint file, renamed: ``state_dict`` in our keys, ``epoch`` (None if absent)."""

    state_dict: dict[str, torch.Tensor]
    epoch: int | None


def read_original(path: str | Path) -> tuple[dict[str, torch.Tensor], int | None]:
    """The tensors of an original ``{'epoch', 'state_dict'[, 'optimizer']}`` file (or a bare state dict).

    Reads with :func:`~centerpose.checkpoints.reader.read_checkpoint` (``weights_only=True``: no arbitrary
    unpickling); the optimizer state is ignored.

    Returns:
        The state dict as stored (original names, wrapper prefixes kept) and the epoch (None if absent).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a torch file that loads safely, or holds no state dict of tensors.
    """
    obj = read_checkpoint(path)
    epoch = None
    if isinstance(obj.get("state_dict"), dict):
        epoch = obj.get("epoch")
        obj = obj["state_dict"]
    if not is_tensor_dict(obj):
        raise CheckpointLoadError(f"{path}: expected {{'epoch', 'state_dict'}} or a state dict of tensors")
    return dict(obj), None if epoch is None else int(epoch)


def load_original_checkpoint(path: str | Path, arch: str) -> OriginalCheckpoint:
    """Read an original file with :func:`read_original` and rename its tensors to our keys.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file holds no state dict of tensors.
    """
    state_dict, epoch = read_original(path)
    return OriginalCheckpoint(convert_original_state_dict(state_dict, arch), epoch)


@dataclass
class LoadReport:
    """What :func:`load_matching` did.

    Attributes:
        loaded: keys copied into the model.
        skipped: ``(key, checkpoint shape, model shape)`` of keys present in both with another shape.
        missing: model keys absent from the checkpoint (they keep their current values).
        unexpected: checkpoint keys the model does not have.
    """

    loaded: list[str] = field(default_factory=list)
    skipped: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)


def load_matching(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> LoadReport:
    """Load every tensor whose key and shape match; report the rest (the original ``load_model`` rule).

    Use it to start multi_pose from a ctdet checkpoint: the 80-class ``hm`` output conv is skipped on
    shape and ``hps``/``hm_hp``/``hp_offset`` are missing (they keep their fresh init).
    """
    own = model.state_dict()
    report = LoadReport()
    picked = {}
    for key, value in state_dict.items():
        if key not in own:
            report.unexpected.append(key)
        elif tuple(value.shape) != tuple(own[key].shape):
            report.skipped.append((key, tuple(value.shape), tuple(own[key].shape)))
        else:
            picked[key] = value
            report.loaded.append(key)
    report.missing = [k for k in own if k not in state_dict]
    model.load_state_dict(picked, strict=False)
    return report
