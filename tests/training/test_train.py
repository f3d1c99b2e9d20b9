"""The training system end to end on tiny synthetic data: fast_dev_run per backbone, resume, loggers, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from centerpose.config import compose
from centerpose.data import DatasetNotFoundError
from centerpose.train import build, train


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory) -> Path:
    from centerpose.data.synthetic import write_synthetic_coco

    root = tmp_path_factory.mktemp("synthetic")
    write_synthetic_coco(root, num_train=6, num_val=3, image_size=(128, 128), seed=1)
    return root


def make_cfg(root: Path, out: Path, *overrides: str):
    return compose(
        "train",
        [
            "experiment=quickstart",
            f"data.root={root}",
            "data.synthetic=null",
            "data.input_size=128",
            "data.batch_size=2",
            "data.val_batch_size=2",
            "data.num_workers=0",
            f"paths.output_dir={out}",
            "logger=none",
            *overrides,
        ],
    )


@pytest.mark.parametrize(
    "backbone",
    ["backbone=dla", "backbone=resnet50", "backbone=hourglass", "backbone=timm backbone_name=mobilenetv3_large_100"],
)
def test_fast_dev_run_per_backbone(synthetic_root, tmp_path, backbone):
    # each architecture's own neck (the quickstart's FPN is for its RegNetX)
    cfg = make_cfg(
        synthetic_root, tmp_path, *backbone.split(), "model.net.neck=null", "callbacks=none", "+trainer.fast_dev_run=1"
    )
    datamodule, model, trainer = build(cfg)
    trainer.fit(model, datamodule=datamodule)
    logged = trainer.callback_metrics
    for name in ("loss", "hm_loss", "hp_loss", "hm_hp_loss", "hp_offset_loss", "wh_loss", "off_loss"):
        assert torch.isfinite(logged[f"train/{name}"]), name
        assert f"val/{name}" in logged
    assert "val/AP" in logged and 0.0 <= float(logged["val/AP"]) <= 1.0


def test_resume_from_last_continues_epoch_and_lr(synthetic_root, tmp_path):
    common = (
        "schedule=1x",
        "model.lr=0.01",
        "schedule.milestones=[1]",
        "trainer.check_val_every_n_epoch=1",
        "trainer.enable_progress_bar=false",
        "callbacks.rich_progress_bar=null",
    )
    first = make_cfg(synthetic_root, tmp_path / "a", "trainer.max_epochs=2", *common)
    train(first)
    last = tmp_path / "a" / "checkpoints" / "last.ckpt"
    ckpt = torch.load(last, map_location="cpu", weights_only=True)
    assert ckpt["epoch"] == 1  # 0-based: two epochs done
    assert ckpt["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(0.001)  # dropped after epoch 1
    assert "centerpose_config" in ckpt

    second = make_cfg(synthetic_root, tmp_path / "b", "trainer.max_epochs=3", f"ckpt_path={last}", *common)
    datamodule, model, trainer = build(second)
    seen = {}

    def on_train_epoch_start():
        seen["epoch"] = trainer.current_epoch
        seen["lr"] = trainer.optimizers[0].param_groups[0]["lr"]

    model.on_train_epoch_start = on_train_epoch_start
    trainer.fit(model, datamodule=datamodule, ckpt_path=str(last))
    assert seen == {"epoch": 2, "lr": pytest.approx(0.001)}
    resumed = torch.load(tmp_path / "b" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert resumed["epoch"] == 2
    assert resumed["lr_schedulers"][0]["last_epoch"] == 3


def test_csv_logs_checkpoints_and_run_record(synthetic_root, tmp_path):
    cfg = make_cfg(
        synthetic_root,
        tmp_path,
        "logger=csv",
        "trainer.max_epochs=1",
        "trainer.check_val_every_n_epoch=1",
        "callbacks.rich_progress_bar=null",
    )
    value = train(cfg)
    assert value is not None and 0.0 <= value <= 1.0  # val/AP, the optimised metric
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    metrics_csv = next((tmp_path / "csv").rglob("metrics.csv")).read_text()
    for key in ("train/loss_epoch", "val/loss", "val/AP", "lr-Adam"):
        assert key in metrics_csv, key
    info = json.loads((tmp_path / "run_info.json").read_text())
    assert info["centerpose_version"] and "command" in info
    assert (tmp_path / "config_resolved.yaml").is_file()


def test_wandb_offline_writes_run_files(synthetic_root, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    cfg = make_cfg(
        synthetic_root,
        tmp_path,
        "logger=wandb",
        "logger.wandb.group=sweep-a",
        "trainer.max_epochs=1",
        "trainer.check_val_every_n_epoch=1",
        "callbacks.rich_progress_bar=null",
    )
    train(cfg)
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    assert list(runs[0].glob("*.wandb")), "no offline run file"


def test_missing_dataset_error_says_what_was_looked_for(tmp_path):
    cfg = make_cfg(tmp_path / "nowhere", tmp_path, "callbacks=none")
    datamodule, _, _ = build(cfg)
    with pytest.raises(DatasetNotFoundError) as err:
        datamodule.setup("fit")
    message = str(err.value)
    assert "person_keypoints_train2017.json" in message and "cocodataset.org" in message
    assert str(tmp_path / "nowhere") in message


def test_unknown_timm_backbone_lists_valid_choices():
    from centerpose.models import build_model

    with pytest.raises(ValueError) as err:
        build_model(backbone="definitely_not_a_model")
    assert "dla34" in str(err.value) and "resnet50" in str(err.value)
