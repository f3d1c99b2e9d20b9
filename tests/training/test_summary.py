"""End-of-run summary: final validation, metrics.json, history.json, curves.png and the printed table."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

from centerpose.config import compose
from centerpose.training.summary import RunHistory, plot_curves
from centerpose.train import train


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory) -> Path:
    from centerpose.data.synthetic import write_synthetic_coco

    root = tmp_path_factory.mktemp("synthetic")
    write_synthetic_coco(root, num_train=4, num_val=2, image_size=(128, 128), seed=3)
    return root


def test_plot_curves_draws_losses_and_ap(tmp_path):
    history = RunHistory()
    history.train = {e: {"loss": 10.0 / (e + 1), "hm_loss": 3.0 / (e + 1), "images_per_s": 5.0} for e in range(6)}
    history.val = {
        2: {"loss": 4.0, "AP": 0.1, "AP50": 0.3, "bbox_AP": 0.2},
        5: {"loss": 2.0, "AP": 0.4, "AP50": 0.7, "bbox_AP": 0.5},
    }
    png = plot_curves(history, tmp_path / "curves.png", title="test")
    image = cv2.imread(str(png))
    assert image is not None and image.shape[0] > 100 and image.std() > 5  # a drawn figure, not a blank
    assert plot_curves(RunHistory(), tmp_path / "none.png") is None


def test_train_ends_with_validated_final_weights_and_a_summary(synthetic_root, tmp_path, capsys):
    # Two epochs, validation due only every 5: the final weights are validated after the fit. The rich progress
    # bar stays in the callbacks: enable_progress_bar=false must not fail on it.
    cfg = compose(
        "train",
        [
            "experiment=quickstart",
            f"data.root={synthetic_root}",
            "data.synthetic=null",
            "data.input_size=64",
            "data.batch_size=2",
            "data.num_workers=0",
            "data.persistent_workers=false",
            f"paths.output_dir={tmp_path}",
            "trainer.max_epochs=2",
            "trainer.check_val_every_n_epoch=5",
            "trainer.enable_progress_bar=false",
            "callbacks.pose_images.every_n_epochs=1",
        ],
    )
    value = train(cfg)
    out = capsys.readouterr().out
    assert value is not None and 0.0 <= value <= 1.0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert "val/AP" in metrics and "val/bbox_AP" in metrics and "train/loss_epoch" in metrics
    history = json.loads((tmp_path / "history.json").read_text())
    assert sorted(history["train"]) == ["0", "1"] and list(history["val"]) == ["1"]
    assert history["val"]["1"]["AP"] == pytest.approx(metrics["val/AP"])
    assert (tmp_path / "curves.png").is_file()
    for text in (
        "kp AP",
        "box AP",
        "images/s",
        "checkpoints:",
        "python -m centerpose.evaluate model=",
        "python -m centerpose.predict model=",
    ):
        assert text in out, text
    # the printed commands decode as validation did (the quickstart's weighted snap and rescoring)
    evaluate_line = next(line for line in out.splitlines() if "centerpose.evaluate" in line)
    predict_line = next(line for line in out.splitlines() if "centerpose.predict" in line)
    assert "decode.snap=weighted decode.rescore=true" in evaluate_line
    assert predict_line.endswith("keep_res=false decode.snap=weighted decode.rescore=true")
    export_line = next(line for line in out.splitlines() if "centerpose.export" in line)
    assert export_line.endswith("outputs=people decode.snap=weighted decode.rescore=true")
    assert "litlogger" not in out
