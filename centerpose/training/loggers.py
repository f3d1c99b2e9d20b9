"""Experiment-logger factories used by the ``logger`` config group."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

from pytorch_lightning.loggers import CSVLogger, WandbLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter
from pytorch_lightning.loggers.logger import rank_zero_experiment

from centerpose.training.run_folder import env_global_rank


def wandb_has_credentials() -> bool:
    """True when an API key is configured (environment variable or ``wandb login``'s netrc entry)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        return "api.wandb.ai" in netrc.read_text()
    except OSError:
        return False


def wandb_logger(
    project: str = "centerpose",
    group: str | None = None,
    name: str | None = None,
    tags: list[str] | None = None,
    save_dir: str = ".",
    mode: str = "auto",
    log_model: bool | str = False,
    **kwargs: Any,
) -> WandbLogger:
    """A :class:`WandbLogger` that goes offline instead of failing when wandb can't be reached.

    Args:
        mode: ``online``, ``offline`` or ``auto`` (online only with credentials; ``WANDB_MODE`` wins).
        group: runs of one sweep share a group, so the dashboard shows them together.
        log_model: upload checkpoints as artifacts (``True`` at the end, ``"all"`` as they are saved).
    """
    if mode not in ("auto", "online", "offline"):
        raise ValueError(f"logger.wandb.mode must be auto, online or offline, not {mode!r}")
    env_mode = os.environ.get("WANDB_MODE")
    if env_mode in ("offline", "dryrun", "disabled"):
        offline = True
    elif mode == "auto":
        offline = env_mode != "online" and not wandb_has_credentials()
    else:
        offline = mode == "offline"
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    if "id" not in kwargs:
        # One wandb run per run folder: a resumed training (ckpt_path=auto, requeue) continues the same run.
        kwargs["id"] = wandb_run_id(save_dir)
        kwargs.setdefault("resume", "allow")
    return WandbLogger(
        project=project,
        group=group,
        name=name,
        tags=list(tags or []),
        save_dir=str(save_dir),
        offline=offline,
        log_model=False if offline else log_model,
        **kwargs,
    )


def wandb_run_id(save_dir: str | Path) -> str:
    """The wandb run id stored in ``save_dir/wandb_run_id.txt``, created on first use (rank 0 writes it)."""
    path = run_id_file(save_dir)
    if path.is_file() and path.read_text().strip():
        return path.read_text().strip()
    import uuid

    run_id = uuid.uuid4().hex[:8]  # wandb's own id format: 8 lowercase alphanumerics
    if env_global_rank() == 0:
        path.write_text(run_id + "\n")
    return run_id


class _ContinuingWriter(ExperimentWriter):
    """Lightning's CSV writer, but an existing ``metrics.csv`` is continued instead of deleted."""

    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as f:
                header = next(csv.reader(f), [])
            self.metrics_keys = sorted(header)


class RunCSVLogger(CSVLogger):
    """:class:`CSVLogger` that keeps the history of a resumed run.

    ``train`` calls :meth:`continue_history` before the first log when it resumes: ``metrics.csv`` then keeps
    the rows of the epochs the checkpoint holds (rows written after it, by the interrupted process, are
    dropped, since the resumed run writes them again) and new rows are appended. A fresh run starts a new
    file, as Lightning's logger does.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.keep_history = False

    def continue_history(
        self, epoch: int, global_step: int, epoch_row: dict[str, float] | None = None, epoch_row_step: int | None = None
    ) -> int:
        """Keep ``metrics.csv`` rows up to the end of ``epoch`` / ``global_step``; returns the rows kept.

        ``epoch_row`` (kept in the checkpoint by :class:`centerpose.training.resume.ResumeState`) is the epoch's
        metrics row, which Lightning logs just after writing the checkpoint; it is added when a kill in
        between lost it.
        """
        self.keep_history = True
        path = Path(self.log_dir) / _ContinuingWriter.NAME_METRICS_FILE
        if not path.is_file():
            return 0
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            fields, rows = list(reader.fieldnames or []), list(reader)
        kept = [r for r in rows if _row_before(r, epoch, global_step)]
        if epoch_row:
            probe = next(iter(epoch_row))
            if not any(r.get("epoch") == str(epoch) and r.get(probe) not in (None, "") for r in kept):
                kept.append({**epoch_row, "epoch": epoch, "step": epoch_row_step})
                fields = sorted(set(fields) | set(epoch_row) | {"epoch", "step"})
        tmp = path.with_suffix(".csv.tmp")
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(kept)
        os.replace(tmp, path)
        return len(kept)

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None and self.keep_history:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _ContinuingWriter(log_dir=self.log_dir)
        return super().experiment


def _row_before(row: dict[str, str], epoch: int, global_step: int) -> bool:
    """Whether a metrics.csv row was logged within the first ``epoch + 1`` epochs (``global_step`` steps).

    Rows carry ``epoch`` (logged by the module) or only ``step`` (``LearningRateMonitor``, logged at an
    epoch start with the step count reached so far, so a row at ``global_step`` belongs to the next epoch).
    """
    if row.get("epoch") not in (None, ""):
        return int(float(row["epoch"])) <= epoch
    return row.get("step") in (None, "") or int(float(row["step"])) < global_step


def run_id_file(save_dir: str | Path) -> Path:
    return Path(save_dir) / "wandb_run_id.txt"
