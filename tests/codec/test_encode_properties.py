"""Property tests of the target encoder on random people, crops and flips (METHOD §1.4)."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from centerpose.codec.encode import encode_pose_targets
from centerpose.codec.gaussian import draw_gaussian, radius_from_box
from centerpose.data.augment import draw_train_geometry, sample_transforms
from centerpose.keypoints import COCO_PERSON, KeypointSpec

SPECS = [COCO_PERSON, KeypointSpec(names=("a", "left_b", "right_b"), flip_pairs=((1, 2),))]
O = 128


@st.composite
def scenes(draw):
    spec = draw(st.sampled_from(SPECS))
    J = spec.num_joints
    width, height = draw(st.integers(16, 900)), draw(st.integers(16, 900))
    n = draw(st.integers(0, 40))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    # people anywhere, partly or fully outside the image, tiny or large, with 0..J labelled joints
    x = rng.uniform(-0.5 * width, 1.3 * width, n)
    y = rng.uniform(-0.5 * height, 1.3 * height, n)
    tiny = rng.random(n) < 0.3
    w = np.where(tiny, rng.uniform(0, 4, n), rng.uniform(0, width, n))
    h = np.where(tiny, rng.uniform(0, 4, n), rng.uniform(0, height, n))
    boxes = np.stack([x, y, x + w, y + h], 1).astype(np.float32)
    kps = np.zeros((n, J, 3), np.float32)
    kps[..., 0] = x[:, None] + rng.uniform(-0.2, 1.2, (n, J)) * w[:, None]
    kps[..., 1] = y[:, None] + rng.uniform(-0.2, 1.2, (n, J)) * h[:, None]
    kps[..., 2] = rng.choice([0, 0, 1, 2], (n, J))
    kps[rng.random(n) < 0.2] = 0  # zero-keypoint / crowd-like people
    geo = draw_train_geometry(
        width,
        height,
        np.random.RandomState(seed),
        rand_crop=draw(st.booleans()),
        flip=draw(st.sampled_from([0.0, 0.5, 1.0])),
    )
    max_objs = draw(st.integers(1, 32))
    return spec, width, boxes, kps, geo, max_objs


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenes())
def test_encoding_invariants(scene):
    spec, width, boxes, kps, geo, N = scene
    J = spec.num_joints
    _, t_rot, t_out = sample_transforms(geo, 512, O)
    t = encode_pose_targets(
        boxes, kps, t_out, t_rot, flipped=geo.flipped, image_width=width, rot=geo.rot, max_objs=N, keypoints_spec=spec
    )
    shapes = {
        "hm": (1, O, O),
        "wh": (N, 2),
        "reg": (N, 2),
        "ind": (N,),
        "reg_mask": (N,),
        "hps": (N, 2 * J),
        "hps_mask": (N, 2 * J),
        "hm_hp": (J, O, O),
        "hp_offset": (N * J, 2),
        "hp_ind": (N * J,),
        "hp_mask": (N * J,),
    }
    for key, shape in shapes.items():
        assert t[key].shape == shape, key
    assert t["reg_mask"].dtype == t["hps_mask"].dtype == np.uint8 and t["hp_mask"].dtype == np.int64

    encoded = (t["wh"] > 0).all(axis=1)  # rot = 0: only boxes with positive clipped size are kept
    n_enc = int(encoded.sum())
    assert n_enc <= min(len(boxes), N)
    assert not encoded[min(len(boxes), N) :].any()
    assert t["gt_det"].shape == (max(n_enc, 1), 4 + 1 + 2 * J + 1)
    assert not (t["reg_mask"].astype(bool) & ~encoded).any()
    assert (t["ind"][encoded] >= 0).all() and (t["ind"][encoded] < O * O).all()
    assert not t["ind"][~encoded].any() and not t["reg"][~encoded].any()
    assert ((t["reg"][encoded] >= 0) & (t["reg"][encoded] < 1)).all()
    assert (t["wh"] <= O - 1).all()

    # centre heatmap: peaks of exactly 1.0 at the encoded centres and nowhere else
    hm = t["hm"][0]
    assert hm.min() >= 0 and hm.max() <= 1
    centres = set(t["ind"][encoded].tolist())
    assert set(np.flatnonzero(hm == 1.0).tolist()) == centres
    # and it is the max-merge of the per-person Gaussians (order-independent)
    ref = np.zeros((O, O), np.float32)
    radii = radius_from_box(t["wh"][encoded, 1], t["wh"][encoded, 0])
    for ind, r in zip(t["ind"][encoded][::-1], radii[::-1]):
        draw_gaussian(ref, (ind % O, ind // O), int(r))
    np.testing.assert_array_equal(hm, ref)

    # joints: masks agree, indices in range, offsets in [0, 1), hps points at the same position
    hp_mask = t["hp_mask"].reshape(N, J).astype(bool)
    np.testing.assert_array_equal(hp_mask, t["hps_mask"].reshape(N, J, 2)[..., 0].astype(bool))
    np.testing.assert_array_equal(t["hps_mask"].reshape(N, J, 2)[..., 0], t["hps_mask"].reshape(N, J, 2)[..., 1])
    assert not (hp_mask & ~t["reg_mask"].astype(bool)[:, None]).any()
    m = hp_mask.reshape(-1)
    assert not t["hp_ind"][~m].any() and not t["hp_offset"][~m].any()
    assert ((t["hp_ind"][m] >= 0) & (t["hp_ind"][m] < O * O)).all()
    assert ((t["hp_offset"][m] >= 0) & (t["hp_offset"][m] < 1)).all()
    joint_xy = np.stack([t["hp_ind"] % O, t["hp_ind"] // O], 1) + t["hp_offset"]
    centre_xy = np.repeat(np.stack([t["ind"] % O, t["ind"] // O], 1), J, axis=0)
    np.testing.assert_allclose((centre_xy + t["hps"].reshape(N * J, 2))[m], joint_xy[m], atol=1e-4)
    hm_hp = t["hm_hp"].reshape(J, -1)
    joint_of = np.tile(np.arange(J), N)
    for j in range(J):
        assert set(np.flatnonzero(hm_hp[j] == 1.0).tolist()) == set(t["hp_ind"][m & (joint_of == j)].tolist())
    assert hm_hp.min() >= 0 and hm_hp.max() <= 1


@settings(max_examples=20, deadline=None)
@given(scenes(), st.floats(-30, 30).filter(lambda r: abs(r) > 0.1))
def test_rotation_invariants(scene, rot):
    spec, width, boxes, kps, geo, N = scene
    geo.rot = rot
    _, t_rot, t_out = sample_transforms(geo, 512, O)
    t = encode_pose_targets(
        boxes, kps, t_out, t_rot, flipped=geo.flipped, image_width=width, rot=rot, max_objs=N, keypoints_spec=spec
    )
    assert (t["hm"] == np.float32(0.9999)).all()
    assert not t["reg_mask"].any() and not t["hps_mask"].any()
    assert t["gt_det"].shape[0] == max(min(len(boxes), N), 1)  # nobody is skipped under rotation
    m = t["hp_mask"].astype(bool)
    assert ((t["hp_offset"][m] >= 0) & (t["hp_offset"][m] < 1)).all()
