"""Sweeps: Optuna over --multirun returns the optimised metric, cluster configs compose, wandb groups a sweep."""

from __future__ import annotations

import importlib.util
import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from centerpose.config import compose
from test_distributed import TINY, run_cli  # shared tiny-run helpers

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    from centerpose.data.synthetic import write_synthetic_coco

    root = tmp_path_factory.mktemp("synthetic")
    write_synthetic_coco(root, num_train=8, num_val=4, image_size=(128, 128), seed=0)
    return root


def wandb_records(run_dir: Path) -> list:
    """The protobuf records of an offline wandb run (its ``run-<id>.wandb`` file, LevelDB log format:
    a 7-byte file header, 32 KiB blocks, records split into chunks with a 7-byte ``<crc, length, type>``)."""
    from wandb.proto import wandb_internal_pb2

    data = next(run_dir.glob("*.wandb")).read_bytes()
    assert data[:4] == b":W&B", "not a wandb transaction log"
    block, pos, chunks, records = 32768, 7, b"", []
    while pos + 7 <= len(data):
        left = block - pos % block
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if left < 7 or (length == 0 and kind == 0):  # block trailer / padding
            pos += left
            continue
        chunks += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # FULL or LAST chunk: a record is complete
            record = wandb_internal_pb2.Record()
            record.ParseFromString(chunks)
            records.append(record)
            chunks = b""
    return records


def test_optuna_sweep_returns_metric_and_groups_wandb_runs(data_root, tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    # val/loss (minimised) rather than the default val/AP: after one epoch every trial's AP is 0, and the test
    # must see the value each trial returned.
    run_cli(
        tmp_path,
        *TINY,
        f"data.root={data_root}",
        "hparams_search=optuna",
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.sampler.n_startup_trials=2",
        "hydra.sweep.dir=sweep",
        "optimized_metric=val/loss",
        "hydra.sweeper.direction=minimize",
        "logger=wandb",
        "trainer.accelerator=cpu",
    )
    sweep = tmp_path / "sweep"
    trials = [json.loads((sweep / str(i) / "metrics.json").read_text())["val/loss"] for i in range(2)]
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert results["best_value"] == pytest.approx(min(trials), rel=1e-6)
    assert set(results["best_params"]) == {"model.lr", "model.loss.hm_hp_weight", "model.loss.wh_weight"}

    runs = [next((sweep / str(i) / "wandb").glob("offline-run-*")) for i in range(2)]
    groups, names, keys = set(), set(), set()
    for run in runs:
        for record in wandb_records(run):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                groups.add(record.run.run_group)
                names.add(record.run.display_name)
                keys |= {item.key for item in record.run.config.update}
            elif kind == "config":
                keys |= {item.key for item in record.config.update}
            elif kind == "history":
                keys |= {item.key or "/".join(item.nested_key) for item in record.history.item}
    assert groups == {"quickstart/sweep"}, groups  # one group: <task_name>/<sweep folder>
    assert len(names) == 2 and all("model.lr=" in n for n in names), names
    for key in (
        "model",
        "data",
        "run",
        "lr",
        "global_batch_size",
        "world_size",
        "train/loss_epoch",
        "val/loss",
        "val/AP",
        "lr-Adam",
        "perf/train_images_per_s",
        "perf/val_images_per_s",
    ):
        assert key in keys, key


@pytest.mark.slow  # the Optuna test covers multirun; this adds the basic launcher (~30 s)
def test_basic_multirun_grid_one_folder_per_job(data_root, tmp_path):
    run_cli(
        tmp_path,
        *TINY,
        f"data.root={data_root}",
        "--multirun",
        "model.lr=0.001,0.002",
        "hydra.sweep.dir=grid",
        "logger=none",
        "trainer.accelerator=cpu",
    )
    grid = tmp_path / "grid"
    assert sorted(p.name for p in grid.iterdir() if p.is_dir()) == ["0", "1"]
    lrs = [json.loads((grid / j / "run_info.json").read_text())["overrides"] for j in "01"]
    assert [o for o in lrs[0] if o.startswith("model.lr")] == ["model.lr=0.001"]
    assert [o for o in lrs[1] if o.startswith("model.lr")] == ["model.lr=0.002"]
    assert not (tmp_path / "outputs").exists()


@pytest.mark.slow
def test_multirun_of_ddp_jobs(data_root, tmp_path):
    """Each job of a local sweep launches its own 2 DDP processes in its own folder."""
    run_cli(
        tmp_path,
        *TINY,
        f"data.root={data_root}",
        "--multirun",
        "model.lr=1e-3,2e-3",
        "hydra.sweep.dir=ddp",
        "logger=csv",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.strategy=ddp",
    )
    for job in "01":
        folder = tmp_path / "ddp" / job
        assert "world_size: 2" in (folder / "csv" / "hparams.yaml").read_text()
        assert (folder / "checkpoints" / "last.ckpt").is_file()
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == ["0", "1", "multirun.yaml"]


def test_slurm_launcher_and_cluster_configs_compose_without_submitit():
    cfg = compose("train", ["gpus=2x8", "cluster=slurm", "hydra/launcher=slurm", "hparams_search=optuna"])
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node) == (2, 8, 8)
    assert cfg.hydra.sweeper.direction == "maximize" and cfg.optimized_metric == "val/AP"
    assert cfg.ckpt_path == "auto"
    assert cfg.trainer.plugins[0]._target_.endswith("SLURMEnvironment") and cfg.trainer.plugins[0].auto_requeue
    assert cfg.hydra.run.dir.startswith("outputs/train/slurm-")
    cfg = compose("train", ["gpus=8", "cluster=torchrun"])
    assert cfg.hydra.run.dir.startswith("outputs/train/torchrun-") and cfg.ckpt_path == "auto"


def test_cfg_job_prints_slurm_sweep_without_running(tmp_path):
    # The CLI path (`--cfg`), also where hydra-submitit-launcher is not installed.
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "centerpose.train",
            "--cfg",
            "hydra",
            "hydra/launcher=slurm",
            "cluster=slurm",
            "gpus=8",
            "experiment=multi_pose_dla_1x",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    hydra_cfg = yaml.safe_load(out.stdout)["hydra"]
    assert hydra_cfg["launcher"]["tasks_per_node"] == "${trainer.devices}"
    if importlib.util.find_spec("submitit") is None:
        assert not list(tmp_path.iterdir())  # nothing was run or written


@pytest.mark.parametrize("script", ["slurm_train.sbatch", "torchrun_train.sh"])
def test_launch_scripts_are_valid_bash_with_composable_defaults(script):
    path = REPO / "scripts" / script
    assert subprocess.run(["bash", "-n", str(path)]).returncode == 0
    text = path.read_text()
    assert "centerpose.train" in text
    cluster = "cluster=slurm" if script.endswith("sbatch") else "cluster=torchrun"
    assert cluster in text
    compose("train", [cluster, "experiment=multi_pose_dla_3x", "gpus=2x8", "logger=wandb"])
