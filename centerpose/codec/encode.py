"""Training targets of one sample: centre heatmap, box size, offsets, joint offsets and joint heatmaps.

A pure function of the annotations and the sample's affine maps, reproducing the original's
float32 pipeline and quirks (METHOD §1.4): clip to O − 1 (D6), truncation (D7), float32
intermediates (D8), first ``max_objs`` only (D9), degenerate boxes skipped (D10), zero-keypoint
and crowd people as heatmap positives with ``reg_mask`` 0 (D3, D11), rotation side effects (D4).
Everything except ``dense_hp`` is vectorised over people and joints.
"""

from __future__ import annotations

import numpy as np

from centerpose.codec.gaussian import draw_gaussian, draw_gaussians, gaussian_kernel, radius_from_box
from centerpose.keypoints import COCO_PERSON, KeypointSpec

#: How ``encode_pose_targets`` delivers the joint heatmaps: drawn (``hm_hp``) or as radii (``hp_radius``).
JOINT_HEATMAPS = ("dense", "sparse")
#: How wide each joint's Gaussian is: the person's box radius ("box", QUIRK D2) or scaled by its OKS sigma.
JOINT_RADII = ("box", "sigma")

# The marker the original writes at zero-keypoint centres and over the whole hm when rotated.
_IGNORE_PEAK = np.float32(0.9999)


def coco_boxes_to_xyxy(bboxes_xywh) -> np.ndarray:
    """COCO ``bbox`` (x, y, w, h) → float32 (x1, y1, x2, y2); sums in float64, as the original.

    Args:
        bboxes_xywh: (n, 4) numbers.

    Returns:
        (n, 4) float32.
    """
    b = np.asarray(bboxes_xywh, dtype=np.float64).reshape(-1, 4)
    return np.stack([b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]], axis=1).astype(np.float32)


def encode_pose_targets(
    boxes: np.ndarray,
    keypoints: np.ndarray,
    trans_output: np.ndarray,
    trans_output_rot: np.ndarray,
    *,
    flipped: bool = False,
    image_width: int | None = None,
    rot: float = 0.0,
    output_size: int = 128,
    max_objs: int = 32,
    keypoints_spec: KeypointSpec = COCO_PERSON,
    dense_hp: bool = False,
    corrected_radius: bool = False,
    joint_heatmaps: str = "dense",
    joint_radius: str = "box",
) -> dict[str, np.ndarray]:
    """Encode the people of one sample into the original's ``multi_pose`` targets.

    Args:
        boxes: (n, 4) float32 xyxy boxes in image pixels (see :func:`coco_boxes_to_xyxy`), in
            annotation order.
        keypoints: (n, J, 3) (x, y, v) in image pixels; v > 0 = labelled.
        trans_output: (2, 3) image → output map, without rotation (used for boxes).
        trans_output_rot: (2, 3) image → output map, with rotation (used for joints).
        flipped: whether the image was mirrored; boxes and joints are then mirrored with the
            x ↦ W − 1 − x rule and left/right joints swapped by ``keypoints_spec``.
        image_width: W of the raw image (required when ``flipped``).
        rot: the rotation in degrees; non-zero triggers QUIRK D4.
        output_size: O, the square output map side.
        max_objs: N; only the first N people are encoded (QUIRK D9).
        keypoints_spec: joint count and flip pairs.
        dense_hp: also produce ``dense_hps``/``dense_hps_mask`` (and drop ``hps``/``hps_mask``).
        corrected_radius: use CornerNet's corrected radius (QUIRK D1 improved; not parity).
        joint_heatmaps: "dense" (default) draws ``hm_hp``; "sparse" returns ``hp_radius`` instead, from
            which :func:`centerpose.codec.device_heatmaps.draw_joint_heatmaps` draws the same ``hm_hp`` for a
            whole batch where it lands (a (J, O, O) float32 map is 1.1 MB per sample to allocate, draw,
            collate and copy; its sparse form is N·J small ints).
        joint_radius: "box" (the original, QUIRK D2): every joint blob of a person has the person's box
            radius; "sigma": joint j's radius is the box radius times ``sigma_j / max(sigma)`` (the
            keypoints' OKS sigmas, at least 1 cell when the box radius is), so each blob is as wide as
            the tolerance keypoint AP gives that joint: face joints get blobs a quarter as wide.

    Returns:
        Dict of numpy arrays (every array starts at zero; slot k = person k, never compacted):
        ``hm`` (1, O, O) float32; ``wh``, ``reg`` (N, 2) float32; ``ind`` (N,) int64;
        ``reg_mask`` (N,) uint8; ``hps`` (N, 2J) float32 and ``hps_mask`` (N, 2J) uint8 (unless
        ``dense_hp``); ``hm_hp`` (J, O, O) float32; ``hp_offset`` (N·J, 2) float32; ``hp_ind``,
        ``hp_mask`` (N·J,) int64; with ``joint_heatmaps="sparse"`` ``hp_radius`` (N·J,) int16 (the
        person's radius at each encoded joint slot, 0 elsewhere) instead of ``hm_hp``; with ``dense_hp``, ``dense_hps``, ``dense_hps_mask``
        (2J, O, O) float32; ``gt_det`` (n_enc, 40) float32 — per encoded person box
        ``ct ∓ wh/2``, 1, the J joints (x, y) and class 0; one zero row when nobody is encoded.
    """
    J, N, O = keypoints_spec.num_joints, max_objs, output_size
    if joint_heatmaps not in JOINT_HEATMAPS:
        raise ValueError(f"encode_pose_targets: joint_heatmaps must be one of {JOINT_HEATMAPS}, got {joint_heatmaps!r}")
    if joint_radius not in JOINT_RADII:
        raise ValueError(f"encode_pose_targets: joint_radius must be one of {JOINT_RADII}, got {joint_radius!r}")
    sparse = joint_heatmaps == "sparse"
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    keypoints = (
        np.asarray(keypoints, dtype=np.float32).reshape(-1, J, 3) if len(boxes) else np.zeros((0, J, 3), np.float32)
    )
    if len(keypoints) != len(boxes):
        raise ValueError(f"encode_pose_targets: {len(boxes)} boxes but {len(keypoints)} keypoint sets")
    n = min(len(boxes), N)
    b, pts = boxes[:n], keypoints[:n]  # read-only views: every step below writes new arrays

    if flipped:
        if image_width is None:
            raise ValueError("encode_pose_targets: image_width is required when flipped")
        width = int(image_width)
        b = b.copy()
        b[:, [0, 2]] = width - b[:, [2, 0]] - 1
        pts = pts[:, keypoints_spec.flip_index]  # a copy; x mirrored after the swap, the same per joint
        pts[:, :, 0] = width - pts[:, :, 0] - 1  # every joint, unlabelled ones too (QUIRK D18)

    # Box corners through the unrotated map and joints through the rotated one, rounded to float32; without
    # rotation the two maps are equal and one elementwise pass transforms both (the same numbers).
    corners = b.reshape(n * 2, 2)
    if trans_output_rot is trans_output or np.array_equal(trans_output_rot, trans_output):
        moved = affine_transform(np.concatenate([corners, pts[:, :, :2].reshape(n * J, 2)]), trans_output)
        b, joints_xy = moved[: 2 * n].reshape(n, 4), moved[2 * n :].reshape(n, J, 2)
    else:
        b = affine_transform(corners, trans_output).reshape(n, 4)
        joints_xy = affine_transform(pts[:, :, :2], trans_output_rot)
    np.clip(b, 0, O - 1, out=b)  # QUIRK D6
    wh_all = b[:, 2:] - b[:, :2]  # (w, h)
    keep = ((wh_all[:, 1] > 0) & (wh_all[:, 0] > 0)) if rot == 0 else np.ones(n, dtype=bool)  # QUIRK D10 / D4
    if keep.all():  # the usual case: slices instead of fancy indexing
        k_idx, sel = np.arange(n), slice(0, n)
        bk, wh, pk_all, kxy_all = b, wh_all, pts, joints_xy
    else:
        k_idx = np.flatnonzero(keep)
        sel = k_idx
        bk, wh, pk_all, kxy_all = b[keep], wh_all[keep], pts[keep], joints_xy[keep]
    k = len(k_idx)
    radius = radius_from_box(wh[:, 1], wh[:, 0], corrected=corrected_radius)  # joints reuse it (QUIRK D2)

    ct = (bk[:, :2] + bk[:, 2:]) / 2  # float32 (x, y)
    ct_int = ct.astype(np.int32)

    out = _zeros(N, J, O, sparse)
    out["wh"][sel] = wh
    out["ind"][sel] = ct_int[:, 1] * O + ct_int[:, 0]
    out["reg"][sel] = ct - ct_int
    has_kpts = pk_all[:, :, 2].sum(axis=1) != 0  # QUIRK D3/D11: "any labelled joint", crop ignored
    out["reg_mask"][sel] = has_kpts

    # Joints: labelled ones take the transformed position; those on the map are encoded.
    labelled = pk_all[:, :, 2] > 0
    kp_xy = np.where(labelled[..., None], kxy_all, pk_all[:, :, :2])
    on = labelled & ((kp_xy >= 0) & (kp_xy < O)).all(axis=2)
    pk, pj = np.nonzero(on)  # encoded person (among kept) and joint
    slot = k_idx[pk]
    xy = kp_xy[pk, pj]
    xy_int = xy.astype(np.int32)
    out["hps"].reshape(N, J, 2)[slot, pj] = xy - ct_int[pk]
    out["hps_mask"].reshape(N, J, 2)[slot, pj] = 1
    flat = slot * J + pj
    joint_r = radius[pk] if joint_radius == "box" else _sigma_radii(radius, keypoints_spec)[pk, pj]
    out["hp_offset"][flat] = xy - xy_int
    out["hp_ind"][flat] = xy_int[:, 1] * O + xy_int[:, 0]
    out["hp_mask"][flat] = 1
    if sparse:
        out["hp_radius"][flat] = joint_r
    else:
        draw_gaussians(out["hm_hp"], pj, xy_int, joint_r)

    if dense_hp:
        _encode_dense(out, ct_int, radius, kp_xy, on, has_kpts, J, O)
    else:
        # The 0.9999 written at zero-keypoint centres is always overwritten by that person's own
        # peak of 1.0 (QUIRK D3), so only the Gaussians matter, and they commute.
        draw_gaussians(out["hm"], np.zeros(k, np.int64), ct_int, radius)

    # gt_det rows: ct -+ wh / 2, score 1, the joints (x, y), class 0; one zero row when nobody is encoded.
    gt_det = np.zeros((max(k, 1), 4 + 1 + 2 * J + 1), np.float32)
    if k:
        half = wh / 2
        gt_det[:, 0:2] = ct - half
        gt_det[:, 2:4] = ct + half
        gt_det[:, 4] = 1
        gt_det[:, 5 : 5 + 2 * J] = kp_xy.reshape(k, 2 * J)
    out["gt_det"] = gt_det

    if rot != 0:  # QUIRK D4: rotated samples train only the joint heatmaps and offsets
        out["hm"][:] = _IGNORE_PEAK
        out["reg_mask"][:] = 0
        out["hps_mask"][:] = 0
    if dense_hp:
        del out["hps"], out["hps_mask"]
    return out


def affine_transform(points, matrix: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine map the original's way: points rounded to float32, product in float64.

    Args:
        points: (..., 2) x, y.
        matrix: (2, 3) float64.

    Returns:
        (..., 2) float32 (every caller of the original stores the result as float32).
    """
    p = np.asarray(points, dtype=np.float32).astype(np.float64)
    m = np.asarray(matrix, dtype=np.float64)
    x, y = p[..., 0], p[..., 1]
    return np.stack([x * m[0, 0] + y * m[0, 1] + m[0, 2], x * m[1, 0] + y * m[1, 1] + m[1, 2]], axis=-1).astype(
        np.float32
    )


def _sigma_radii(radius: np.ndarray, spec: KeypointSpec) -> np.ndarray:
    """(n, J) int64 per-joint radii: the (n,) box radii times ``sigma_j / max(sigma)``, rounded, and at least
    1 where the box radius is (a radius-0 blob is one cell at 1.0 and its neighbours full negatives).
    A spec without sigmas has equal joints: every joint keeps the box radius."""
    sigmas = np.asarray(spec.sigmas or (1.0,) * spec.num_joints, dtype=np.float64)
    scaled = np.rint(radius[:, None] * (sigmas / sigmas.max())[None, :]).astype(np.int64)
    return np.maximum(scaled, np.minimum(radius, 1)[:, None])


def _zeros(N: int, J: int, O: int, sparse: bool = False) -> dict[str, np.ndarray]:
    # sparse: the joint heatmaps travel as per-slot radii, so the (J, O, O) map is never allocated
    joint_maps = {"hp_radius": np.zeros((N * J,), np.int16)} if sparse else {"hm_hp": np.zeros((J, O, O), np.float32)}
    return {
        "hm": np.zeros((1, O, O), np.float32),
        "wh": np.zeros((N, 2), np.float32),
        "reg": np.zeros((N, 2), np.float32),
        "ind": np.zeros((N,), np.int64),
        "reg_mask": np.zeros((N,), np.uint8),
        "hps": np.zeros((N, 2 * J), np.float32),
        "hps_mask": np.zeros((N, 2 * J), np.uint8),
        **joint_maps,
        "hp_offset": np.zeros((N * J, 2), np.float32),
        "hp_ind": np.zeros((N * J,), np.int64),
        "hp_mask": np.zeros((N * J,), np.int64),
    }


def _encode_dense(
    out: dict[str, np.ndarray],
    ct_int: np.ndarray,
    radius: np.ndarray,
    kp_xy: np.ndarray,
    on: np.ndarray,
    has_kpts: np.ndarray,
    J: int,
    O: int,
) -> None:
    """``--dense_hp`` targets (§1.4.5). Sequential over people: a person's dense offsets win where
    its Gaussian is ≥ the centre heatmap of the *earlier* people, so ``hm`` is drawn as we go."""
    hm = out["hm"][0]
    dense = np.zeros((J, 2, O, O), np.float32)
    dense_mask = np.zeros((J, O, O), np.float32)
    for p in range(len(ct_int)):
        x, y = int(ct_int[p, 0]), int(ct_int[p, 1])
        r = int(radius[p])
        if not has_kpts[p]:
            hm[y, x] = _IGNORE_PEAK
        left, right = min(x, r), min(O - x, r + 1)
        top, bottom = min(y, r), min(O - y, r + 1)
        rows, cols = slice(y - top, y + bottom), slice(x - left, x + right)
        g = gaussian_kernel(r)[r - top : r + bottom, r - left : r + right]
        # Offsets from each window pixel to the joint: fl32(fl32(joint − ct_int) − (pixel − ct_int)).
        dy = np.arange(-top, bottom)[:, None]
        dx = np.arange(-left, right)[None, :]
        for j in np.flatnonzero(on[p]):
            win = g >= hm[rows, cols]  # compared in float64 against the earlier people only
            value = (kp_xy[p, j] - ct_int[p]).astype(np.float32)
            dense[j, 0, rows, cols] = np.where(win, (value[0] - dx).astype(np.float32), dense[j, 0, rows, cols])
            dense[j, 1, rows, cols] = np.where(win, (value[1] - dy).astype(np.float32), dense[j, 1, rows, cols])
            draw_gaussian(dense_mask[j], (x, y), r)
        draw_gaussian(hm, (x, y), r)
    out["dense_hps"] = dense.reshape(2 * J, O, O)
    out["dense_hps_mask"] = np.repeat(dense_mask, 2, axis=0)
