"""Gaussian soft-NMS over pose rows, for merging multi-scale detections (METHOD.md §3.4).

Two merges (``Predictor(merge=...)``, ``test.merge=``):

- :func:`soft_nms_original` (``original``, the parity default) reproduces the original's ``soft_nms_39``
  exactly, QUIRK E12 included: its keep list is ignored, so every row comes back, and a row whose score
  decays below the floor is overwritten by the last active row's box and score while only the joint
  columns are swapped, so rows can pair one detection's box and score with another's joints.
- :func:`soft_nms` (``improved``) drops rows below the floor and keeps each row's own joints.

Rows are :meth:`Poses.rows <centerpose.codec.poses.Poses.rows>` (box x1 y1 x2 y2 in columns 0-3, then the
score, then everything that travels with a person); the column names come from the codec.
Both use the Gaussian weight ``exp(−IoU² / sigma)``, the +1 pixel-inclusive IoU and the 0.001 floor.
"""

from __future__ import annotations

import numpy as np

from centerpose.codec.poses import FIRST_JOINT_COLUMN as JOINTS
from centerpose.codec.poses import SCORE_COLUMN as SCORE


def soft_nms(
    rows: np.ndarray, sigma: float = 0.5, score_thresh: float = 0.001, max_dets: int | None = None
) -> np.ndarray:
    """Gaussian soft-NMS on rows ``[x1 y1 x2 y2 score ...]`` (N, D); returns the kept rows by score.

    Each step moves the best remaining row to the output and multiplies the scores of the remaining rows
    by ``exp(-IoU² / sigma)``; rows below ``score_thresh`` are dropped.
    """
    rows = np.array(rows, dtype=np.float32, copy=True)
    kept = []
    while len(rows):
        best = int(np.argmax(rows[:, SCORE]))
        top = rows[best]
        kept.append(top.copy())
        rows = np.delete(rows, best, axis=0)
        if not len(rows):
            break
        iw = np.minimum(top[2], rows[:, 2]) - np.maximum(top[0], rows[:, 0]) + 1
        ih = np.minimum(top[3], rows[:, 3]) - np.maximum(top[1], rows[:, 1]) + 1
        inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
        area_top = (top[2] - top[0] + 1) * (top[3] - top[1] + 1)
        area = (rows[:, 2] - rows[:, 0] + 1) * (rows[:, 3] - rows[:, 1] + 1)
        iou = np.where(inter > 0, inter / (area_top + area - inter), 0.0)
        rows[:, SCORE] *= np.exp(-(iou * iou) / sigma).astype(np.float32)
        rows = rows[rows[:, SCORE] >= score_thresh]
        if max_dets is not None and len(kept) >= max_dets:
            break
    return np.stack(kept) if kept else np.zeros((0, rows.shape[1]), np.float32)


def soft_nms_original(rows: np.ndarray, sigma: float = 0.5, score_thresh: float = 0.001) -> np.ndarray:
    """The original's ``soft_nms_39(rows, Nt=0.5, method=2)`` in float32, returning every row as it leaves it.

    Row ``i`` receives the highest-scoring active row (full swap; the first of equal maxima); every later
    active row then has its score multiplied by the Gaussian weight of its IoU with row ``i`` (only when the
    +1 widths and heights both overlap). A row falling below ``score_thresh`` is "discarded": it takes the
    last active row's box and score, swaps joint columns with it, and the active count shrinks, so that
    last slot keeps its own (undecayed) box and score with the discarded row's joints (QUIRK E12).
    Columns after the score (joints, then any joint scores) move together as the original's joints do.

    Args:
        rows: (N, D) ``[x1 y1 x2 y2 score ...]``.

    Returns:
        (N, D) float32, the original's final row order (no row dropped, no cap).
    """
    boxes = np.array(rows, dtype=np.float32, copy=True)
    n = len(boxes)
    f32 = np.float32
    sigma32 = f32(sigma)
    for i in range(n):
        if i >= n:
            break  # rows beyond the active count are left as they are
        best = i + int(np.argmax(boxes[i:n, SCORE]))  # first maximum, like the strict `<` scan
        if best != i:
            boxes[[i, best]] = boxes[[best, i]]
        # The compiled original adds the `+ 1` in double (a C double literal) and stores float32 results:
        # widths, heights and products are formed in float64 and rounded once, as there.
        tx1, ty1, tx2, ty2 = boxes[i, :4]
        cand = boxes[i + 1 : n]
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            w = (cand[:, 2] - cand[:, 0]).astype(np.float64) + 1.0  # float32 difference, double + 1
            h = (cand[:, 3] - cand[:, 1]).astype(np.float64) + 1.0
            area = (w * h).astype(np.float32).astype(np.float64)
            iw = (np.minimum(tx2, cand[:, 2]) - np.maximum(tx1, cand[:, 0])) + f32(1)  # exact f32 rounding
            ih = (np.minimum(ty2, cand[:, 3]) - np.maximum(ty1, cand[:, 1])) + f32(1)
            inter = iw * ih  # float32 product
            top_w = float(np.float32(boxes[i, 2] - boxes[i, 0])) + 1.0
            top_h = float(np.float32(boxes[i, 3] - boxes[i, 1])) + 1.0
            union = ((top_w * top_h + area) - inter.astype(np.float64)).astype(np.float32)
            ov = inter / union  # float32
            weight = np.exp((-(ov * ov) / sigma32).astype(np.float64)).astype(np.float32)
        overlaps = (iw > 0) & (ih > 0)
        decayed = np.where(overlaps, weight * cand[:, SCORE], cand[:, SCORE]).astype(np.float32)
        # Sequential part: only discards reorder rows; each row is decayed exactly once by this top row.
        # As in the original, only an overlapping row is decayed and tested against the floor.
        pos = i + 1
        while pos < n:
            k = pos - i - 1
            if overlaps[k]:
                boxes[pos, SCORE] = decayed[k]
                if boxes[pos, SCORE] < score_thresh:
                    last = n - 1
                    boxes[pos, :JOINTS] = boxes[last, :JOINTS]
                    boxes[[pos, last], JOINTS:] = boxes[[last, pos], JOINTS:]
                    decayed[k], overlaps[k] = decayed[last - i - 1], overlaps[last - i - 1]
                    n -= 1
                    continue
            pos += 1
    return boxes
