"""Target encoding: radius, Gaussian drawing, flip, custom skeletons, dense_hp, rotation (METHOD §1.4)."""

from __future__ import annotations

import numpy as np
import pytest

from centerpose.codec.encode import encode_pose_targets
from centerpose.codec.gaussian import draw_gaussian, draw_gaussians, gaussian_kernel, gaussian_radius, radius_from_box
from centerpose.data.augment import get_affine_transform
from centerpose.keypoints import COCO_PERSON, KeypointSpec

# A 512 × 512 image seen whole: output = image / 4, so expected positions are easy to write.
T_OUT = get_affine_transform(np.float32([256, 256]), 512.0, 0, [128, 128])

HAND5 = KeypointSpec(names=("root", "left_a", "right_a", "left_b", "right_b"), flip_pairs=((1, 2), (3, 4)))


def person(box_xyxy, joints: dict[int, tuple[float, float]], J: int = 17):
    kp = np.zeros((J, 3), np.float32)
    for j, (x, y) in joints.items():
        kp[j] = (x, y, 2)
    return np.float32(box_xyxy), kp


def encode(people, **kw):
    boxes = np.stack([b for b, _ in people]) if people else np.zeros((0, 4), np.float32)
    kps = (
        np.stack([k for _, k in people])
        if people
        else np.zeros((0, kw.get("keypoints_spec", COCO_PERSON).num_joints, 3), np.float32)
    )
    kw.setdefault("image_width", 512)
    return encode_pose_targets(boxes, kps, T_OUT, kw.pop("trans_output_rot", T_OUT), **kw)


@pytest.mark.parametrize(
    "hw,r",
    [
        ((3, 3), 0),
        ((4, 4), 1),
        ((8, 8), 2),
        ((10, 10), 2),
        ((16, 16), 4),
        ((32, 32), 8),
        ((64, 64), 17),
        ((128, 128), 34),
        ((32, 15), 5),
        ((128, 20), 9),
    ],
)
def test_radius_reference_values(hw, r):
    assert max(0, int(gaussian_radius(*hw))) == r
    assert radius_from_box(np.float32([hw[0] - 0.5]), np.float32([hw[1] - 0.25])).tolist() == [r]  # ceil first


def test_radius_vectorised_equals_scalar_and_corrected_differs():
    h, w = np.meshgrid(np.arange(129), np.arange(129), indexing="ij")
    vec = gaussian_radius(h.ravel(), w.ravel())
    scalar = np.array([gaussian_radius(int(a), int(b)) for a, b in zip(h.ravel(), w.ravel())])
    np.testing.assert_array_equal(vec, scalar)
    # QUIRK D1: the written radius is ~0.273 × side; CornerNet's corrected roots give another value.
    assert gaussian_radius(64, 64) == pytest.approx(0.2733 * 64, rel=2e-3)
    assert gaussian_radius(64, 64, corrected=True) != pytest.approx(gaussian_radius(64, 64), rel=1e-2)


def test_gaussian_kernel_and_truncated_draw():
    g = gaussian_kernel(3)
    assert g.shape == (7, 7) and g[3, 3] == 1.0 and g[0, 0] < g[0, 3] < 1.0
    hm = np.zeros((10, 12), np.float32)
    draw_gaussian(hm, (0, 1), 3)  # truncated on the left and top, never renormalised
    np.testing.assert_array_equal(hm[0:5, 0:4], g[2:7, 3:7].astype(np.float32))
    assert hm[5:].sum() == 0 and hm[:, 4:].sum() == 0
    one = np.zeros((5, 5), np.float32)
    draw_gaussian(one, (4, 4), 0)
    assert one.sum() == 1.0 and one[4, 4] == 1.0
    draw_gaussian(one, (7, 2), 2)  # off the map: nothing
    assert one.sum() == 1.0


def test_draw_gaussians_equals_sequential_max_merge():
    rng = np.random.default_rng(0)
    n = 300
    idx, centers, radii = rng.integers(0, 5, n), rng.integers(-2, 66, (n, 2)), rng.integers(0, 20, n)
    a = np.zeros((5, 64, 64), np.float32)
    b = a.copy()
    draw_gaussians(a, idx, centers, radii)
    for i in rng.permutation(n):
        draw_gaussian(b[idx[i]], centers[i], int(radii[i]))
    np.testing.assert_array_equal(a, b)


def test_single_person_targets():
    box, kp = person([100, 120, 228, 376], {0: (164, 130), 5: (140, 200), 16: (600, 200)})
    t = encode([(box, kp)], keypoints_spec=COCO_PERSON)
    np.testing.assert_allclose(t["wh"][0], [32, 64])
    assert t["ind"][0] == 62 * 128 + 41 and t["reg_mask"][0] == 1
    np.testing.assert_allclose(t["reg"][0], [0, 0])
    r = radius_from_box(np.float32([64]), np.float32([32]))[0]
    assert t["hm"][0, 62, 41] == 1.0 and (t["hm"][0] > 0).sum() == (2 * r + 1) ** 2
    # joint 16 is labelled but off the map: dropped, not clipped; gt_det keeps its output position
    assert t["hp_mask"].reshape(32, 17)[0].tolist() == [1, 0, 0, 0, 0, 1] + [0] * 11
    np.testing.assert_allclose(t["hps"][0, 0:2], [41 - 41, 32.5 - 62])
    assert t["hp_ind"][0] == 32 * 128 + 41 and t["hm_hp"][0, 32, 41] == 1.0
    np.testing.assert_allclose(t["hp_offset"][0], [0, 0.5])
    assert t["gt_det"].shape == (1, 40)
    np.testing.assert_allclose(t["gt_det"][0, :5], [25, 30, 57, 94, 1])
    np.testing.assert_allclose(t["gt_det"][0, 5 + 32 : 5 + 34], [150, 50])


def test_sigma_joint_radius_scales_each_blob_by_its_oks_sigma():
    box, kp = person([100, 120, 228, 376], {0: (164, 130), 11: (150, 250)})  # nose and left hip
    r = int(radius_from_box(np.float32([64]), np.float32([32]))[0])
    box_t = encode([(box, kp)])
    sigma_t = encode([(box, kp)], joint_radius="sigma")
    nose_r = int(np.rint(r * 0.026 / 0.107))
    assert ((box_t["hm_hp"][0] > 0).sum(), (box_t["hm_hp"][11] > 0).sum()) == ((2 * r + 1) ** 2,) * 2
    assert (sigma_t["hm_hp"][0] > 0).sum() == (2 * nose_r + 1) ** 2  # face joints: sharper blobs
    np.testing.assert_array_equal(sigma_t["hm_hp"][11], box_t["hm_hp"][11])  # the widest joint keeps r
    for key in ("hm", "hps", "hp_offset", "hp_ind", "hp_mask"):  # only the joint heatmaps change
        np.testing.assert_array_equal(sigma_t[key], box_t[key])
    sparse = encode([(box, kp)], joint_radius="sigma", joint_heatmaps="sparse")
    assert sparse["hp_radius"][[0, 11]].tolist() == [nose_r, r]
    # small people keep at least a 3 x 3 blob; a spec without sigmas keeps the box radius everywhere
    tiny = encode([person([100, 120, 112, 140], {0: (105, 125)})], joint_radius="sigma", joint_heatmaps="sparse")
    assert tiny["hp_radius"][0] == 1
    plain = encode(
        [(np.float32([100, 120, 228, 376]), np.zeros((5, 3), np.float32) + [[150, 250, 2]])],
        keypoints_spec=HAND5,
        joint_radius="sigma",
        joint_heatmaps="sparse",
    )
    assert plain["hp_radius"][:5].tolist() == [r] * 5
    with pytest.raises(ValueError, match="joint_radius"):
        encode([(box, kp)], joint_radius="wide")


def test_flip_swaps_left_and_right_joints_via_spec():
    box, kp = person([100, 100, 200, 300], {1: (120, 110), 15: (150, 290)})
    plain = encode([(box, kp)])
    flipped = encode([(box, kp)], flipped=True, image_width=512)
    m = flipped["hp_mask"].reshape(32, 17)[0]
    assert m[2] == 1 and m[16] == 1 and m[1] == 0 and m[15] == 0  # left eye → right eye, ankle too
    # mirrored with x ↦ W − 1 − x before the transform
    j = 2
    x = flipped["hp_ind"][j] % 128 + flipped["hp_offset"][j, 0]
    assert x == pytest.approx((511 - 120) / 4, abs=1e-5)
    assert plain["hp_mask"].reshape(32, 17)[0, 1] == 1
    np.testing.assert_allclose(flipped["wh"][0], plain["wh"][0])


def test_custom_keypoint_spec_gives_shapes_from_spec():
    box, kp = person([10, 10, 200, 200], {1: (50, 50), 4: (100, 150)}, J=5)
    t = encode(
        [(box, kp)],
        keypoints_spec=HAND5,
        max_objs=4,
        output_size=64,
        trans_output_rot=get_affine_transform(np.float32([256, 256]), 512.0, 0, [64, 64]),
    )
    assert t["hps"].shape == (4, 10) and t["hps_mask"].shape == (4, 10)
    assert t["hm_hp"].shape == (5, 64, 64) and t["hp_offset"].shape == (20, 2) and t["hp_ind"].shape == (20,)
    assert t["hm"].shape == (1, 64, 64) and t["gt_det"].shape == (1, 4 + 1 + 10 + 1)
    f = encode([(box, kp)], keypoints_spec=HAND5, max_objs=4, flipped=True, image_width=512)
    assert f["hp_mask"][:5].tolist() == [0, 0, 1, 1, 0]  # (1, 2) and (3, 4) swapped


def test_dense_hp_shapes_and_semantics():
    a = person([100, 100, 228, 356], {0: (170, 150)})
    t = encode([a], dense_hp=True)
    assert "hps" not in t and "hps_mask" not in t
    assert t["dense_hps"].shape == (34, 128, 128) and t["dense_hps_mask"].shape == (34, 128, 128)
    cx, cy = int(t["ind"][0] % 128), int(t["ind"][0] // 128)
    r = radius_from_box(t["wh"][:1, 1], t["wh"][:1, 0])[0]
    win = (slice(cy - r, cy + r + 1), slice(cx - r, cx + r + 1))
    ys, xs = np.mgrid[cy - r : cy + r + 1, cx - r : cx + r + 1]
    np.testing.assert_allclose(t["dense_hps"][0][win], 170 / 4 - xs, atol=1e-5)
    np.testing.assert_allclose(t["dense_hps"][1][win], 150 / 4 - ys, atol=1e-5)
    np.testing.assert_array_equal(t["dense_hps_mask"][0][win], gaussian_kernel(int(r)).astype(np.float32))
    np.testing.assert_array_equal(t["dense_hps_mask"][0], t["dense_hps_mask"][1])
    assert t["dense_hps"][0].sum() == pytest.approx(t["dense_hps"][0][win].sum())
    # a later, overlapping person wins where its Gaussian is >= the earlier people's heatmap
    b = person([108, 100, 236, 356], {0: (200, 160)})
    t2 = encode([a, b], dense_hp=True)
    cx2 = int(t2["ind"][1] % 128)
    assert t2["dense_hps"][0, cy, cx2] == pytest.approx(200 / 4 - cx2)
    assert t2["dense_hps"][0, cy, cx - r] == pytest.approx(170 / 4 - (cx - r))


def test_rotation_quirk():
    box, kp = person([100, 100, 200, 300], {0: (150, 120), 5: (140, 160)})
    degenerate, kp2 = person([600, 100, 700, 300], {0: (650, 120)})
    rot = 10.0
    t_rot = get_affine_transform(np.float32([256, 256]), 512.0, rot, [128, 128])
    t = encode([(box, kp), (degenerate, kp2)], rot=rot, trans_output_rot=t_rot)
    assert (t["hm"] == np.float32(0.9999)).all()
    assert t["reg_mask"].sum() == 0 and t["hps_mask"].sum() == 0
    assert t["hp_mask"].sum() == 2 and t["hm_hp"][0].max() == 1.0
    assert t["wh"][0].tolist() == [25, 50] and t["wh"][1].tolist() == [0, 50]
    assert t["gt_det"].shape == (2, 40)  # the degenerate box (clipped to width 0) is not skipped
    t0 = encode([(box, kp), (degenerate, kp2)])
    assert t0["gt_det"].shape == (1, 40) and t0["reg_mask"].tolist()[:2] == [1, 0]


def test_zero_keypoint_person_is_heatmap_positive_without_reg_mask():
    box, kp = person([100, 100, 200, 300], {})
    t = encode([(box, kp)])
    assert t["reg_mask"][0] == 0 and t["wh"][0].tolist() == [25, 50]
    y, x = divmod(int(t["ind"][0]), 128)
    assert t["hm"][0, y, x] == 1.0 and t["hp_mask"].sum() == 0


def test_only_first_max_objs_people_and_clipping():
    people = [person([10 + 40 * i, 10, 40 + 40 * i, 100], {0: (20 + 40 * i, 20)}) for i in range(6)]
    t = encode(people, max_objs=3)
    assert t["reg_mask"].tolist() == [1, 1, 1] and t["gt_det"].shape == (3, 40)
    peaks = np.argwhere(t["hm"][0] == 1.0)
    assert len(peaks) == 3 and peaks[:, 1].max() < (10 + 40 * 3) / 4
    # a box crossing the right edge is clipped to O − 1 = 127 (QUIRK D6)
    t = encode([person([480, 100, 560, 300], {0: (500, 120)})])
    np.testing.assert_allclose(t["wh"][0], [127 - 120, 50])
