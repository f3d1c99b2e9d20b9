"""Lightning callbacks of the training system (dashboards: throughput and memory)."""

from __future__ import annotations

import time
from typing import Any, Mapping

import pytorch_lightning as pl
import torch


def batch_images(batch: Any) -> int:
    """Number of images in a batch: the leading size of ``batch["input"]`` (B, 3, H, W)."""
    if isinstance(batch, Mapping):
        batch = batch["input"] if "input" in batch else batch["image"]  # float input or uint8 images
    elif isinstance(batch, (list, tuple)):
        batch = batch[0]
    return int(batch.shape[0])


class EpochThroughput(pl.Callback):
    """Logs images/s of every training and validation epoch, summed over all ranks, and peak GPU memory.

    Logged per epoch (``perf/`` keys, so dashboards group them):

    * ``perf/train_images_per_s``: training images of all ranks / wall time from epoch start to end
      (data loading, forward, backward, optimizer; excludes the validation that runs inside the epoch).
    * ``perf/train_epoch_s``: that wall time.
    * ``perf/val_images_per_s``: validation images of all ranks / wall time of the validation loop
      (forward + decode; the COCO evaluation that follows is not included).
    * ``perf/gpu_max_mem_gib``: ``torch.cuda.max_memory_allocated`` during the training epoch, the
      largest over ranks (only on CUDA).

    Args:
        log_memory: log peak CUDA memory when training on a GPU.
    """

    def __init__(self, log_memory: bool = True) -> None:
        self.log_memory = log_memory
        self._images = {"train": 0, "val": 0}
        self._start = {"train": 0.0, "val": 0.0}
        self._excluded = 0.0  # validation time inside the current training epoch

    def _begin(self, stage: str) -> None:
        self._images[stage] = 0
        self._start[stage] = time.perf_counter()

    def _log(self, pl_module: pl.LightningModule, name: str, value: float, reduce_fx: str) -> None:
        # sync_dist reduces the per-rank values (sum of rates, max of memory) in one all-reduce per key.
        pl_module.log(
            f"perf/{name}",
            float(value),
            on_step=False,
            on_epoch=True,
            sync_dist=True,
            reduce_fx=reduce_fx,
            rank_zero_only=False,
        )

    # ------------------------------------------------------------------ training
    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._begin("train")
        self._excluded = 0.0
        if self.log_memory and pl_module.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(pl_module.device)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._images["train"] += batch_images(batch)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        seconds = max(time.perf_counter() - self._start["train"] - self._excluded, 1e-9)
        self._log(pl_module, "train_images_per_s", self._images["train"] / seconds, "sum")
        self._log(pl_module, "train_epoch_s", seconds, "max")
        if self.log_memory and pl_module.device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(pl_module.device) / 2**30
            self._log(pl_module, "gpu_max_mem_gib", peak, "max")

    # ------------------------------------------------------------------ validation
    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._begin("val")

    def on_validation_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._images["val"] += batch_images(batch)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        seconds = max(time.perf_counter() - self._start["val"], 1e-9)
        self._log(pl_module, "val_images_per_s", self._images["val"] / seconds, "sum")

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # After the module's COCO evaluation: the whole validation is kept out of the training rate.
        self._excluded += time.perf_counter() - self._start["val"]
