"""Samples whose image cannot be read: replaced and reported instead of stopping a days-long run.

A dataset with ``on_bad_sample = "skip"`` answers ``ds[i]`` for an unreadable image (missing, empty,
truncated, corrupt: :class:`~centerpose.data.image_io.BadImageError`) with the next readable sample
(``i + 1``, ``i + 2``, ... : deterministic) and appends one JSON line per occurrence to
``bad_sample_log`` (from DataLoader workers too: small ``O_APPEND`` writes do not interleave).
:class:`BadSampleReport` (a callback) reads those lines in the main process, names every new file once in
the log with its reason, writes ``bad_samples.json`` in the run folder and logs ``data/bad_samples``.
``on_bad_sample = "raise"`` (the dataset's default, and ``data.on_bad_sample=raise``) fails fast.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Callable

import pytorch_lightning as pl

from centerpose.data.image_io import BadImageError

log = logging.getLogger("centerpose.data")

MODES = ("skip", "raise")
#: How many following samples are tried before giving up (a folder of unreadable files is not "a few").
MAX_TRIES = 16
_warned: set[str] = set()


def record_bad_sample(dataset: Any, index: int, error: BadImageError) -> None:
    entry = {
        "file": error.path,
        "reason": error.reason,
        "index": int(index),
        "image_id": int(dataset.ids[index]) if hasattr(dataset, "ids") else None,
        "split": "train" if getattr(dataset, "train", False) else "val",
    }
    path = getattr(dataset, "bad_sample_log", None)
    if path:
        line = (json.dumps(entry) + "\n").encode()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
    elif error.path not in _warned:  # no report callback: name it here, once per process
        _warned.add(error.path)
        log.warning("bad sample replaced: image %s, %s: %s", entry["image_id"], error.path, error.reason)


def get_or_replace(dataset: Any, index: int, build: Callable[[int], Any]) -> Any:
    """``build(index)``, or with ``dataset.on_bad_sample == "skip"`` the next sample that builds."""
    mode = getattr(dataset, "on_bad_sample", "raise")
    if mode not in MODES:
        raise ValueError(f"on_bad_sample must be one of {MODES}, got {mode!r}")
    try:
        return build(index)
    except BadImageError as e:
        if mode == "raise":
            raise
        record_bad_sample(dataset, index, e)
        first = e
    n = len(dataset)
    for step in range(1, min(MAX_TRIES, n)):
        j = (index + step) % n
        try:
            return build(j)
        except BadImageError as e:
            record_bad_sample(dataset, j, e)
    raise BadImageError(
        first.path,
        f"{first.reason}; and the next {min(MAX_TRIES, n) - 1} samples are "
        "unreadable too: check the image folder (python -m centerpose.check_data scan=true)",
    )


def read_records(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut by a kill
    return records


def summarize(records: list[dict]) -> list[dict]:
    """One entry per file: reason, image id, split and how many times it was replaced."""
    files: dict[str, dict] = {}
    for r in records:
        entry = files.setdefault(
            r["file"],
            {
                "file": r["file"],
                "image_id": r.get("image_id"),
                "split": r.get("split"),
                "reason": r["reason"],
                "replaced": 0,
            },
        )
        entry["replaced"] += 1
    return list(files.values())


class BadSampleReport(pl.Callback):
    """Collects the replaced samples of the train / val sets into ``<run>/bad_samples.json``.

    Args:
        output_dir: the run folder (``bad_samples.json`` and the raw ``.bad_samples.jsonl`` go there).
    """

    def __init__(self, output_dir: str) -> None:
        self.output_dir = Path(output_dir)
        self.raw = self.output_dir / ".bad_samples.jsonl"
        self._named: set[str] = set()

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        datamodule = getattr(trainer, "datamodule", None)
        for name in ("train_set", "val_set"):
            dataset = getattr(datamodule, name, None)
            if dataset is not None and hasattr(dataset, "on_bad_sample"):
                dataset.bad_sample_log = str(self.raw)

    def _report(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        summary = summarize(read_records(self.raw)) if trainer.is_global_zero else []
        for entry in summary:
            if entry["file"] not in self._named:
                self._named.add(entry["file"])
                log.warning(
                    "bad sample replaced (%s, image %s): %s: %s",
                    entry["split"],
                    entry["image_id"],
                    entry["file"],
                    entry["reason"],
                )
        if summary:
            tmp = self.output_dir / "bad_samples.json.tmp"
            tmp.write_text(json.dumps(summary, indent=1))
            os.replace(tmp, self.output_dir / "bad_samples.json")
        pl_module.log(
            "data/bad_samples", float(len(summary)), on_step=False, on_epoch=True, sync_dist=False, rank_zero_only=True
        )

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._report(trainer, pl_module)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._report(trainer, pl_module)
