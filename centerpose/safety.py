"""Checks that refuse a run before work is lost (their :class:`RunError` reaches the user as one line through
the entry points' error boundary, :mod:`centerpose.errors`).

* :func:`check_writable_run_folders`: the run folder and every checkpoint folder are writable, before
  training starts.
* :func:`check_writable_output`: the Hydra run folder of a command line is writable, before Hydra creates it.
* :func:`continue_logger_history`: a resumed run appends to the CSV history of the run it continues.
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

import pytorch_lightning as pl

from centerpose.errors import RunError


def writable_problem(folder: Path) -> str | None:
    """None when ``folder`` can be created and written (a probe file is written and removed), else why not."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write_probe-{uuid.uuid4().hex[:8]}"
        with open(probe, "wb") as f:
            f.write(b"ok")
            f.flush()
            os.fsync(f.fileno())
        probe.unlink()
    except OSError as e:
        return f"{type(e).__name__}: {e.strerror or e}"
    return None


def checkpoint_folders(trainer: pl.Trainer) -> list[Path]:
    """The folders the trainer's ModelCheckpoint callbacks write into."""
    from pytorch_lightning.callbacks import ModelCheckpoint

    return sorted({Path(cb.dirpath) for cb in trainer.callbacks if isinstance(cb, ModelCheckpoint) and cb.dirpath})


def check_writable_run_folders(trainer: pl.Trainer, output_dir: Path) -> None:
    """Raise :class:`RunError` when the run folder or a checkpoint folder cannot be written; clean the
    temporary files of interrupted checkpoint saves."""
    from centerpose.checkpoints.safe_io import clean_partial_saves

    for folder in [Path(output_dir), *checkpoint_folders(trainer)]:
        problem = writable_problem(folder)
        if problem:
            raise RunError(
                f"cannot write to '{folder}' ({problem}): checkpoints and logs would be lost; "
                "fix its permissions or choose another hydra.run.dir / paths.output_dir"
            )
        clean_partial_saves(folder)


def continue_logger_history(trainer: pl.Trainer, ckpt_path: str) -> None:
    """Make the CSV loggers continue ``metrics.csv`` up to the checkpoint's epoch (rows after it are dropped)."""
    from centerpose.checkpoints.reader import CheckpointLoadError, read_checkpoint
    from centerpose.training.loggers import RunCSVLogger

    csv_loggers = [lg for lg in trainer.loggers if isinstance(lg, RunCSVLogger)]
    if not csv_loggers or not Path(ckpt_path).is_file():
        return
    try:
        ckpt = read_checkpoint(ckpt_path, mmap=True)
    except CheckpointLoadError:
        return  # Lightning reports it
    epoch, step = int(ckpt.get("epoch", -1)), int(ckpt.get("global_step", 0))
    resume_state = (ckpt.get("callbacks") or {}).get("ResumeState") or {}
    for lg in csv_loggers:
        if trainer.is_global_zero:
            kept = lg.continue_history(epoch, step, resume_state.get("epoch_row"), resume_state.get("epoch_row_step"))
            logging.getLogger("centerpose.train").info(
                "resume: %s keeps %d rows of epochs 0-%d", lg.log_dir, kept, epoch
            )
        else:
            lg.keep_history = True


def check_writable_output(argv: list[str], default_root: str = "outputs") -> str | None:
    """Why the run folder of a command line (``hydra.run.dir=``/``hydra.sweep.dir=`` or ``outputs/``) cannot
    be written, or None. Only the part before the first ``${`` is checked: the nearest existing folder of it
    must be writable."""
    target = default_root
    for arg in argv:
        for key in ("hydra.run.dir=", "hydra.sweep.dir="):
            if arg.startswith(key):
                target = arg[len(key) :]
    static = target.split("${", 1)[0] or "."
    path = Path(static).expanduser().absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    if path.exists() and not (path.is_dir() and os.access(path, os.W_OK | os.X_OK)):
        return (
            f"cannot create the run folder '{target}': '{path}' is not a writable folder "
            "(set hydra.run.dir= to a writable folder)"
        )
    return None


def exit_if_output_unwritable(argv: list[str], program: str) -> None:
    """Raise :class:`RunError` when :func:`check_writable_output` finds a problem (call before Hydra, inside
    the error boundary, which prints it as one line under ``program`` and exits 1)."""
    problem = check_writable_output(argv)
    if problem:
        raise RunError(problem)
