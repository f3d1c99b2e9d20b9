"""Checkpoint files that cannot silently vanish or half-exist, and that always load safely.

:class:`SafeCheckpointIO` is the Trainer's checkpoint plugin (``configs/trainer/default.yaml``):

* save: write ``<name>.tmp-<pid>`` in the target folder, flush and fsync it, rename it over ``<name>``
  (atomic on POSIX: the previous ``last.ckpt`` stays whole until the new one is complete), fsync the folder,
  then read the file back (zip directory and pickle, tensors memory-mapped) to prove it is on disk and
  loadable. Any failure raises :class:`CheckpointSaveError` naming the file and the reason, which stops
  the run with a non-zero exit.
* load (Lightning's resume path included): :func:`~centerpose.checkpoints.reader.read_checkpoint`
  (``weights_only=True`` passed explicitly, so ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` cannot turn a resume
  into arbitrary code execution).

:func:`clean_partial_saves` removes the temporary files of saves that were interrupted (``kill -9``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from centerpose.checkpoints.reader import CheckpointLoadError, read_checkpoint
from centerpose.errors import RunError

log = logging.getLogger("centerpose.checkpoints")

TMP_MARK = ".tmp-"


class CheckpointSaveError(RunError):
    """A checkpoint could not be written or does not read back."""


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def clean_partial_saves(folder: str | Path) -> list[Path]:
    """Delete ``*.tmp-<pid>`` files left by interrupted saves in ``folder``; returns what was removed."""
    folder = Path(folder)
    removed = []
    if folder.is_dir():
        for tmp in folder.glob(f"*{TMP_MARK}*"):
            try:
                tmp.unlink()
                removed.append(tmp)
            except OSError as e:
                log.warning("could not remove the partial checkpoint %s: %s", tmp, e)
    if removed:
        log.info(
            "removed %d partial checkpoint file(s) of interrupted saves: %s",
            len(removed),
            ", ".join(p.name for p in removed),
        )
    return removed


class SafeCheckpointIO(TorchCheckpointIO):
    """Atomic, verified checkpoint saves and ``weights_only=True`` loads (see the module docstring).

    Args:
        verify: read every saved file back (memory-mapped) before reporting success.
    """

    def __init__(self, verify: bool = True) -> None:
        super().__init__()
        self.verify = verify

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any | None = None
    ) -> None:
        path = Path(path)
        tmp = path.with_name(f"{path.name}{TMP_MARK}{os.getpid()}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
            _fsync_dir(path.parent)
        except Exception as e:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass
            raise CheckpointSaveError(f"could not save checkpoint {path}: {type(e).__name__}: {e}") from e
        if self.verify:
            try:
                read_checkpoint(path, mmap=True)
            except CheckpointLoadError as e:
                raise CheckpointSaveError(f"checkpoint {path} was written but does not read back: {e}") from e

    def load_checkpoint(
        self, path: str | os.PathLike, map_location: Any | None = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        # Always weights_only=True (the reader's), whatever the caller or TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD asks.
        return read_checkpoint(path, map_location=map_location or (lambda storage, loc: storage))
