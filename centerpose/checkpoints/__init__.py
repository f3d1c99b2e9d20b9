"""Checkpoints: one reader, one description of the centerpose checkpoint, atomic saves, the original's layout.

- :mod:`~centerpose.checkpoints.reader` — the only file unpickling (``weights_only=True``, mmap with a
  fallback for legacy files, wrapper prefixes stripped once); every other module reads through it.
- :mod:`~centerpose.checkpoints.format` — what a centerpose checkpoint holds; ``save`` / ``load`` /
  ``load_network(path) -> (net, keypoints)``, the resumable check.
- :mod:`~centerpose.checkpoints.safe_io` — :class:`SafeCheckpointIO`, the Trainer's atomic, verified saves.
- :mod:`~centerpose.checkpoints.original` — the original CenterNet's key layout; reading its files.
- :mod:`~centerpose.checkpoints.init_from` — ``init_from=``: start a network from any checkpoint's
  matching tensors.

The names below are imported on first use, so that importing the leaf :mod:`~centerpose.checkpoints.reader`
(which :mod:`centerpose.models` does, for pretrained weights files) does not import the modules that know the
models (the format's architecture records, the original's key layout): no import cycle between the two packages.
"""

from __future__ import annotations

import importlib
from typing import Any

#: exported name -> the module of this package that defines it
_EXPORTS = {
    **dict.fromkeys(
        (
            "CenterPoseCheckpoint",
            "check_resumable",
            "checkpoint_keypoints",
            "load",
            "load_network",
            "net_state_dict",
            "save",
        ),
        "format",
    ),
    **dict.fromkeys(("init_from_checkpoint", "read_state_dict"), "init_from"),
    **dict.fromkeys(("CheckpointLoadError", "read_checkpoint", "read_tensors"), "reader"),
    **dict.fromkeys(("CheckpointSaveError", "SafeCheckpointIO", "clean_partial_saves"), "safe_io"),
}

__all__ = [
    "CenterPoseCheckpoint",
    "CheckpointLoadError",
    "CheckpointSaveError",
    "SafeCheckpointIO",
    "check_resumable",
    "checkpoint_keypoints",
    "clean_partial_saves",
    "init_from_checkpoint",
    "load",
    "load_network",
    "net_state_dict",
    "read_checkpoint",
    "read_state_dict",
    "read_tensors",
    "save",
]
assert sorted(__all__) == sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'centerpose.checkpoints' has no attribute {name!r}")
    return getattr(importlib.import_module(f"centerpose.checkpoints.{_EXPORTS[name]}"), name)
