"""Skeleton drawing: original CenterNet colours, thresholds, custom specs, ground truth and side-by-side."""

from __future__ import annotations

import numpy as np
import pytest

from centerpose.keypoints import COCO_PERSON, KeypointSpec
from centerpose.inference.visualize import draw_ground_truth, draw_poses, edge_colours, joint_colours, side_by_side

BLUE, RED, MAGENTA = (255, 0, 0), (0, 0, 255), (255, 0, 255)

# The original debugger's coco_hp edge list with its `ec` colours (BGR), in the debugger's own order.
ORIGINAL_EDGE_COLOURS = {
    (0, 1): BLUE,
    (0, 2): RED,
    (1, 3): BLUE,
    (2, 4): RED,
    (3, 5): BLUE,
    (4, 6): RED,
    (5, 6): MAGENTA,
    (5, 7): BLUE,
    (7, 9): BLUE,
    (6, 8): RED,
    (8, 10): RED,
    (5, 11): BLUE,
    (6, 12): RED,
    (11, 12): MAGENTA,
    (11, 13): BLUE,
    (13, 15): BLUE,
    (12, 14): RED,
    (14, 16): RED,
}


def _person(cx: float = 100.0, cy: float = 100.0) -> np.ndarray:
    """(17, 2) a plausible upright COCO person, about 120 px tall."""
    pts = {
        "nose": (0, -50),
        "left_eye": (4, -54),
        "right_eye": (-4, -54),
        "left_ear": (9, -52),
        "right_ear": (-9, -52),
        "left_shoulder": (18, -35),
        "right_shoulder": (-18, -35),
        "left_elbow": (30, -10),
        "right_elbow": (-30, -10),
        "left_wrist": (36, 14),
        "right_wrist": (-36, 14),
        "left_hip": (12, 10),
        "right_hip": (-12, 10),
        "left_knee": (14, 40),
        "right_knee": (-14, 40),
        "left_ankle": (15, 68),
        "right_ankle": (-15, 68),
    }
    return np.array([pts[n] for n in COCO_PERSON.names], np.float64) + [cx, cy]


def _blank(h: int = 200, w: int = 200) -> np.ndarray:
    return np.full((h, w, 3), 90, np.uint8)


def _mid(joints: np.ndarray, a: str, b: str) -> tuple[int, int]:
    i, j = COCO_PERSON.names.index(a), COCO_PERSON.names.index(b)
    x, y = np.round((joints[i] + joints[j]) / 2).astype(int)
    return int(y), int(x)


def test_coco_colours_match_the_original():
    ec = dict(zip(COCO_PERSON.skeleton, edge_colours(COCO_PERSON)))
    assert set(ec) == set(ORIGINAL_EDGE_COLOURS)
    assert ec == ORIGINAL_EDGE_COLOURS
    assert joint_colours(COCO_PERSON) == [MAGENTA] + [BLUE, RED] * 8


def test_draws_limbs_and_leaves_the_rest():
    img = _blank()
    joints = _person()
    out = draw_poses(img, np.array([[60, 40, 140, 175]]), np.array([0.9]), joints[None], draw_boxes=False)
    assert np.array_equal(img, _blank()), "the input image was modified"
    assert tuple(out[_mid(joints, "left_shoulder", "left_elbow")]) == BLUE
    assert tuple(out[_mid(joints, "right_knee", "right_ankle")]) == RED
    assert tuple(out[_mid(joints, "left_hip", "right_hip")]) == MAGENTA
    changed = (out != img).any(-1)
    assert not changed[:, :50].any() and not changed[:, 150:].any()
    assert changed.sum() > 300


def test_boxes_and_scores_are_optional():
    joints = _person()[None]
    box = np.array([[55, 30, 145, 180]])
    with_box = draw_poses(_blank(), box, [0.9], joints, draw_boxes=True)
    without = draw_poses(_blank(), box, [0.9], joints, draw_boxes=False)
    assert tuple(with_box[100, 55]) == (255, 255, 255)  # on the left box edge, far from the skeleton
    assert tuple(without[100, 55]) == (90, 90, 90)


def test_score_threshold_is_strict():
    joints, box = _person()[None], np.array([[60, 40, 140, 175]])
    assert np.array_equal(draw_poses(_blank(), box, [0.3], joints), _blank())
    assert np.array_equal(draw_poses(_blank(), box, [0.1], joints, score_thresh=0.3), _blank())
    assert not np.array_equal(draw_poses(_blank(), box, [0.31], joints), _blank())


def test_mixed_people_only_the_confident_one_is_drawn():
    joints = np.stack([_person(60, 100), _person(150, 100)])
    out = draw_poses(_blank(200, 220), np.zeros((2, 4)), [0.9, 0.05], joints, draw_boxes=False)
    changed = (out != 90).any(-1)
    assert changed[:, :100].any() and not changed[:, 110:].any()


def test_joint_threshold_hides_joints_and_their_edges():
    joints = np.concatenate([_person(), np.ones((17, 1))], axis=1)
    le = COCO_PERSON.names.index("left_elbow")
    joints[le, 2] = 0.05
    out = draw_poses(_blank(), np.zeros((1, 4)), [0.9], joints[None], kpt_thresh=0.1, draw_boxes=False)
    y, x = int(joints[le, 1]), int(joints[le, 0])
    assert tuple(out[y, x]) == (90, 90, 90)
    assert tuple(out[_mid(joints[:, :2], "left_shoulder", "left_elbow")]) == (90, 90, 90)
    assert tuple(out[_mid(joints[:, :2], "right_shoulder", "right_elbow")]) == RED
    nan = _person()
    nan[le] = np.nan
    assert np.array_equal(draw_poses(_blank(), np.zeros((1, 4)), [0.9], nan[None], draw_boxes=False), out)


def test_custom_five_joint_spec():
    spec = KeypointSpec(
        names=("head", "left_hand", "right_hand", "left_foot", "right_foot"),
        flip_pairs=((1, 2), (3, 4)),
        skeleton=((0, 1), (0, 2), (1, 3), (3, 4)),
    )
    assert joint_colours(spec) == [MAGENTA, BLUE, RED, BLUE, RED]
    assert edge_colours(spec) == [BLUE, RED, BLUE, MAGENTA]
    joints = np.array([[[100, 40], [60, 100], [140, 100], [70, 170], [130, 170]]], np.float64)
    out = draw_poses(_blank(), np.zeros((1, 4)), [1.0], joints, keypoints=spec, draw_boxes=False)
    assert tuple(out[70, 80]) == BLUE  # midpoint of head -> left_hand
    assert tuple(out[170, 100]) == MAGENTA  # midpoint of left_foot -> right_foot
    with pytest.raises(ValueError, match="5-joint"):
        draw_poses(_blank(), np.zeros((1, 4)), [1.0], _person()[None], keypoints=spec)


def test_spec_without_flip_pairs_gets_a_fixed_palette():
    spec = KeypointSpec(names=("a", "b", "c", "d"), flip_pairs=(), skeleton=((0, 1), (1, 2), (2, 3)))
    colours = joint_colours(spec)
    assert colours == joint_colours(spec) and len(set(colours)) == 4
    assert len(set(edge_colours(spec))) == 3


def test_ground_truth_uses_visibility():
    joints = _person()
    v = np.full(17, 2)
    la = COCO_PERSON.names.index("left_ankle")
    v[la] = 0
    v[COCO_PERSON.names.index("right_knee")] = 1  # occluded but labelled: still drawn
    flat = np.concatenate([joints, v[:, None]], axis=1).round().astype(int).reshape(-1).tolist()
    ann = {"id": 7, "bbox": [55, 30, 90, 150], "keypoints": flat, "iscrowd": 0}
    crowd = {"id": 8, "bbox": [0, 0, 20, 20], "keypoints": [0] * 51, "iscrowd": 1}
    out = draw_ground_truth(_blank(), [ann, crowd])
    assert tuple(out[_mid(joints, "left_knee", "left_ankle")]) == (90, 90, 90)
    assert tuple(out[_mid(joints, "right_knee", "right_ankle")]) == RED
    assert tuple(out[_mid(joints, "left_hip", "left_knee")]) == BLUE
    assert tuple(out[100, 55]) == (255, 255, 255)
    assert tuple(out[10, 0]) == (90, 90, 90)  # the crowd box is not drawn
    with pytest.raises(ValueError, match="annotation 7"):
        draw_ground_truth(_blank(), [dict(ann, keypoints=flat[:-3])])


def test_empty_and_bad_inputs():
    assert np.array_equal(draw_poses(_blank(), np.zeros((0, 4)), np.zeros(0), np.zeros((0, 17, 3))), _blank())
    assert np.array_equal(draw_ground_truth(_blank(), []), _blank())
    with pytest.raises(ValueError, match="uint8"):
        draw_poses(np.zeros((10, 10, 3), np.float32), np.zeros((0, 4)), [], np.zeros((0, 17, 2)))
    with pytest.raises(ValueError, match="differ"):
        draw_poses(_blank(), np.zeros((2, 4)), [0.9], _person()[None])


def test_side_by_side():
    left = np.zeros((100, 80, 3), np.uint8)
    right = np.full((50, 60, 3), 200, np.uint8)
    out = side_by_side(left, right, gap=4)
    assert out.shape == (100, 80 + 4 + 120, 3)
    assert tuple(out[90, 150]) == (200, 200, 200)
    assert out[:20, :40].any(), "the left title is missing"
    bare = side_by_side(left, right, titles=None, gap=0)
    assert bare.shape == (100, 200, 3) and not bare[:, :80].any()
