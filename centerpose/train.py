"""Train a CenterNet multi-person pose model.

Single GPU, the original DLA-34 3x recipe (LR scaled to the 32-image batch):
    python -m centerpose.train backbone=dla schedule=3x gpus=1
One node, 8 GPUs (DDP, 16 per GPU = the original's batch 128 @ 5e-4):
    python -m centerpose.train experiment=multi_pose_dla_3x gpus=8
Several nodes (2 x 8 GPUs), with torchrun on every node or under SLURM (see scripts/):
    torchrun --nnodes 2 --nproc-per-node 8 --rdzv-endpoint HOST:29500 -m centerpose.train \
        experiment=multi_pose_dla_3x gpus=2x8
    sbatch scripts/slurm_train.sbatch
CPU quickstart on the embedded synthetic dataset (no download):
    python -m centerpose.train experiment=quickstart
Sweeps and resume:
    python -m centerpose.train --multirun backbone=dla,resnet50 data=coco_mini gpus=cpu trainer.max_epochs=1
    python -m centerpose.train <same overrides> ckpt_path=outputs/train/<run>/checkpoints/last.ckpt

How a run is put together: Hydra composes ``configs/train.yaml``; ``model.net`` is built by
``centerpose.models.build_model`` from one registry entry (``centerpose/models/registry.py``); the skeleton, the
decode options (the ``decode`` group: ``decode.flip_test=true``, ``decode.snap=weighted``, ...) and the codec
(``centerpose.codec.CenterPoseCodec``) are built once and handed to the data module (encode), the LightningModule
(decode for validation) and the pose-image callback; ``centerpose.training`` holds the module, loss, schedules and callbacks;
checkpoints are written and read by ``centerpose.checkpoints``.

Outputs (config, checkpoints, logs) go to ``outputs/train/<date>_<time>/`` (``multirun/...`` for sweeps).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf

import centerpose
from centerpose.training import launch  # registers the cp.rank_zero* config resolvers
from centerpose import safety
from centerpose.training import summary
from centerpose.checkpoints.format import check_resumable
from centerpose.config import build_codec, config_dir, decode_options, quote_argv, resolved_config
from centerpose.errors import error_boundary, task_errors

log = logging.getLogger("centerpose.train")


def instantiate_dict(cfg: DictConfig | None, **shared: Any) -> list[Any]:
    """Instantiate every ``_target_`` entry of a config mapping (callbacks, loggers); each gets those of the
    ``shared`` objects (the run's codec) its constructor takes."""
    if not cfg:
        return []
    out = []
    for node in cfg.values():
        if node and "_target_" in node:
            wanted = {k: v for k, v in shared.items() if k not in node and _accepts(node._target_, k)}
            # _partial_: Hydra would turn dataclass arguments into config nodes
            out.append(
                hydra.utils.instantiate(node, _partial_=True)(**wanted) if wanted else hydra.utils.instantiate(node)
            )
    return out


def _accepts(target: str, name: str) -> bool:
    import inspect

    try:
        return name in inspect.signature(hydra.utils.get_object(target)).parameters
    except (TypeError, ValueError, ImportError, AttributeError):
        return False


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).resolve().parent
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def run_info() -> dict:
    """The exact command, this job's overrides (one job of a sweep), package version and git commit."""
    from hydra.core.hydra_config import HydraConfig

    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else None
    return {
        "command": " ".join([Path(sys.executable).name, "-m", "centerpose.train", *sys.argv[1:]]),
        "argv": sys.argv,
        "overrides": overrides,
        "centerpose_version": centerpose.__version__,
        "git_commit": git_commit(),
    }


def record_run(output_dir: Path, cfg: DictConfig) -> None:
    """Write :func:`run_info` and the resolved config into the run directory (call on rank 0 only)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "run_info.json").write_text(json.dumps(run_info(), indent=2))
    (output_dir / "config_resolved.yaml").write_text(OmegaConf.to_yaml(resolved_config(cfg)))


def build(cfg: DictConfig) -> tuple[pl.LightningDataModule, pl.LightningModule, pl.Trainer]:
    """Build data module, LightningModule and Trainer from a composed config.

    The skeleton, the decode options and the codec are built once here and handed to every object that uses them.
    """
    keypoints = hydra.utils.instantiate(cfg.keypoints)
    codec = build_codec(cfg, keypoints, decode_options(cfg))
    datamodule = hydra.utils.instantiate(cfg.data, _partial_=True)(codec=codec)
    model = hydra.utils.instantiate(cfg.model, _partial_=True)(keypoints=keypoints, codec=codec)
    if cfg.get("init_from"):
        from centerpose.checkpoints.init_from import init_from_checkpoint

        init_from_checkpoint(model.net, cfg.init_from)
    model.run_config = resolved_config(cfg)
    # The skeleton itself, not how it was found (keypoints=auto reads a file predict may not have).
    model.run_config["keypoints"] = model.keypoints.to_config()
    loggers = instantiate_dict(cfg.get("logger"))
    callbacks = instantiate_dict(cfg.get("callbacks"), codec=codec)
    if not loggers:  # LearningRateMonitor refuses to run without a logger (logger=none)
        callbacks = [cb for cb in callbacks if not isinstance(cb, pl.callbacks.LearningRateMonitor)]
    if not cfg.trainer.get("enable_progress_bar", True):  # the Trainer refuses a progress bar it may not show
        callbacks = [cb for cb in callbacks if not isinstance(cb, pl.callbacks.ProgressBar)]
    trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    use_safe_checkpoint_io(trainer)
    return datamodule, model, trainer


def use_safe_checkpoint_io(trainer: pl.Trainer) -> None:
    """Atomic, verified saves and weights_only=True loads (resume included), unless a custom plugin is set."""
    from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

    from centerpose.checkpoints.safe_io import SafeCheckpointIO

    if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:
        trainer.strategy.checkpoint_io = SafeCheckpointIO()


def train(cfg: DictConfig) -> float | None:
    """Fit (and validate) one run; returns ``cfg.optimized_metric`` for Hydra sweepers.

    ``train=false`` validates only: the weights of ``ckpt_path`` (or ``init_from``) on the val set.
    ``ckpt_path=auto`` resumes from the run directory's newest checkpoint that loads, if there is one.
    """
    from centerpose.config_check import check_config_types

    check_config_types(cfg)
    started = time.time()
    summary.silence_lightning_tips()
    if cfg.get("seed") is not None:
        pl.seed_everything(cfg.seed, workers=True)
    launch.apply_sweep_defaults(cfg)
    ckpt_path = launch.resolve_ckpt_path(cfg.get("ckpt_path"), cfg.paths.output_dir)
    if cfg.get("train", True):
        check_resumable(ckpt_path)
    datamodule, model, trainer = build(cfg)
    if trainer.is_global_zero:
        safety.check_writable_run_folders(trainer, Path(cfg.paths.output_dir))
        record_run(Path(cfg.paths.output_dir), cfg)
    if ckpt_path and cfg.get("train", True):
        safety.continue_logger_history(trainer, ckpt_path)
    for lg in trainer.loggers:
        lg.log_hyperparams({**model.run_config, "run": run_info()})
    with launch.hydra_ddp_job(trainer):
        if cfg.get("train", True):
            trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
        elif cfg.get("validate", True):
            trainer.validate(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
        # metrics.json, curves.png and the end-of-run table (validates the final weights if the last epoch did
        # not; inside the DDP job, where every rank still runs)
        metrics = summary.finish(
            trainer,
            model,
            datamodule,
            cfg.paths.output_dir,
            started,
            validate_final=cfg.get("train", True) and cfg.get("validate", True),
        )
    launch.finish_loggers(trainer)
    value = metrics.get(cfg.get("optimized_metric") or "")
    return value


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="train")
def main(cfg: DictConfig) -> float | None:
    with task_errors("centerpose.train"):
        return train(cfg)


if __name__ == "__main__":
    with error_boundary("centerpose.train"):
        quote_argv()
        safety.exit_if_output_unwritable(sys.argv[1:], "centerpose.train")
        main()
