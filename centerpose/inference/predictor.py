"""Predictor: images in, people out (boxes, scores, keypoints with per-joint scores) in image pixels."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal, Sequence

import cv2
import numpy as np
import torch
from torch import nn

from centerpose.codec.codec import CenterPoseCodec, DecodeOptions
from centerpose.codec.poses import Poses
from centerpose.data.image_io import read_image_checked
from centerpose.data.photometric import apply_input_affine, input_affine
from centerpose.data.preprocess import BGR_MEAN, BGR_STD, preprocess
from centerpose.keypoints import COCO_PERSON, KeypointSpec
from centerpose.inference.nms import soft_nms, soft_nms_original

__all__ = ["ImageLike", "Predictor", "StageTimer", "read_image"]

ImageLike = str | Path | np.ndarray


@dataclass
class StageTimer:
    """Per-stage wall-clock times in seconds, one list entry per image (like the original's test.py)."""

    times: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def add(self, stage: str, seconds: float) -> None:
        self.times[stage].append(seconds)

    def summary(self) -> dict[str, dict[str, float]]:
        return {
            k: {"mean_ms": 1e3 * float(np.mean(v)), "median_ms": 1e3 * float(np.median(v)), "n": len(v)}
            for k, v in self.times.items()
        }


def read_image(source: ImageLike, color: Literal["bgr", "rgb"] = "bgr") -> np.ndarray:
    """A uint8 BGR (H, W, 3) image from a path or an array (``color`` says what the array holds)."""
    if isinstance(source, (str, Path)):
        return read_image_checked(source)  # names missing, empty, truncated and undecodable files
    image = np.asarray(source)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
    return image[..., ::-1].copy() if color == "rgb" else image


class Predictor:
    """Run a trained network the way the original's detector does (keep_res + flip test by default).

    A list of images runs as batches of equal input size (all of them with ``keep_res=False``, images of
    one size with keep_res); decoding and post-processing stay on ``device``.

    Args:
        net: the network (``net(x)`` -> list of per-stack head dicts).
        keypoints: the skeleton the heads were trained for (default: the codec's, else COCO person).
        device: where the network, decode and post-process run.
        keep_res: native resolution on a padded canvas (the zoo's protocol); else ``input_size`` letterbox.
        pad: canvas multiple − 1 (31 for DLA/ResNet, 127 for Hourglass).
        scales: test scales; more than one merges the detections with Gaussian soft-NMS.
        merge: multi-scale merge: ``original`` (the original's soft_nms_39, every row kept, QUIRK E12) or
            ``improved`` (rows below the floor dropped, each row keeps its own joints); see centerpose.inference.nms.
        score_thresh: people below it are dropped from the returned :class:`Poses` (0 keeps all K).
        codec: the decode (:class:`~centerpose.codec.CenterPoseCodec`); default: the detector's protocol,
            ``DecodeOptions(flip_test=True)`` (flip test, plain sigmoid, K = 100, original tie order and snap).
        **decode: :class:`~centerpose.codec.DecodeOptions` changed by name on top of ``codec``: ``flip_test``
            (merge the mirrored pass, §3.3), ``K`` (people per image before thresholding),
            ``fix_flip_offset``, ``tie_break``, ``snap``, ``sigmoid``, ``rescore``, ``hm_hp_thresh``, ``nms_kernel``;
            or ``decode=DecodeOptions(...)`` for all of them.
    """

    def __init__(
        self,
        net: nn.Module,
        keypoints: KeypointSpec | None = None,
        device: str | torch.device = "cpu",
        keep_res: bool = True,
        pad: int = 31,
        input_size: int = 512,
        scales: Sequence[float] = (1.0,),
        score_thresh: float = 0.3,
        merge: Literal["original", "improved"] = "original",
        codec: CenterPoseCodec | None = None,
        **decode: Any,
    ) -> None:
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()
        if codec is None:
            codec = CenterPoseCodec(keypoints or COCO_PERSON, decode=DecodeOptions(flip_test=True))
        elif keypoints is not None and keypoints != codec.keypoints:
            codec = codec.replace(keypoints=keypoints)
        self.codec = codec.replace(**decode) if decode else codec
        self.keep_res = keep_res
        self.pad = pad
        self.input_size = input_size
        # uint8 BGR canvas -> normalised input: the same per-pixel map as the training batches (photometric.py)
        self._input_affine = torch.from_numpy(input_affine(BGR_MEAN, BGR_STD))
        self.scales = tuple(float(s) for s in scales)
        self.score_thresh = score_thresh
        if merge not in ("original", "improved"):
            raise ValueError(f"Predictor: merge must be 'original' or 'improved', got {merge!r}")
        self.merge = merge
        self.timer = StageTimer()

    @property
    def keypoints(self) -> KeypointSpec:
        return self.codec.keypoints

    @property
    def K(self) -> int:
        return self.codec.options.K

    @property
    def flip_test(self) -> bool:
        return self.codec.options.flip_test

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "cpu", **kwargs: Any) -> "Predictor":
        """Rebuild the network from a centerpose checkpoint (Lightning ``.ckpt``), loaded with weights_only;
        test pad and input size default to the checkpoint's (:mod:`centerpose.checkpoints.format`)."""
        from centerpose.checkpoints import load

        ckpt = load(path)
        kwargs.setdefault("pad", ckpt.test_pad)
        kwargs.setdefault("input_size", ckpt.input_size)
        return cls(ckpt.network(), keypoints=ckpt.keypoints, device=device, **kwargs)

    @classmethod
    def from_onnx(cls, path: str | Path, device: str | torch.device = "cpu", **kwargs: Any) -> "Predictor":
        """Run an ONNX file written by ``centerpose.export`` with onnxruntime (CPU; CUDA provider when
        ``device`` is CUDA and onnxruntime has it), through this predictor's pre- and post-processing.

        Geometry, keypoints and (for ``decode=true`` exports) the decode options come from the file's
        metadata (decode options passed here must match them); ``keep_res`` defaults to the export being
        dynamic. See :mod:`centerpose.inference.onnx_runtime`.
        """
        from centerpose.inference.onnx_runtime import predictor_from_onnx

        return predictor_from_onnx(path, device=device, **kwargs)

    # ------------------------------------------------------------------ core
    def predict_rows(self, image: np.ndarray) -> np.ndarray:
        """All K (×scales) detections of one BGR image: (N, 5 + 2J + J) rows
        ``[box, score, joints x y ..., joint scores ...]`` in image pixels, before thresholding."""
        return self.predict_rows_batch([image])[0]

    @torch.inference_mode()
    def predict_rows_batch(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """:meth:`predict_rows` for several BGR images; images whose inputs share a size run as one batch."""
        per_scale = [self._predict_scale(images, scale) for scale in self.scales]
        results = []
        for i in range(len(images)):
            rows = np.concatenate([scale_rows[i] for scale_rows in per_scale])
            if len(self.scales) > 1:
                merge = soft_nms_original if self.merge == "original" else soft_nms
                rows = merge(rows, sigma=0.5, score_thresh=0.001)
            results.append(rows)
        return results

    def _predict_scale(self, images: Sequence[np.ndarray], scale: float) -> list[np.ndarray]:
        t0 = time.perf_counter()
        inputs = [
            preprocess(image, scale, keep_res=self.keep_res, pad=self.pad, input_size=self.input_size, normalize=False)
            for image in images
        ]
        groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
        for i, inp in enumerate(inputs):  # keep_res canvases differ by image size
            groups[inp.image.shape].append(i)
        results: list[np.ndarray] = [np.empty(0)] * len(images)
        for members in groups.values():
            # uint8 canvases to the device, normalised there (as the training batches)
            x = torch.from_numpy(np.stack([inputs[i].image for i in members])).to(self.device)
            x = apply_input_affine(x, self._input_affine.to(self.device))
            c = torch.from_numpy(np.stack([inputs[i].c for i in members]))
            # (n, 1) fix_res scales or (n, 2) keep_res canvas sizes; only s[:, 0] is used, as the original.
            s = torch.from_numpy(np.stack([np.asarray(inputs[i].s, dtype=np.float64).reshape(-1) for i in members]))
            self._sync()
            self.timer.add("pre", time.perf_counter() - t0)
            poses = self._people(x, {"c": c, "s": s}, scale)
            t3 = time.perf_counter()
            out = poses.rows(joint_scores=True).cpu().numpy()  # "post": the copy to the host
            for j, i in enumerate(members):
                results[i] = out[j]
            self.timer.add("post", time.perf_counter() - t3)
            t0 = time.perf_counter()
        return results

    def _people(self, x: torch.Tensor, meta: dict[str, torch.Tensor], scale: float) -> Poses:
        """People in image pixels of a batch of normalised canvases x (n, 3, H, W): the network (``net``
        stage; with the mirrored canvases when ``flip_test``) and the codec's decode (``dec``: flip merge,
        decode, inverse affine, on the device)."""
        if self.codec.options.flip_test:
            x = torch.cat([x, x.flip(3)])
        t1 = time.perf_counter()
        heads = self.net(x)[-1]
        self._sync()
        t2 = time.perf_counter()
        poses = self.codec.decode(heads, meta, scale=scale)
        self._sync()
        self.timer.add("net", t2 - t1)
        self.timer.add("dec", time.perf_counter() - t2)
        return poses

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def predict_poses(self, image: np.ndarray) -> Poses:
        """All K (×scales) people of one BGR image in image pixels, before thresholding."""
        return Poses.from_rows(self.predict_rows(image), num_joints=self.keypoints.num_joints).numpy()

    def _poses(self, rows: np.ndarray) -> Poses:
        poses = Poses.from_rows(rows, num_joints=self.keypoints.num_joints).numpy()
        return poses[poses.scores >= self.score_thresh] if self.score_thresh > 0 else poses

    def __call__(
        self, images: ImageLike | Iterable[ImageLike], color: Literal["bgr", "rgb"] = "bgr"
    ) -> Poses | list[Poses]:
        """Predict people on an image path, a BGR/RGB array, or a list of them (then a list is returned)."""
        single = isinstance(images, (str, Path)) or (isinstance(images, np.ndarray) and images.ndim in (2, 3))
        batch = [images] if single else list(images)
        t0 = time.perf_counter()
        loaded = [read_image(source, color) for source in batch]
        self.timer.add("load", time.perf_counter() - t0)
        results = [self._poses(rows) for rows in self.predict_rows_batch(loaded)]
        return results[0] if single else results

    @classmethod
    def from_pretrained(cls, name: str | Path, device: str | torch.device = "cpu", **kwargs: Any) -> "Predictor":
        """A model-zoo pose model by name (``multi_pose_dla_3x``, ...: ``centerpose zoo list``), fetched and
        converted into ``$CENTERPOSE_HOME/zoo`` on first use, then as :meth:`from_checkpoint`; a checkpoint
        path works too. See :mod:`centerpose.zoo`."""
        from centerpose.zoo import resolve_weights

        return cls.from_checkpoint(resolve_weights(name, task="pose"), device=device, **kwargs)
