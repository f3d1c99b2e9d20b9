"""Drawing poses on BGR images: skeleton edges, joint dots and boxes, in the original CenterNet colours.

For a spec with left/right pairs, a joint is coloured by its side (left blue, right red, unpaired magenta, in BGR)
and an edge by the sides it touches (only left joints and unpaired ones: left; only right and unpaired: right;
both sides, or neither: magenta). For COCO's 17 joints this reproduces the original debugger's ``colors_hp`` and
``ec`` tables. A spec without flip pairs gets a fixed, evenly spread hue per joint and per edge.
"""

from __future__ import annotations

import colorsys
from typing import Iterable, Sequence

import cv2
import numpy as np

from centerpose.keypoints import COCO_PERSON, KeypointSpec

__all__ = ["draw_ground_truth", "draw_poses", "edge_colours", "joint_colours", "side_by_side"]

BGR = tuple[int, int, int]
LEFT_COLOUR: BGR = (255, 0, 0)
RIGHT_COLOUR: BGR = (0, 0, 255)
CENTRE_COLOUR: BGR = (255, 0, 255)
# The original draws the person box in colour_list[0] (white) with black label text.
BOX_COLOUR: BGR = (255, 255, 255)
_GOLDEN = 0.6180339887498949  # hue step that keeps neighbouring indices far apart on the colour wheel


def _palette(n: int, phase: float) -> list[BGR]:
    out = []
    for i in range(n):
        r, g, b = colorsys.hsv_to_rgb((phase + i * _GOLDEN) % 1.0, 0.85, 1.0)
        out.append((int(round(b * 255)), int(round(g * 255)), int(round(r * 255))))
    return out


def _sides(keypoints: KeypointSpec) -> np.ndarray:
    """(J,) int: +1 left joint (first of a flip pair), -1 right joint, 0 unpaired."""
    side = np.zeros(keypoints.num_joints, np.int64)
    for left, right in keypoints.flip_pairs:
        side[left], side[right] = 1, -1
    return side


def joint_colours(keypoints: KeypointSpec = COCO_PERSON) -> list[BGR]:
    """One BGR colour per joint of ``keypoints`` (see the module docstring)."""
    if not keypoints.flip_pairs:
        return _palette(keypoints.num_joints, 0.0)
    by_side = {1: LEFT_COLOUR, -1: RIGHT_COLOUR, 0: CENTRE_COLOUR}
    return [by_side[int(s)] for s in _sides(keypoints)]


def edge_colours(keypoints: KeypointSpec = COCO_PERSON) -> list[BGR]:
    """One BGR colour per edge of ``keypoints.skeleton`` (see the module docstring)."""
    if not keypoints.flip_pairs:
        return _palette(len(keypoints.skeleton), 0.37)
    side = _sides(keypoints)
    colours = []
    for a, b in keypoints.skeleton:
        touched = {int(side[a]), int(side[b])} - {0}
        colours.append(LEFT_COLOUR if touched == {1} else RIGHT_COLOUR if touched == {-1} else CENTRE_COLOUR)
    return colours


def _check_image(image: np.ndarray, what: str = "image") -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"{what} must be an (H, W, 3) uint8 BGR array, got {image.dtype} {image.shape}")
    return image


def _draw_box(img: np.ndarray, box: np.ndarray, text: str | None, scale: int) -> None:
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    cv2.rectangle(img, (x1, y1), (x2, y2), BOX_COLOUR, 2 * scale)
    if text is None:
        return
    font, font_scale = cv2.FONT_HERSHEY_SIMPLEX, 0.4 * scale
    (tw, th), _ = cv2.getTextSize(text, font, font_scale, scale)
    top = y1 - th - 4 if y1 - th - 4 >= 0 else y1  # inside the box when there is no room above it
    cv2.rectangle(img, (x1, top), (x1 + tw + 2, top + th + 4), BOX_COLOUR, -1)
    cv2.putText(img, text, (x1 + 1, top + th + 1), font, font_scale, (0, 0, 0), scale, cv2.LINE_AA)


def draw_poses(
    image: np.ndarray,
    boxes: np.ndarray,
    scores: np.ndarray,
    joints: np.ndarray,
    keypoints: KeypointSpec = COCO_PERSON,
    score_thresh: float = 0.3,
    kpt_thresh: float = 0.1,
    draw_boxes: bool = True,
    show_scores: bool = True,
    ids: np.ndarray | None = None,
) -> np.ndarray:
    """Draw people on a copy of ``image``.

    As in the original ``show_results``, only people with ``score > score_thresh`` are drawn; lower-scored people
    are drawn first so the best ones end up on top.

    Args:
        image: (H, W, 3) uint8 BGR image (not modified).
        boxes: (N, 4) boxes x1, y1, x2, y2 in image pixels.
        scores: (N,) person scores.
        joints: (N, J, 2) joint x, y, or (N, J, 3) with a per-joint score or COCO visibility in the last column;
            a joint is drawn when its coordinates are finite and (with 3 columns) its third value > ``kpt_thresh``.
        keypoints: the skeleton; J must equal ``keypoints.num_joints``.
        score_thresh: people with a score at or below this are skipped.
        kpt_thresh: joints with a score at or below this are skipped (and the edges that touch them).
        draw_boxes: also draw each person's box.
        show_scores: write the score above each box.
        ids: (N,) int track ids (:class:`centerpose.inference.tracking.PoseTracker`), written as ``#id`` above each box;
            −1 (unconfirmed) writes none.

    Returns:
        (H, W, 3) uint8 image with the drawing.
    """
    img = _check_image(image).copy()
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4) if np.size(boxes) else np.zeros((0, 4))
    scores = np.asarray(scores, np.float64).reshape(-1)
    joints = np.asarray(joints, np.float64)
    n, j = len(scores), keypoints.num_joints
    if n == 0 and len(boxes) == 0 and joints.size == 0:
        return img
    if len(boxes) != n or joints.shape[:1] != (n,):
        raise ValueError(
            f"draw_poses: the numbers of boxes ({len(boxes)}), scores ({n}) and joint sets "
            f"({joints.shape[0] if joints.ndim else 0}) differ"
        )
    if joints.ndim != 3 or joints.shape[1] != j or joints.shape[2] not in (2, 3):
        raise ValueError(
            f"draw_poses: joints must be (N, {j}, 2 or 3) for a {j}-joint KeypointSpec, got {joints.shape}"
        )
    h, w = img.shape[:2]
    scale = max(1, int(round(max(h, w) / 640)))  # the original's 3 px dots and 2 px lines, at COCO image size
    limit = 8 * max(h, w)  # far-off coordinates would overflow cv2's fixed-point maths
    xy = np.clip(joints[..., :2], -limit, limit)
    valid = np.isfinite(joints[..., :2]).all(-1)
    if joints.shape[2] == 3:
        valid &= joints[..., 2] > kpt_thresh
    pts = np.where(valid[..., None], np.round(np.nan_to_num(xy)), 0).astype(np.int64)
    jc, ec = joint_colours(keypoints), edge_colours(keypoints)
    if ids is not None and np.shape(ids) != (n,):
        raise ValueError(f"draw_poses: {np.size(ids)} ids for {n} people")
    for i in np.argsort(scores, kind="stable"):
        if not scores[i] > score_thresh:
            continue
        if draw_boxes and np.isfinite(boxes[i]).all():
            label = [f"#{int(ids[i])}"] if ids is not None and ids[i] >= 0 else []
            label += [f"{scores[i]:.2f}"] if show_scores else []
            _draw_box(img, np.clip(boxes[i], -limit, limit), " ".join(label) or None, scale)
        for k in np.flatnonzero(valid[i]):
            cv2.circle(img, (int(pts[i, k, 0]), int(pts[i, k, 1])), 3 * scale, jc[k], -1, cv2.LINE_AA)
        for e, (a, b) in enumerate(keypoints.skeleton):
            if valid[i, a] and valid[i, b]:
                cv2.line(
                    img,
                    (int(pts[i, a, 0]), int(pts[i, a, 1])),
                    (int(pts[i, b, 0]), int(pts[i, b, 1])),
                    ec[e],
                    2 * scale,
                    cv2.LINE_AA,
                )
    return img


def draw_ground_truth(
    image: np.ndarray, annotations: Iterable[dict], keypoints: KeypointSpec = COCO_PERSON, draw_boxes: bool = True
) -> np.ndarray:
    """Draw COCO annotation dicts (``bbox`` x, y, w, h and flat ``keypoints`` x, y, v) on a copy of ``image``.

    Joints with ``v > 0`` are drawn; crowd annotations are skipped.

    Args:
        image: (H, W, 3) uint8 BGR image (not modified).
        annotations: COCO ``annotations`` entries of this image.
        keypoints: the skeleton the annotations follow.
        draw_boxes: also draw the boxes.

    Returns:
        (H, W, 3) uint8 image with the drawing.
    """
    j = keypoints.num_joints
    boxes, joints = [], []
    for ann in annotations:
        if ann.get("iscrowd", 0):
            continue
        x, y, bw, bh = (float(v) for v in ann["bbox"])
        flat = ann.get("keypoints") or [0] * (3 * j)
        if len(flat) != 3 * j:
            raise ValueError(
                f"draw_ground_truth: annotation {ann.get('id')} has {len(flat)} keypoint values, "
                f"expected 3 x {j} for this KeypointSpec"
            )
        boxes.append([x, y, x + bw, y + bh])
        joints.append(np.asarray(flat, np.float64).reshape(j, 3))
    if not boxes:
        return _check_image(image).copy()
    return draw_poses(
        image,
        np.array(boxes),
        np.ones(len(boxes)),
        np.stack(joints),
        keypoints,
        score_thresh=0.0,
        kpt_thresh=0.0,
        draw_boxes=draw_boxes,
        show_scores=False,
    )


def side_by_side(
    pred_img: np.ndarray,
    gt_img: np.ndarray,
    titles: Sequence[str] | None = ("prediction", "ground truth"),
    gap: int = 4,
) -> np.ndarray:
    """Place two images next to each other (the right one resized to the left one's height), titled.

    Args:
        pred_img: (H, W, 3) uint8 BGR image, shown on the left.
        gt_img: (H', W', 3) uint8 BGR image, shown on the right.
        titles: a caption for each image, or None for none.
        gap: width in pixels of the black strip between them.

    Returns:
        (H, W + gap + W'', 3) uint8 image.
    """
    left, right = _check_image(pred_img, "pred_img"), _check_image(gt_img, "gt_img")
    h = left.shape[0]
    if right.shape[0] != h:
        width = max(1, int(round(right.shape[1] * h / right.shape[0])))
        right = cv2.resize(right, (width, h), interpolation=cv2.INTER_AREA)
    out = np.concatenate([left, np.zeros((h, gap, 3), np.uint8), right], axis=1)
    if titles is not None:
        for text, x0 in zip(titles, (0, left.shape[1] + gap)):
            (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
            cv2.rectangle(out, (x0, 0), (x0 + tw + 6, th + 8), (0, 0, 0), -1)
            cv2.putText(out, text, (x0 + 3, th + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return out
