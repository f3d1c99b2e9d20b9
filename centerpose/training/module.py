"""CenterPoseModule: the LightningModule that trains and validates a CenterNet pose network."""

from __future__ import annotations

from typing import Any, Callable

import pytorch_lightning as pl
import torch
from torch import nn

from centerpose.codec.codec import CenterPoseCodec, DecodeOptions
from centerpose.codec.device_heatmaps import finish_joint_heatmaps
from centerpose.codec.pipeline import stack_with_mirrors
from centerpose.codec.poses import Poses
from centerpose.checkpoints import format as checkpoint_format
from centerpose.data.photometric import finish_input
from centerpose.keypoints import COCO_PERSON, KeypointSpec


class CenterPoseModule(pl.LightningModule):
    """Network + loss + optimisation recipe of the original CenterNet ``multi_pose`` task.

    The learning rate follows the original's linear rule: ``lr = base_lr * global_batch / base_batch_size``
    with ``global_batch = batch_size * world_size`` (5e-4 per 128 images for DLA/ResNet, 2.5e-4 per 24
    for Hourglass), unless ``lr`` is given explicitly.

    Args:
        net: the network; ``net(x: (B, 3, H, W))`` returns a list (one entry per stack) of dicts of raw
            head maps ``(B, C, H/4, W/4)``.
        loss: ``loss(outputs, batch) -> (total, stats)`` (e.g. :class:`centerpose.training.losses.PoseLoss`).
        optimizer: partial optimizer constructor, completed with ``params`` and ``lr``.
        scheduler: partial LR-scheduler constructor (completed with ``optimizer``), stepped per epoch, or per
            optimizer step when the scheduler has ``interval = "step"``.
        base_lr: learning rate at ``base_batch_size``.
        base_batch_size: global batch the base LR belongs to.
        batch_size: per-device batch size (the data module's).
        lr: explicit learning rate; overrides the linear rule.
        keypoints: the skeleton the heads were built for.
        codec: decodes the validation heads into :class:`~centerpose.codec.poses.Poses` (its ``flip_test``
            makes the validation step run the mirrored input too); default: the original trainer's
            validation decode (clamped sigmoid, no flip, K = 100).
        evaluator: optional validation evaluator with ``reset()``, ``process(batch, poses)`` and
            ``evaluate() -> dict[str, float]`` (COCO keypoint AP); metrics are logged as ``val/<name>``.
    """

    def __init__(
        self,
        net: nn.Module,
        loss: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        base_lr: float = 5e-4,
        base_batch_size: int = 128,
        batch_size: int = 32,
        lr: float | None = None,
        keypoints: KeypointSpec = COCO_PERSON,
        evaluator: Any | None = None,
        codec: CenterPoseCodec | None = None,
    ) -> None:
        super().__init__()
        # Only plain values go into hparams: checkpoints must stay loadable with weights_only=True.
        self.save_hyperparameters(
            logger=False, ignore=["net", "loss", "optimizer", "scheduler", "keypoints", "evaluator", "codec"]
        )
        self.net = net
        self.loss = loss
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.keypoints = keypoints
        self.evaluator = evaluator
        self.codec = codec if codec is not None else CenterPoseCodec(keypoints, decode=DecodeOptions(sigmoid="clamp"))
        # Set by the entry point: the resolved run config, stored in every checkpoint so that
        # `Predictor.from_checkpoint` can rebuild the network without Hydra.
        self.run_config: dict | None = None

    def forward(self, x: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        return self.net(x)

    # ------------------------------------------------------------------ optimisation
    def learning_rate(self) -> float:
        """The LR this run uses: explicit ``lr``, else the linear rule from the global batch."""
        if self.hparams.lr is not None:
            return float(self.hparams.lr)
        world = self.trainer.world_size if self._trainer is not None else 1
        global_batch = self.hparams.batch_size * world
        return float(self.hparams.base_lr) * global_batch / float(self.hparams.base_batch_size)

    def configure_optimizers(self) -> dict:
        lr = self.learning_rate()
        optimizer = self.optimizer_factory(params=self.parameters(), lr=lr)
        if self.scheduler_factory is None:
            return {"optimizer": optimizer}
        scheduler = self.scheduler_factory(optimizer=optimizer)
        # Stepped per epoch (the original's MultiStepLR) unless the scheduler says otherwise (WarmupCosineLR).
        interval = getattr(scheduler, "interval", "epoch")
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": interval}}

    def on_fit_start(self) -> None:
        world = self.trainer.world_size
        self.print(
            f"[centerpose] lr {self.learning_rate():.6g} for global batch "
            f"{self.hparams.batch_size} x {world} = {self.hparams.batch_size * world} "
            f"(base {self.hparams.base_lr:g} @ {self.hparams.base_batch_size})"
        )
        # The same numbers as hyperparameters, so dashboards can compare runs on different GPU counts.
        scaling = {
            "lr": self.learning_rate(),
            "global_batch_size": self.hparams.batch_size * world,
            "world_size": world,
            "num_nodes": self.trainer.num_nodes,
        }
        for logger in self.trainer.loggers:
            logger.log_hyperparams(scaling)

    # ------------------------------------------------------------------ steps
    def _shared_step(self, batch: dict, stage: str) -> tuple[torch.Tensor, list[dict[str, torch.Tensor]]]:
        outputs = self.net(batch["input"])
        loss, stats = self.loss(outputs, batch)
        on_step = stage == "train"
        batch_size = batch["input"].shape[0]
        for name, value in stats.items():
            self.log(
                f"{stage}/{name}",
                value,
                on_step=on_step,
                on_epoch=True,
                prog_bar=name == "loss",
                sync_dist=not on_step,
                batch_size=batch_size,
            )
        return loss, outputs

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        # uint8 images + per-sample colour/normalisation maps -> float input, one batched op on the device;
        # sparse joint targets (hp_radius) -> the batch's hm_hp maps, drawn here instead of in the workers.
        return finish_joint_heatmaps(finish_input(batch)) if isinstance(batch, dict) else batch

    def on_train_epoch_start(self) -> None:
        # Per-sample augmentation RNGs (CocoPoseDataset(rng="per_sample")) are seeded from the epoch; the
        # loader's workers are created after this hook, so they see the new epoch.
        dataset = getattr(getattr(self.trainer, "datamodule", None), "train_set", None)
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(self.current_epoch)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss, _ = self._shared_step(batch, "train")
        return loss

    def on_validation_epoch_start(self) -> None:
        if self.evaluator is not None:
            self.evaluator.reset()

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        _, outputs = self._shared_step(batch, "val")
        if self.evaluator is not None:
            self.evaluator.process(batch, self.decode_batch(outputs, batch))

    @torch.no_grad()
    def decode_batch(self, outputs: list[dict[str, torch.Tensor]], batch: dict) -> Poses:
        """People of a validation batch in image pixels; runs the mirrored input too when the codec's
        ``flip_test`` is on (the detector's flip test, §3.3)."""
        heads = outputs[-1]
        if self.codec.options.flip_test:
            heads = stack_with_mirrors(outputs, self.net(batch["input"].flip(3)))
        return self.codec.decode(heads, batch["meta"])

    def on_validation_epoch_end(self) -> None:
        if self.evaluator is None or self.trainer.sanity_checking:
            return
        metrics = self.evaluator.evaluate()
        if metrics:
            # Rank 0 computed and broadcast them: every rank holds the same values, so the (cheap) sync
            # changes nothing but keeps Lightning's DDP logging consistent.
            self.log_dict({f"val/{k}": float(v) for k, v in metrics.items()}, sync_dist=True)

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        if self.run_config is not None:  # run config + architecture / input size / test pad for inference
            checkpoint_format.describe(checkpoint, self.run_config, self.net)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.run_config = checkpoint_format.run_config(checkpoint) or self.run_config
