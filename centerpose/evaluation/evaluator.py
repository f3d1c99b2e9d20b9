"""CocoPoseEvaluator: collect detections during validation, gather them across ranks, score with COCOeval."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import numpy as np
import torch
import torch.distributed as dist
from pycocotools.coco import COCO

from centerpose.codec.decode import decode, sigmoid_outputs
from centerpose.codec.flip import flip_merge
from centerpose.codec.postprocess import to_image_coords
from centerpose.evaluation.coco import evaluate_coco, save_coco_results, to_coco_results
from centerpose.keypoints import COCO_PERSON, KeypointSpec


def decode_batch(net_outputs: Sequence[Mapping[str, torch.Tensor]], c: torch.Tensor, s: torch.Tensor, *,
                 keypoints: KeypointSpec = COCO_PERSON, K: int = 100, flipped_outputs=None,
                 sigmoid: Literal["plain", "clamp"] = "plain", fix_flip_offset: bool = False,
                 tie_break: str = "topk", scale: float = 1.0) -> torch.Tensor:
    """Raw network outputs of a batch → detections in image coordinates.

    Args:
        net_outputs: the network's per-stack list of head dicts for images (B, 3, H, W); the last stack is used.
        c: (B, 2) affine centres; s: (B,) or (B, 2) affine scales (from the sample's or pre-process's meta).
        flipped_outputs: the network's outputs for the mirrored images (flip test), or None.
        sigmoid: ``plain`` = the detector's sigmoid; ``clamp`` = the trainer path's clamped sigmoid (E1).
        fix_flip_offset: exact mirror of x offsets in the flip merge (off = the original, QUIRK E11).
        tie_break: ``topk`` (original) or ``stable``.
        scale: test scale to divide coordinates by.

    Returns:
        (B, K, 4 + 1 + 2J) rows ``[x1 y1 x2 y2, score, x0 y0 ...]`` in image pixels.
    """
    out = net_outputs[-1]
    if flipped_outputs is not None:
        both = {k: torch.cat([out[k], flipped_outputs[-1][k]]) for k in out}
        heads = flip_merge(sigmoid_outputs(both, clamp=False), keypoints, fix_offset=fix_flip_offset)
    else:
        heads = sigmoid_outputs(out, clamp=sigmoid == "clamp")
    dets = decode(heads, K=K, tie_break=tie_break)
    h, w = out["hm"].shape[2:]
    return to_image_coords(dets, c, s, (h, w), scale=scale)


class CocoPoseEvaluator:
    """COCO keypoint AP (and box AP) of the validation set, computed the way the original does.

    ``process`` decodes each batch (optionally with a flip-test pass) into image coordinates and keeps the
    rows by image id; ``compute`` gathers them from every DDP rank (duplicates from padded samplers
    collapse onto the same id), scores them on rank 0 and broadcasts the metrics.

    Args:
        ann_file: val annotations; ``None`` = ``trainer.datamodule.val_ann_file``.
        keypoints: skeleton (flip pairs for the flip test, OKS sigmas for COCOeval).
        K: detections per image (100, no score threshold).
        flip_test: run the mirrored input too and merge (§3.3).
        sigmoid: ``clamp`` reproduces the trainer path (main.py --test) without flip; ``plain`` the detector.
        results_file: where rank 0 writes the COCO results json (None: not written).
    """

    def __init__(self, ann_file: str | Path | None = None, keypoints: KeypointSpec = COCO_PERSON, K: int = 100,
                 flip_test: bool = False, sigmoid: Literal["plain", "clamp"] = "clamp",
                 fix_flip_offset: bool = False, tie_break: str = "topk",
                 results_file: str | Path | None = None) -> None:
        self.ann_file = ann_file
        self.keypoints = keypoints
        self.K = K
        self.flip_test = flip_test
        self.sigmoid = sigmoid
        self.fix_flip_offset = fix_flip_offset
        self.tie_break = tie_break
        self.results_file = results_file
        self.results: dict[int, np.ndarray] = {}
        self._coco: COCO | None = None

    def reset(self) -> None:
        self.results = {}

    @torch.no_grad()
    def process(self, module: torch.nn.Module, outputs: Sequence[Mapping[str, torch.Tensor]],
                batch: Mapping[str, Any]) -> None:
        """Decode one validation batch. ``module`` runs the mirrored pass when ``flip_test`` is on."""
        flipped = module(batch["input"].flip(3)) if self.flip_test else None
        meta = batch["meta"]
        rows = decode_batch(outputs, meta["c"], meta["s"], keypoints=self.keypoints, K=self.K,
                            flipped_outputs=flipped, sigmoid=self.sigmoid, fix_flip_offset=self.fix_flip_offset,
                            tie_break=self.tie_break)
        self.add(meta["img_id"], rows)

    def add(self, image_ids: Sequence[int] | torch.Tensor, rows: torch.Tensor | np.ndarray) -> None:
        """Store detections ``rows`` (B, K, 5 + 2J) in image coordinates for ``image_ids`` (B,)."""
        rows = rows.detach().cpu().numpy() if isinstance(rows, torch.Tensor) else np.asarray(rows)
        for img_id, r in zip(torch.as_tensor(image_ids).tolist(), rows):
            self.results[int(img_id)] = r.astype(np.float32)

    def gathered(self) -> dict[int, np.ndarray]:
        """Results of every rank, keyed by image id (on every rank)."""
        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return dict(self.results)
        parts: list[dict[int, np.ndarray] | None] = [None] * dist.get_world_size()
        dist.all_gather_object(parts, self.results)
        merged: dict[int, np.ndarray] = {}
        for part in parts:
            merged.update(part or {})
        return merged

    def coco_gt(self, trainer: Any = None) -> COCO:
        if self._coco is None:
            ann_file = self.ann_file or getattr(getattr(trainer, "datamodule", None), "val_ann_file", None)
            if ann_file is None:
                raise ValueError("CocoPoseEvaluator needs ann_file (or a datamodule with val_ann_file)")
            with contextlib.redirect_stdout(io.StringIO()):
                self._coco = COCO(str(ann_file))
        return self._coco

    def compute(self, trainer: Any = None) -> dict[str, float]:
        """Gather, evaluate on rank 0, broadcast; returns the metric dict on every rank."""
        results = self.gathered()
        distributed = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
        metrics: dict[str, float] = {}
        if not distributed or dist.get_rank() == 0:
            coco_results = to_coco_results(dict(sorted(results.items())))
            if self.results_file is not None:
                save_coco_results(coco_results, self.results_file)
            metrics = evaluate_coco(self.coco_gt(trainer), coco_results, self.keypoints)
        if distributed:
            box = [metrics]
            dist.broadcast_object_list(box, src=0)
            metrics = box[0]
        return metrics

    def save_metrics(self, metrics: Mapping[str, float], path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(dict(metrics), indent=2))
        return path
