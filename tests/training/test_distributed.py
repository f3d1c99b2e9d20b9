"""Scale-out: DDP (2 CPU processes, gloo) vs one process, one output folder, torchrun, seeds, precision, resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from centerpose.config import compose
from centerpose.training.launch import env_global_rank, resolve_ckpt_path
from centerpose.train import build, train

TINY = [
    "experiment=quickstart",
    "data.synthetic=null",
    "data.input_size=128",
    "data.num_workers=0",
    "data.batch_size=2",
    "data.val_batch_size=1",
    "trainer.max_epochs=1",
    "trainer.check_val_every_n_epoch=1",
    "trainer.enable_progress_bar=false",
    "backbone=timm",
    "backbone_name=resnet18",
]
# The default callbacks without the progress bar (callbacks=none drops them all).
NO_BAR = "callbacks.rich_progress_bar=null"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    from centerpose.data.synthetic import write_synthetic_coco

    root = tmp_path_factory.mktemp("synthetic")
    write_synthetic_coco(root, num_train=8, num_val=4, image_size=(128, 128), seed=0)
    return root


def run_cli(
    cwd: Path, *overrides: str, launcher: list[str] | None = None, timeout: int = 300, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Run the training entry point as a user would (DDP re-launches this command line)."""
    flags = [o for o in overrides if o.startswith("--")]  # Hydra's flags go before the overrides
    cmd = (launcher or [sys.executable, "-m"]) + [
        "centerpose.train",
        *flags,
        NO_BAR,
        *(o for o in overrides if not o.startswith("--")),
    ]
    full_env = {**os.environ, "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1", **(env or {})}
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT"):
        full_env.pop(key, None)
    proc = subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc


def test_ddp_two_processes_validate_like_one_and_write_one_folder(data_root, tmp_path):
    # Train 1 epoch with 2 gloo processes. The run folder name has microseconds: a child that resolved its own
    # ${now:} would create a second folder.
    run_cli(
        tmp_path,
        *TINY,
        f"data.root={data_root}",
        "hydra.run.dir=runs/ddp_${now:%H-%M-%S-%f}",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.strategy=ddp",
    )
    folders = list((tmp_path / "runs").iterdir())
    assert len(folders) == 1, folders
    run = folders[0]
    assert not list(run.glob("train_ddp_process_*")), "a DDP child wrote its own log"
    assert sorted(p.name for p in (run / ".hydra").iterdir()) == ["config.yaml", "hydra.yaml", "overrides.yaml"]
    assert (run / "checkpoints" / "last.ckpt").is_file()
    hparams = (run / "csv" / "hparams.yaml").read_text()
    assert "world_size: 2" in hparams and "global_batch_size: 4" in hparams
    ddp = json.loads((run / "metrics.json").read_text())
    assert ddp["perf/train_images_per_s"] > 0 and ddp["perf/val_images_per_s"] > 0

    # The same weights validated by one process: the same metrics and the same detections (the evaluator
    # gathers both ranks' images; val/loss is the mean of per-image losses either way with batch 1).
    run_cli(
        tmp_path,
        *TINY,
        f"data.root={data_root}",
        "hydra.run.dir=runs_single/one",
        "train=false",
        f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}",
        "trainer.accelerator=cpu",
        "trainer.devices=1",
    )
    single_dir = tmp_path / "runs_single" / "one"
    single = json.loads((single_dir / "metrics.json").read_text())
    for key in ("val/AP", "val/AR", "val/bbox_AP", "val/loss", "val/hm_loss", "val/hp_loss", "val/wh_loss"):
        assert single[key] == pytest.approx(ddp[key], rel=1e-5, abs=1e-6), key
    dets_ddp = json.loads((run / "val_results.json").read_text())
    dets_one = json.loads((single_dir / "val_results.json").read_text())
    assert len(dets_ddp) == len(dets_one) > 0
    assert sorted({d["image_id"] for d in dets_ddp}) == sorted({d["image_id"] for d in dets_one})
    key = lambda d: (d["image_id"], -d["score"])  # noqa: E731
    np.testing.assert_allclose(
        [d["keypoints"] for d in sorted(dets_ddp, key=key)],
        [d["keypoints"] for d in sorted(dets_one, key=key)],
        rtol=1e-4,
        atol=1e-3,
    )


def tiny_cfg(root: Path, out: Path, *overrides: str):
    return compose(
        "train",
        [*TINY, f"data.root={root}", f"paths.output_dir={out}", "logger=csv", "trainer.accelerator=cpu", *overrides],
    )


def test_same_seed_same_losses_on_cpu(data_root, tmp_path):
    # Training only (4 steps): the last step's losses are equal only if every earlier update was.
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        train(
            tiny_cfg(
                data_root,
                tmp_path / name,
                f"seed={seed}",
                "callbacks=none",
                "logger=none",
                "+trainer.limit_val_batches=0",
            )
        )
    metrics = {k: json.loads((tmp_path / k / "metrics.json").read_text()) for k in "abc"}
    losses = {k: {n: v for n, v in m.items() if n.startswith("train/") and "loss" in n} for k, m in metrics.items()}
    assert len(losses["a"]) >= 14 and "train/loss_step" in losses["a"]
    assert losses["a"] == losses["b"]  # exactly, not approximately
    assert losses["a"] != losses["c"]


@pytest.mark.slow  # bf16 convolutions are slow on CPU (~20-60 s for one step)
def test_bf16_mixed_precision_trains_on_cpu(data_root, tmp_path):
    cfg = tiny_cfg(
        data_root, tmp_path, "trainer.precision=bf16-mixed", "callbacks=none", "logger=none", "+trainer.fast_dev_run=1"
    )
    datamodule, model, trainer = build(cfg)
    trainer.fit(model, datamodule=datamodule)
    assert trainer.precision == "bf16-mixed"
    assert torch.isfinite(trainer.callback_metrics["train/loss"])


def test_resolve_ckpt_path_auto_picks_newest(tmp_path):
    assert resolve_ckpt_path("auto", tmp_path) is None  # fresh start
    assert resolve_ckpt_path("last", tmp_path) == "last"  # Lightning's own values pass through
    assert resolve_ckpt_path(None, tmp_path) is None
    (tmp_path / "checkpoints").mkdir()
    resumable = {
        "state_dict": {},
        "optimizer_states": [],
        "lr_schedulers": [],
        "loops": {},
        "epoch": 0,
        "global_step": 1,
    }  # auto skips files that do not load or hold no training state
    last = tmp_path / "checkpoints" / "last.ckpt"
    torch.save(resumable, last)
    assert resolve_ckpt_path("auto", tmp_path) == str(last)
    hpc = tmp_path / "hpc_ckpt_1.ckpt"
    torch.save(resumable, hpc)
    os.utime(last, (1, 1))  # the SLURM pre-emption save is newer
    assert resolve_ckpt_path("auto", tmp_path) == str(hpc)


@pytest.mark.parametrize(
    "env, rank",
    [
        ({}, 0),
        ({"RANK": "3"}, 3),
        ({"SLURM_PROCID": "1"}, 1),
        ({"LOCAL_RANK": "1"}, 1),
        ({"LOCAL_RANK": "0", "NODE_RANK": "1"}, 1000),
        ({"RANK": "0", "SLURM_PROCID": "5"}, 0),
    ],
)
def test_env_global_rank(monkeypatch, env, rank):
    for key in ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert env_global_rank() == rank


def test_gpus_group_sets_devices_batch_and_lr_rule():
    cfg = compose("train", ["gpus=8", "backbone=dla"])
    t = cfg.trainer
    assert (t.accelerator, t.devices, t.num_nodes, t.strategy) == ("gpu", 8, 1, "ddp")
    assert t.sync_batchnorm is True  # on by default for multi-GPU; false = the original's per-GPU BN
    assert cfg.data.batch_size * t.devices * t.num_nodes == 128
    cfg = compose("train", ["gpus=2x8", "backbone=dla", "trainer.sync_batchnorm=false", "trainer.precision=16-mixed"])
    assert (cfg.trainer.devices, cfg.trainer.num_nodes, cfg.trainer.sync_batchnorm) == (8, 2, False)
    assert cfg.trainer.precision == "16-mixed"
    cfg = compose("train", ["gpus=cpu"])
    assert (cfg.trainer.accelerator, cfg.trainer.devices, cfg.trainer.strategy) == ("cpu", 1, "auto")


@pytest.mark.slow
def test_torchrun_shares_one_folder_and_resumes(data_root, tmp_path):
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes",
        "1",
        "--nproc-per-node",
        "2",
        "--rdzv-backend",
        "c10d",
        "--rdzv-endpoint",
        "localhost:29613",
        "--rdzv-id",
        "job42",
        "-m",
    ]
    common = [
        *TINY,
        f"data.root={data_root}",
        "cluster=torchrun",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.strategy=ddp",
    ]
    run_cli(tmp_path, *common, launcher=torchrun)
    run = tmp_path / "outputs" / "quickstart" / "torchrun-job42"
    assert [p.name for p in (tmp_path / "outputs" / "quickstart").iterdir()] == ["torchrun-job42"]
    assert torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["epoch"] == 0
    # The same rendezvous id again with one more epoch: ckpt_path=auto resumes from last.ckpt.
    run_cli(tmp_path, *common, "trainer.max_epochs=2", launcher=torchrun)
    assert torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["epoch"] == 1
    assert "resuming from" in (run / "train.log").read_text()
