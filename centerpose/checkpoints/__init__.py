"""Checkpoints: one reader, one description of the centerpose checkpoint, atomic saves, the original's layout.

- :mod:`~centerpose.checkpoints.reader` — the only file unpickling (``weights_only=True``, mmap with a
  fallback for legacy files, wrapper prefixes stripped once); every other module reads through it.
- :mod:`~centerpose.checkpoints.format` — what a centerpose checkpoint holds; ``save`` / ``load`` /
  ``load_network(path) -> (net, keypoints)``, the resumable check.
- :mod:`~centerpose.checkpoints.safe_io` — :class:`SafeCheckpointIO`, the Trainer's atomic, verified saves.
- :mod:`~centerpose.checkpoints.original` — the original CenterNet's key layout; reading its files.
- :mod:`~centerpose.checkpoints.init_from` — ``init_from=``: start a network from any checkpoint's
  matching tensors.
"""

from centerpose.checkpoints.format import (
    CenterPoseCheckpoint,
    check_resumable,
    checkpoint_keypoints,
    load,
    load_network,
    net_state_dict,
    save,
)
from centerpose.checkpoints.init_from import init_from_checkpoint, read_state_dict
from centerpose.checkpoints.reader import CheckpointLoadError, read_checkpoint, read_tensors
from centerpose.checkpoints.safe_io import CheckpointSaveError, SafeCheckpointIO, clean_partial_saves

__all__ = [
    "CenterPoseCheckpoint", "CheckpointLoadError", "CheckpointSaveError", "SafeCheckpointIO", "check_resumable",
    "checkpoint_keypoints", "clean_partial_saves", "init_from_checkpoint", "load", "load_network",
    "net_state_dict", "read_checkpoint", "read_state_dict", "read_tensors", "save",
]
