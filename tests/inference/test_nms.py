"""Multi-scale merge: the original's soft_nms_39 (QUIRK E12, parity default) and the improved soft-NMS.

``soft_nms_original`` was checked bit for bit against the original's compiled ``nms.pyx`` (Cython 3, float32
rows of 39 columns): 0 differences on 500 random cases with duplicates, ties and sub-floor scores."""

from __future__ import annotations

import numpy as np
import pytest
from torch import nn

from centerpose.inference.nms import soft_nms, soft_nms_original
from centerpose.inference.predictor import Predictor


def _rows(boxes_scores, joints) -> np.ndarray:
    rows = np.zeros((len(boxes_scores), 5 + len(joints[0])), np.float32)
    rows[:, :5] = boxes_scores
    rows[:, 5:] = joints
    return rows


def test_original_mixes_a_discarded_rows_joints_into_a_kept_box():
    # A strong person, its faint duplicate (decays below 0.001 and is "discarded"), a separate person C.
    rows = _rows([[0, 0, 10, 10, 0.9], [0, 0, 10, 10, 0.005], [50, 50, 60, 60, 0.5]],
                 [[1, 1], [2, 2], [3, 3]])
    original = soft_nms_original(rows)
    assert original.shape == rows.shape  # every row is returned (the keep list is ignored)
    np.testing.assert_array_equal(original[0], rows[0])
    np.testing.assert_array_equal(original[1], rows[2])
    # The last slot: C's box and undecayed score with the discarded duplicate's joints (QUIRK E12).
    np.testing.assert_array_equal(original[2], [50, 50, 60, 60, 0.5, 2, 2])

    improved = soft_nms(rows)
    assert len(improved) == 2  # the duplicate is dropped, every kept row keeps its own joints
    np.testing.assert_array_equal(improved, rows[[0, 2]])


def test_both_decay_overlaps_the_same_way_when_nothing_is_discarded():
    rows = _rows([[0, 0, 10, 10, 0.9], [2, 0, 12, 10, 0.8], [40, 40, 50, 50, 0.7], [41, 40, 50, 51, 0.2]],
                 [[1, 1], [2, 2], [3, 3], [4, 4]])
    original, improved = soft_nms_original(rows), soft_nms(rows)
    np.testing.assert_allclose(original, improved, rtol=1e-6)  # same rows, same order (by selection)
    np.testing.assert_array_equal(original[:, 5], [1, 3, 2, 4])
    np.testing.assert_array_equal(original[:2, 4], rows[[0, 2], 4])
    assert original[2, 4] < 0.8 and original[3, 4] < 0.2  # overlapping rows were decayed


def test_original_leaves_non_overlapping_low_rows_in_place():
    # The original tests the floor only for rows that overlap the current top box.
    rows = _rows([[0, 0, 10, 10, 0.9], [100, 100, 110, 110, 0.0005]], [[1], [2]])
    np.testing.assert_array_equal(soft_nms_original(rows), rows)
    assert len(soft_nms(rows)) == 1


def test_original_on_random_rows_keeps_every_box_score_pair_it_did_not_discard():
    rng = np.random.default_rng(0)
    centres = rng.uniform(0, 200, (40, 2))
    rows = np.zeros((80, 9), np.float32)
    rows[:40, :2], rows[:40, 2:4] = centres - 10, centres + 10
    rows[40:, :4] = rows[:40, :4] + rng.normal(0, 0.5, (40, 4))  # a second scale's duplicates
    rows[:, 4] = rng.uniform(0, 0.02, 80)
    rows[:, 5:] = np.arange(80)[:, None]
    out = soft_nms_original(rows)
    assert out.shape == rows.shape
    assert sorted(out[:, 5].tolist()) == list(range(80))  # joint columns are only ever swapped
    assert (out[:, 4] <= rows[:, 4].max()).all()
    assert len(soft_nms(rows)) < 80


def test_predictor_merge_switch():
    assert Predictor(nn.Identity()).merge == "original"
    assert Predictor(nn.Identity(), merge="improved").merge == "improved"
    with pytest.raises(ValueError, match="merge"):
        Predictor(nn.Identity(), merge="average")
