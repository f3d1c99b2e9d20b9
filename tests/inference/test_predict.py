"""Predictor, `centerpose.predict` and `centerpose.evaluate` on a checkpoint trained for one tiny epoch."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from centerpose.config import compose
from centerpose.evaluate import evaluate
from centerpose.predict import predict, source_kind
from centerpose.codec.poses import Poses
from centerpose.inference.predictor import Predictor
from centerpose.train import train


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    """(checkpoint, synthetic dataset root) of a one-epoch resnet18 run at 128 px."""
    from centerpose.data.synthetic import write_synthetic_coco

    root = tmp_path_factory.mktemp("data")
    write_synthetic_coco(root, num_train=4, num_val=3, image_size=(128, 128), seed=3)
    out = tmp_path_factory.mktemp("run")
    cfg = compose(
        "train",
        [
            "experiment=quickstart",
            f"data.root={root}",
            "data.synthetic=null",
            "data.input_size=128",
            "data.batch_size=2",
            "data.num_workers=0",
            f"paths.output_dir={out}",
            "logger=none",
            "trainer.max_epochs=1",
            "trainer.check_val_every_n_epoch=1",
            "callbacks.rich_progress_bar=null",
            "trainer.enable_progress_bar=false",
        ],
    )
    train(cfg)
    return out / "checkpoints" / "last.ckpt", root


def test_predictor_on_path_array_and_list(trained):
    ckpt, root = trained
    predictor = Predictor.from_checkpoint(ckpt, device="cpu", score_thresh=0.0, K=10)
    image_path = next((root / "val2017").glob("*.jpg"))
    bgr = cv2.imread(str(image_path))
    by_path = predictor(image_path)
    by_array = predictor(bgr)
    by_rgb = predictor(bgr[..., ::-1].copy(), color="rgb")
    assert isinstance(by_path, Poses) and len(by_path) == 10
    np.testing.assert_array_equal(by_path.rows(), by_array.rows())
    np.testing.assert_array_equal(by_path.rows(), by_rgb.rows())
    assert by_path.keypoints.shape == (10, 17, 3)
    assert np.all((by_path.keypoints[..., 2] >= 0) & (by_path.keypoints[..., 2] <= 1))
    assert np.all(np.diff(by_path.scores) <= 0)  # sorted by score
    batch = predictor([image_path, bgr])
    assert isinstance(batch, list) and len(batch) == 2
    np.testing.assert_array_equal(batch[1].rows(), by_array.rows())
    with pytest.raises(FileNotFoundError, match="nope.jpg"):
        predictor(root / "nope.jpg")


def test_predictor_threshold_drops_low_scores(trained):
    ckpt, root = trained
    image_path = next((root / "val2017").glob("*.jpg"))
    everything = Predictor.from_checkpoint(ckpt, score_thresh=0.0, K=20)(image_path)
    cut = float(np.median(everything.scores))
    kept = Predictor.from_checkpoint(ckpt, score_thresh=cut, K=20)(image_path)
    assert len(kept) == int((everything.scores >= cut).sum())


def _predict_cfg(ckpt: Path, source, out: Path, *extra: str):
    return compose(
        "predict", [f"ckpt_path={ckpt}", f"source={source}", f"paths.output_dir={out}", "score_thresh=0.0", *extra]
    )


def test_predict_cli_image_folder_and_video(trained, tmp_path):
    ckpt, root = trained
    images = sorted((root / "val2017").glob("*.jpg"))
    out = predict(_predict_cfg(ckpt, images[0], tmp_path / "one"))
    assert (out / f"{images[0].stem}_pose.jpg").is_file()
    assert list(json.loads((out / "detections.json").read_text())) == [images[0].name]

    out = predict(_predict_cfg(ckpt, root / "val2017", tmp_path / "folder"))
    detections = json.loads((out / "detections.json").read_text())
    assert sorted(detections) == [p.name for p in images]
    assert {"box", "score", "keypoints"} <= set(detections[images[0].name][0])

    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 5, (128, 128))
    for p in images:
        writer.write(cv2.imread(str(p)))
    writer.release()
    out = predict(_predict_cfg(ckpt, video, tmp_path / "video"))
    assert (out / "clip_pose.mp4").stat().st_size > 0
    assert len(json.loads((out / "detections.json").read_text())) == len(images)
    capture = cv2.VideoCapture(str(out / "clip_pose.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == len(images)


def test_predict_video_with_tracking_writes_ids(trained, tmp_path):
    ckpt, root = trained
    image = cv2.imread(str(sorted((root / "val2017").glob("*.jpg"))[0]))
    video = tmp_path / "still.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 5, (128, 128))
    for _ in range(5):  # a still scene: every detection persists, so its track is confirmed on frame 2
        writer.write(image)
    writer.release()
    out = predict(
        _predict_cfg(
            ckpt,
            video,
            tmp_path / "tracked",
            "track=true",
            "tracker.high_thresh=0.0",
            "tracker.low_thresh=0.0",
            "tracker.min_hits=2",
        )
    )
    frames = json.loads((out / "detections.json").read_text())
    assert len(frames) == 5 and all(len(people) > 0 for people in frames.values())
    ids = [[p["id"] for p in people] for people in frames.values()]
    assert all(i == -1 for i in ids[0])
    for later in ids[1:]:
        assert min(later) >= 0 and len(set(later)) == len(later)
        assert sorted(later) == sorted(ids[1])
    assert (out / "still_pose.mp4").stat().st_size > 0


def test_predict_source_errors(tmp_path):
    assert source_kind("0") == "webcam"
    with pytest.raises(FileNotFoundError, match="missing"):
        source_kind(tmp_path / "missing.jpg")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="unknown file type"):
        source_kind(tmp_path / "notes.txt")


def test_evaluate_checkpoint_writes_results_metrics_and_times(trained, tmp_path):
    ckpt, root = trained
    cfg = compose(
        "evaluate",
        [
            f"ckpt_path={ckpt}",
            f"data.root={root}",
            f"paths.output_dir={tmp_path}",
            "data=synthetic",
            f"data.root={root}",
        ],
    )
    metrics = evaluate(cfg)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl", "bbox_AP"):
        assert key in saved and saved[key] == metrics[key]
    assert set(saved["time"]) >= {"load", "pre", "net", "dec", "post", "tot"}
    results = json.loads((tmp_path / "results.json").read_text())
    assert len(results) == 3 * 100  # K rows per image, no threshold (the original's protocol)
    assert list(results[0]) == ["image_id", "category_id", "bbox", "score", "keypoints"]


def test_oracle_evaluation_on_coco_mini(coco_mini, tmp_path):
    cfg = compose("evaluate", ["oracle=hm", "data=coco_mini", f"data.root={coco_mini}", f"paths.output_dir={tmp_path}"])
    metrics = evaluate(cfg)
    # METHOD.md §3.7: the original pipeline reaches exactly these with --eval_oracle_hm --eval_oracle_kps.
    assert metrics["AP"] == pytest.approx(1.0, abs=5e-5)
    assert metrics["bbox_AP"] == pytest.approx(0.9673, abs=5e-5)


def test_per_joint_oracle_reaches_the_ceiling_and_typos_stop_early(trained, tmp_path):
    """On the synthetic val figures the per-joint oracle decodes every joint exactly (AP 1.0); the shared map
    cannot beat it. A mistyped oracle setting stops before any image is read, as one error naming the key."""
    from centerpose.errors import RunError

    _, root = trained
    base = ["oracle=all", "data=synthetic", f"data.root={root}", "data.synthetic=null", "data.input_size=128"]
    shared = evaluate(compose("evaluate", [*base, f"paths.output_dir={tmp_path / 's'}"]))
    per_joint = evaluate(
        compose("evaluate", [*base, "test.joint_offsets=per_joint", f"paths.output_dir={tmp_path / 'p'}"])
    )
    assert per_joint["AP"] == pytest.approx(1.0, abs=5e-5) and per_joint["AP"] >= shared["AP"]
    with pytest.raises(RunError, match=r"test.joint_offsets=each: expected one of \['shared', 'per_joint'\]"):
        evaluate(compose("evaluate", [*base, "test.joint_offsets=each", f"paths.output_dir={tmp_path / 'x'}"]))
    with pytest.raises(RunError, match="oracle=everything"):
        evaluate(compose("evaluate", ["oracle=everything", *base[1:], f"paths.output_dir={tmp_path / 'y'}"]))
    assert not (tmp_path / "x").exists()
