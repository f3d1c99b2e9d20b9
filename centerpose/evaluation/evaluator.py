"""CocoPoseEvaluator: collect detections during validation, gather them across ranks, score with COCOeval."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import numpy as np
import torch
import torch.distributed as dist
from pycocotools.coco import COCO

from centerpose.codec.pipeline import decode_to_image, stack_with_mirrors
from centerpose.evaluation.coco import evaluate_coco, save_coco_results, to_coco_results
from centerpose.keypoints import COCO_PERSON, KeypointSpec


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
        heads = outputs[-1]
        if self.flip_test:
            heads = stack_with_mirrors(outputs, module(batch["input"].flip(3)))
        meta = batch["meta"]
        rows, _ = decode_to_image(heads, meta["c"], meta["s"], keypoints=self.keypoints, K=self.K,
                                  flip=self.flip_test, sigmoid=self.sigmoid, fix_flip_offset=self.fix_flip_offset,
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
