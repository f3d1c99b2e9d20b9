"""Results format (QUIRK E13) and COCO evaluation on coco-mini val."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
from pycocotools.coco import COCO

from centerpose.evaluation.coco import (
    BBOX_STAT_NAMES,
    KEYPOINT_STAT_NAMES,
    evaluate_coco,
    round2,
    save_coco_results,
    to_coco_results,
)


def test_round2_is_correctly_rounded_decimal():
    assert [round2(v) for v in (0.125, 2.675, -0.001, 1.005, 3.0)] == [0.12, 2.67, -0.0, 1.0, 3.0]
    assert str(round2(-0.001)) == "-0.0"


def test_format_key_order_and_rounding():
    row = np.array([[0.004, 10.125, 1.006, 20.0, 0.045, 1.235, 2.0, 3.3333, -0.004]], dtype=np.float32)
    out = to_coco_results({np.int32(7): row}, category_id=1)
    assert len(out) == 1
    d = out[0]
    assert list(d) == ["image_id", "category_id", "bbox", "score", "keypoints"]
    assert type(d["image_id"]) is int and d["image_id"] == 7 and d["category_id"] == 1
    f = [float(v) for v in row[0]]  # the float32 values as Python floats
    # Width/height from the unrounded values, then rounded: not round(x2) - round(x1).
    assert d["bbox"] == [round2(f[0]), round2(f[1]), round2(f[2] - f[0]), round2(f[3] - f[1])]
    assert d["bbox"][2] == 1.0 and round2(f[2]) - round2(f[0]) == 1.01
    assert d["score"] == round2(f[4]) == 0.05  # float32(0.045) > 0.045, while round2(0.045) == 0.04
    assert d["keypoints"] == [round2(f[5]), 2.0, 1.0, 3.33, -0.0, 1.0]
    assert json.loads(json.dumps(out)) == out


def test_format_rejects_bad_rows():
    with pytest.raises(ValueError, match="image 3"):
        to_coco_results({3: np.zeros((2, 6), np.float32)})


@pytest.fixture(scope="module")
def coco_gt(coco_mini):
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(coco_mini / "annotations" / "person_keypoints_val2017.json"))


def _gt_rows(coco: COCO, shuffle_joints: bool = False) -> dict[int, np.ndarray]:
    rng = np.random.default_rng(0)
    rows: dict[int, np.ndarray] = {}
    for img_id in sorted(coco.getImgIds()):
        anns = [a for a in coco.loadAnns(coco.getAnnIds(imgIds=img_id)) if not a["iscrowd"]]
        r = []
        # People without keypoints (ignored by the keypoint eval) ranked last, so the top 20 keep the others.
        for a in sorted(anns, key=lambda a: a["num_keypoints"] == 0):
            x, y, w, h = a["bbox"]
            score = 1.0 if a["num_keypoints"] > 0 else 0.5
            kps = np.asarray(a["keypoints"], np.float32).reshape(-1, 3)[:, :2]
            if shuffle_joints:
                kps = kps[rng.permutation(len(kps))]
            r.append([x, y, x + w, y + h, score, *kps.reshape(-1)])
        rows[img_id] = np.asarray(r, np.float32).reshape(-1, 5 + 34)
    return rows


def test_perfect_predictions_score_one(coco_gt):
    results = to_coco_results(_gt_rows(coco_gt))
    snapshot = json.dumps(results)
    stats = evaluate_coco(coco_gt, results)
    assert list(stats) == list(KEYPOINT_STAT_NAMES) + [f"bbox_{n}" for n in BBOX_STAT_NAMES]
    assert stats["AP"] == pytest.approx(1.0) and stats["AR"] == pytest.approx(1.0)
    assert stats["bbox_AP"] == pytest.approx(1.0)
    assert json.dumps(results) == snapshot  # loadRes must not annotate the caller's dicts


def test_shuffled_keypoints_score_lower(coco_gt):
    stats = evaluate_coco(coco_gt, to_coco_results(_gt_rows(coco_gt, shuffle_joints=True)))
    assert stats["AP"] < 0.05
    assert stats["bbox_AP"] == pytest.approx(1.0)  # boxes untouched


def test_empty_results_and_quiet(coco_gt, capsys):
    stats = evaluate_coco(coco_gt, [])
    assert stats["AP"] == 0.0 and stats["bbox_AP"] == 0.0
    assert capsys.readouterr().out == ""


def test_save_results(tmp_path):
    rows = {1: np.zeros((1, 39), np.float32)}
    path = save_coco_results(to_coco_results(rows), tmp_path / "sub" / "results.json")
    assert json.loads(path.read_text())[0]["keypoints"][:3] == [0.0, 0.0, 1.0]
