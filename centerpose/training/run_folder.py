"""The run folder, as training, the loggers and the launch all see it: which rank this process is, and which
checkpoint of the folder a restarted run resumes from.

A leaf of :mod:`centerpose.training`: it imports the checkpoint readers and nothing of the training system, so
the launch (:mod:`~centerpose.training.launch`) and the loggers (:mod:`~centerpose.training.loggers`) both
import it without importing each other.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from centerpose.checkpoints.format import missing_resume_state
from centerpose.checkpoints.reader import CheckpointLoadError, read_checkpoint
from centerpose.checkpoints.safe_io import TMP_MARK, clean_partial_saves

log = logging.getLogger("centerpose.training.launch")

__all__ = ["env_global_rank", "resolve_ckpt_path"]


def env_global_rank() -> int:
    """This process's global rank from the launcher's environment, before any process group exists.

    ``RANK`` (torchrun), else ``SLURM_PROCID`` (srun, submitit), else Lightning's subprocess launcher
    (``LOCAL_RANK`` on node ``NODE_RANK``; only zero vs non-zero is exact there); 0 when launched alone.
    """
    for key in ("RANK", "SLURM_PROCID"):
        if os.environ.get(key, "").isdigit():
            return int(os.environ[key])
    local = int(os.environ.get("LOCAL_RANK", "0") or 0)
    node = int(os.environ.get("NODE_RANK", os.environ.get("GROUP_RANK", "0")) or 0)
    return local if node == 0 else node * 1_000 + local


def resolve_ckpt_path(ckpt_path: str | None, output_dir: str | Path) -> str | None:
    """``auto`` → the newest checkpoint of the run folder that loads and can resume a training, or None
    (fresh start) when there is none; anything else is passed to Lightning unchanged (a path, ``last``,
    ``best``, ``hpc`` or None).

    Candidates are ``<output_dir>/hpc_ckpt_*.ckpt`` (Lightning's SLURM pre-emption save) and
    ``<output_dir>/checkpoints/*.ckpt``, newest first. A file that does not load (truncated, empty) or holds
    no training state is skipped with a warning saying which and why; temporary files of interrupted saves
    are deleted.
    """
    if ckpt_path != "auto":
        return ckpt_path
    out = Path(output_dir)
    if env_global_rank() == 0:
        clean_partial_saves(out / "checkpoints")
    candidates = [
        p for p in [*out.glob("hpc_ckpt_*.ckpt"), *(out / "checkpoints").glob("*.ckpt")] if TMP_MARK not in p.name
    ]
    for path in sorted(candidates, key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            ckpt = read_checkpoint(path, mmap=True)
        except CheckpointLoadError as e:
            log.warning("ckpt_path=auto: skipping %s", e)
            continue
        missing = missing_resume_state(ckpt)
        if missing:
            log.warning("ckpt_path=auto: skipping %s: no training state (missing %s)", path, ", ".join(missing))
            continue
        log.info("ckpt_path=auto: resuming from %s (epoch %s done)", path, ckpt.get("epoch"))
        return str(path)
    log.info("ckpt_path=auto: no loadable checkpoint in %s, starting fresh", out)
    return None
