"""CocoPoseEvaluator: collect decoded people during validation, gather them across ranks, score with COCOeval.

It never runs the model (detectron2's ``DatasetEvaluator`` shape): the LightningModule runs the forward
(and the flip pass) and decodes with its codec; the evaluator only receives :class:`Poses` per batch.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.distributed as dist
from pycocotools.coco import COCO

from centerpose.codec.poses import Poses
from centerpose.evaluation.coco import evaluate_coco, save_coco_results, to_coco_results
from centerpose.keypoints import COCO_PERSON, KeypointSpec


class CocoPoseEvaluator:
    """COCO keypoint AP (and box AP) of the validation set, computed the way the original does.

    ``reset`` before an epoch, ``process(inputs, outputs)`` per batch keeps each image's people by id,
    ``evaluate`` gathers them from every DDP rank (duplicates from padded samplers collapse onto the same
    id), scores them on rank 0 and broadcasts the metrics.

    Args:
        ann_file: the val annotation json (the ground truth).
        keypoints: skeleton whose OKS sigmas COCOeval uses.
        results_file: where rank 0 writes the COCO results json (None: not written).
        image_ids: score only these images (None: every image of ``ann_file``, as the original).
    """

    def __init__(
        self,
        ann_file: str | Path,
        keypoints: KeypointSpec = COCO_PERSON,
        results_file: str | Path | None = None,
        image_ids: Sequence[int] | None = None,
    ) -> None:
        self.ann_file = Path(ann_file)
        self.keypoints = keypoints
        self.results_file = results_file
        self.image_ids = None if image_ids is None else [int(i) for i in image_ids]
        self.results: dict[int, Poses] = {}
        self._coco: COCO | None = None

    def reset(self) -> None:
        self.results = {}

    def process(self, inputs: Mapping[str, Any], outputs: Poses) -> None:
        """Keep one batch's people: ``inputs["meta"]["img_id"]`` (B,) and ``outputs`` batched (B, K, ...)
        in image pixels (``CenterPoseCodec.decode``)."""
        self.add(inputs["meta"]["img_id"], outputs)

    def add(self, image_ids: Sequence[int] | torch.Tensor, poses: Poses) -> None:
        """Store batched ``poses`` (B, K, ...) for ``image_ids`` (B,), as float32 numpy on the host."""
        for img_id, per_image in zip(torch.as_tensor(image_ids).tolist(), poses.numpy().unbind()):
            self.results[int(img_id)] = per_image

    def gathered(self) -> dict[int, Poses]:
        """Results of every rank, keyed by image id (on every rank)."""
        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return dict(self.results)
        parts: list[dict[int, Poses] | None] = [None] * dist.get_world_size()
        dist.all_gather_object(parts, self.results)
        merged: dict[int, Poses] = {}
        for part in parts:
            merged.update(part or {})
        return merged

    def coco_gt(self) -> COCO:
        """The ground truth (read once), restricted to ``image_ids`` when given."""
        if self._coco is None:
            if not self.ann_file.is_file():
                raise FileNotFoundError(f"CocoPoseEvaluator: annotation file not found: {self.ann_file}")
            with contextlib.redirect_stdout(io.StringIO()):
                coco = COCO(str(self.ann_file))
            if self.image_ids is not None:
                keep = set(self.image_ids)
                coco.imgs = {i: im for i, im in coco.imgs.items() if i in keep}
                coco.dataset["images"] = [im for im in coco.dataset["images"] if im["id"] in keep]
            self._coco = coco
        return self._coco

    def evaluate(self) -> dict[str, float]:
        """Gather, evaluate on rank 0, broadcast; returns the metric dict on every rank."""
        results = self.gathered()
        distributed = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
        metrics: dict[str, float] = {}
        if not distributed or dist.get_rank() == 0:
            coco_results = to_coco_results(dict(sorted(results.items())))
            if self.results_file is not None:
                save_coco_results(coco_results, self.results_file)
            metrics = evaluate_coco(self.coco_gt(), coco_results, self.keypoints)
        if distributed:
            box = [metrics]
            dist.broadcast_object_list(box, src=0)
            metrics = box[0]
        return metrics
