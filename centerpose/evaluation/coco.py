"""COCO results file and keypoint/box evaluation (METHOD.md §3.5, ``coco_hp.py: convert_eval_format, run_eval``).

The results format reproduces the original's rounding exactly (QUIRK E13): values are the float32 outputs
seen as Python floats, box width/height are computed before rounding, and every number is rounded by
``float("{:.2f}".format(v))`` (correctly rounded decimal). Row order is kept, since COCOeval breaks score
ties by file order.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from centerpose.codec.poses import Poses
from centerpose.keypoints import COCO_PERSON, KeypointSpec

__all__ = ["KEYPOINT_STAT_NAMES", "BBOX_STAT_NAMES", "round2", "to_coco_results", "save_coco_results", "evaluate_coco"]

#: Names of ``COCOeval('keypoints').stats`` in order.
KEYPOINT_STAT_NAMES: tuple[str, ...] = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")
#: Names of ``COCOeval('bbox').stats`` in order (returned with a ``bbox_`` prefix).
BBOX_STAT_NAMES: tuple[str, ...] = (
    "AP",
    "AP50",
    "AP75",
    "APs",
    "APm",
    "APl",
    "AR1",
    "AR10",
    "AR100",
    "ARs",
    "ARm",
    "ARl",
)


def round2(v: float) -> float:
    """The original's ``_to_float``: correctly rounded to 2 decimals (0.125 → 0.12, −0.001 → −0.0)."""
    return float("{:.2f}".format(v))


def to_coco_results(results_by_image: Mapping[int, Poses | np.ndarray], category_id: int = 1) -> list[dict]:
    """Convert per-image people into COCO keypoint result dicts, in the original's format.

    Args:
        results_by_image: image id → :class:`~centerpose.codec.poses.Poses` of that image in image pixels
            (or its (K, 5 + 2J) rows ``[x1 y1 x2 y2, score, x0 y0 ...]``), in top-K order.
        category_id: COCO category of every detection.

    Returns:
        One dict per person, keys in order ``image_id, category_id, bbox [x, y, w, h], score, keypoints``
        (J × (x, y, 1.0)), every number rounded by :func:`round2`. No score threshold.
    """
    out: list[dict] = []
    for image_id, people in results_by_image.items():
        if not isinstance(people, Poses):
            arr = np.asarray(people, dtype=np.float32)
            if arr.ndim != 2:
                raise ValueError(f"to_coco_results: image {image_id}: rows must be (K, 5 + 2J), got {arr.shape}")
            try:
                people = Poses.from_rows(arr)
            except ValueError as e:
                raise ValueError(f"to_coco_results: image {image_id}: {e}") from None
        people = people.numpy()
        # COCO's third keypoint number is a visibility flag: 1.0 for every predicted joint, as the original.
        kps = np.concatenate([people.joints, np.ones((len(people), people.num_joints, 1), np.float32)], axis=2)
        kps = kps.reshape(len(people), 3 * people.num_joints).tolist()
        # tolist: float32 values as exact Python floats; w and h are formed from them before rounding.
        for box, score, kp in zip(people.boxes.tolist(), people.scores.tolist(), kps):
            x1, y1, x2, y2 = box
            out.append(
                {
                    "image_id": int(image_id),
                    "category_id": int(category_id),
                    "bbox": [round2(x1), round2(y1), round2(x2 - x1), round2(y2 - y1)],
                    "score": round2(score),
                    "keypoints": [round2(v) for v in kp],
                }
            )
    return out


def save_coco_results(results: Sequence[dict], path: str | Path) -> Path:
    """Write results as the original's ``results.json`` (``json.dump`` of the list)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        json.dump(list(results), f)
    return path


def _load_results(coco_gt: COCO, results: Sequence[dict]) -> COCO:
    if results:
        # loadRes annotates the dicts in place (id, area, ...); keep the caller's list clean.
        return coco_gt.loadRes(copy.deepcopy(list(results)))
    empty = COCO()
    empty.dataset = {
        "images": list(coco_gt.dataset.get("images", [])),
        "categories": copy.deepcopy(coco_gt.dataset.get("categories", [])),
        "annotations": [],
    }
    empty.createIndex()
    return empty


def _run(coco_gt: COCO, coco_dt: COCO, iou_type: str, sigmas: np.ndarray | None) -> np.ndarray:
    ev = COCOeval(coco_gt, coco_dt, iou_type)
    if sigmas is not None:
        ev.params.kpt_oks_sigmas = sigmas
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return np.asarray(ev.stats, dtype=np.float64)


def evaluate_coco(
    coco_gt: COCO, results: Sequence[dict], keypoints: KeypointSpec = COCO_PERSON, verbose: bool = False
) -> dict[str, float]:
    """COCO keypoint evaluation, then box evaluation, on the same loaded results (``run_eval``).

    Args:
        coco_gt: ground truth (all its image ids are evaluated, as the original does).
        results: dicts from :func:`to_coco_results` (an empty list gives zero AP/AR).
        keypoints: skeleton whose OKS ``sigmas`` are used.
        verbose: print pycocotools' summaries (silenced by default).

    Returns:
        ``AP, AP50, AP75, APm, APl, AR, AR50, AR75, ARm, ARl`` (keypoints) and ``bbox_AP, bbox_AP50,
        bbox_AP75, bbox_APs, bbox_APm, bbox_APl, bbox_AR1, bbox_AR10, bbox_AR100, bbox_ARs, bbox_ARm,
        bbox_ARl``. A value of −1 means pycocotools had no ground truth for that area range.
    """
    if not keypoints.sigmas:
        raise ValueError("evaluate_coco: the keypoint spec has no OKS sigmas")
    sigmas = np.asarray(keypoints.sigmas, dtype=np.float64)
    sink = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())
    with sink:
        coco_dt = _load_results(coco_gt, results)
        kp = _run(coco_gt, coco_dt, "keypoints", sigmas)
        bb = _run(coco_gt, coco_dt, "bbox", None)
    stats = {name: float(v) for name, v in zip(KEYPOINT_STAT_NAMES, kp)}
    stats.update({f"bbox_{name}": float(v) for name, v in zip(BBOX_STAT_NAMES, bb)})
    return stats
