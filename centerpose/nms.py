"""Gaussian soft-NMS over pose rows, for merging multi-scale detections (METHOD.md §3.4).

Differs from the original's ``soft_nms_39`` on purpose (QUIRK E12 "improved"): rows whose score decays
below the floor are dropped instead of being overwritten with another row's box, and each kept row keeps
its own joints. The Gaussian weight, the +1 pixel-inclusive IoU and the 0.001 floor are the original's.
"""

from __future__ import annotations

import numpy as np


def soft_nms(rows: np.ndarray, sigma: float = 0.5, score_thresh: float = 0.001,
             max_dets: int | None = None) -> np.ndarray:
    """Gaussian soft-NMS on rows ``[x1 y1 x2 y2 score ...]`` (N, D); returns the kept rows by score.

    Each step moves the best remaining row to the output and multiplies the scores of the remaining rows
    by ``exp(-IoU² / sigma)``; rows below ``score_thresh`` are dropped.
    """
    rows = np.array(rows, dtype=np.float32, copy=True)
    kept = []
    while len(rows):
        best = int(np.argmax(rows[:, 4]))
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
        rows[:, 4] *= np.exp(-(iou * iou) / sigma).astype(np.float32)
        rows = rows[rows[:, 4] >= score_thresh]
        if max_dets is not None and len(kept) >= max_dets:
            break
    return np.stack(kept) if kept else np.zeros((0, rows.shape[1]), np.float32)
