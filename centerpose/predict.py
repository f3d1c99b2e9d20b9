"""Predict poses on an image, a folder of images, a video or a webcam, and draw them.

    python -m centerpose.predict model=last.ckpt source=street.jpg
    python -m centerpose.predict model=last.ckpt source=photos/          # every image, progress bar
    python -m centerpose.predict model=last.ckpt source=clip.mp4         # writes clip.mp4 with skeletons
    python -m centerpose.predict model=last.ckpt source=0 max_frames=300 # webcam 0
    python -m centerpose.predict model=model.onnx source=photos/         # an exported model, onnxruntime
    python -m centerpose.predict model=multi_pose_dla_3x source=photos/  # a model-zoo name
    python -m centerpose.predict model=last.ckpt source=clip.mp4 track=true  # persistent person ids

Built from ``centerpose.inference``: the ``Predictor`` (checkpoint through ``centerpose.checkpoints``, or an
ONNX file through ``onnx_runtime``; people decoded by the codec into ``Poses``), ``tracking.PoseTracker`` and
``visualize`` for drawing.

Outputs go to the run directory: drawn images (or ``<name>.mp4``) and ``detections.json``
(per image or frame: people with box, score and keypoints (x, y, score); with ``track=true`` also ``id``,
the person's track id across frames or the sorted images of a folder, −1 while unconfirmed).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from pathlib import Path
from typing import Iterator

import cv2
import hydra
import numpy as np
from omegaconf import DictConfig
from rich.progress import Progress

from centerpose.codec.codec import DecodeOptions
from centerpose.config import config_dir, decode_options, model_file, quote_argv
from centerpose.config_check import check_config_types
from centerpose.data.image_io import BadImageError, read_image_checked
from centerpose.inference.device import resolve_device
from centerpose.codec.poses import Poses
from centerpose.inference.predictor import Predictor
from centerpose.errors import RunError, error_boundary, task_errors
from centerpose.outputs import discard_on_error
from centerpose.safety import exit_if_output_unwritable
from centerpose.inference.visualize import draw_poses

log = logging.getLogger("centerpose.predict")

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}


class SourceNotFoundError(RunError, FileNotFoundError):
    """``source=`` names no file, folder or webcam index."""


class UnsupportedSourceError(RunError, ValueError):
    """``source=`` is a file predict cannot read (neither an image nor a video by its suffix)."""


def source_kind(source: str | int) -> str:
    """``webcam``, ``folder``, ``video`` or ``image``; a clear error for anything else."""
    if isinstance(source, int) or str(source).isdigit():
        return "webcam"
    path = Path(source)
    if path.is_dir():
        return "folder"
    if not path.exists():
        raise SourceNotFoundError(f"source '{source}' does not exist")
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return "video"
    if suffix in IMAGE_SUFFIXES:
        return "image"
    raise UnsupportedSourceError(
        f"source '{source}': unknown file type '{suffix}' (images: {sorted(IMAGE_SUFFIXES)}, "
        f"videos: {sorted(VIDEO_SUFFIXES)})"
    )


def frames(capture: cv2.VideoCapture, max_frames: int | None) -> Iterator[np.ndarray]:
    count = 0
    while max_frames is None or count < max_frames:
        ok, frame = capture.read()
        if not ok:
            return
        count += 1
        yield frame


def draw(
    image: np.ndarray, poses: Poses, predictor: Predictor, cfg: DictConfig, ids: np.ndarray | None = None
) -> np.ndarray:
    return draw_poses(
        image,
        poses.boxes,
        poses.scores,
        poses.keypoints,
        predictor.keypoints,
        score_thresh=cfg.score_thresh if ids is None else 0.0,
        kpt_thresh=cfg.kpt_thresh,
        ids=ids,
    )


class FrameTracker:
    """``track=true``: ids from a :class:`~centerpose.inference.tracking.PoseTracker`; people below ``score_thresh``
    are kept only while they extend a confirmed track (the tracker's low-score stage)."""

    def __init__(self, cfg: DictConfig, predictor: Predictor) -> None:
        # _partial_: a KeypointSpec passed to instantiate would be turned into a config node.
        self.tracker = hydra.utils.instantiate(cfg.tracker, _partial_=True)(keypoints=predictor.keypoints)
        self.score_thresh = cfg.score_thresh
        # The predictor must return the low-score people the tracker's second stage needs.
        predictor.score_thresh = min(cfg.score_thresh, self.tracker.low_thresh)

    def __call__(self, poses: Poses) -> tuple[Poses, np.ndarray]:
        ids = self.tracker.update(poses)
        poses = self.tracker.smoothed
        keep = (poses.scores >= self.score_thresh) | (ids >= 0)
        return Poses(poses.boxes[keep], poses.scores[keep], poses.keypoints[keep]), ids[keep]


def to_json(poses: Poses, ids: np.ndarray | None) -> list[dict]:
    people = poses.to_json()
    return people if ids is None else [{**p, "id": int(i)} for p, i in zip(people, ids)]


def predict(cfg: DictConfig) -> Path:
    """Run the predictor over ``cfg.source``; returns the output directory."""
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    kind = source_kind(cfg.source)
    weights = model_file(cfg)
    options = decode_options(cfg)  # the run's decode options, built once
    if weights.suffix.lower() == ".onnx":  # an exported file (centerpose.export): geometry from its metadata
        # a decode graph keeps the options it was exported with; those set on the command line must match them
        # (the user's to fix, so one line, not a traceback)
        asked = {name: getattr(options, name) for name in command_line_decode_fields()}
        try:
            switches = asked if onnx_has_decode(weights) else dataclasses.asdict(options)
            predictor = Predictor.from_onnx(
                weights, device=resolve_device(cfg.device), score_thresh=cfg.score_thresh, **switches
            )
        except ValueError as e:
            raise RunError(str(e)) from e
    else:
        predictor = Predictor.from_checkpoint(
            weights,
            device=resolve_device(cfg.device),
            keep_res=cfg.keep_res,
            score_thresh=cfg.score_thresh,
            **dataclasses.asdict(options),
        )
    tracker = FrameTracker(cfg, predictor) if cfg.get("track") else None
    ids = None
    detections: dict[str, list] = {}
    skipped: list[str] = []
    if kind in ("image", "folder"):
        paths = (
            [Path(cfg.source)]
            if kind == "image"
            else sorted(p for p in Path(cfg.source).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        )
        if not paths:
            raise FileNotFoundError(f"no images ({sorted(IMAGE_SUFFIXES)}) in folder '{cfg.source}'")
        with Progress(disable=kind == "image") as progress:
            task = progress.add_task("predicting", total=len(paths))
            for path in paths:
                try:
                    image = read_image_checked(path)
                except BadImageError as e:
                    log.warning("skipping '%s': %s", path, e.reason)
                    skipped.append(f"{path.name} ({e.reason})")
                    progress.advance(task)
                    continue
                poses = predictor(image)
                if tracker is not None:
                    poses, ids = tracker(poses)
                cv2.imwrite(str(out / f"{path.stem}_pose.jpg"), draw(image, poses, predictor, cfg, ids))
                detections[path.name] = to_json(poses, ids)
                progress.advance(task)
    else:
        capture = cv2.VideoCapture(int(cfg.source) if kind == "webcam" else str(cfg.source))
        if not capture.isOpened():
            raise RuntimeError(f"cannot open video source '{cfg.source}'")
        fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
        total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
        if cfg.max_frames and total:
            total = min(total, cfg.max_frames)
        name = "webcam" if kind == "webcam" else Path(cfg.source).stem
        writer = None
        with Progress() as progress:
            task = progress.add_task("predicting", total=total)
            for index, frame in enumerate(frames(capture, cfg.max_frames)):
                poses = predictor(frame)
                if tracker is not None:
                    poses, ids = tracker(poses)
                drawn = draw(frame, poses, predictor, cfg, ids)
                if writer is None:
                    h, w = drawn.shape[:2]
                    writer = cv2.VideoWriter(
                        str(out / f"{name}_pose.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h)
                    )
                writer.write(drawn)
                detections[f"frame_{index:06d}"] = to_json(poses, ids)
                progress.advance(task)
        capture.release()
        if writer is not None:
            writer.release()
    if skipped and not detections:
        raise RunError(f"no input could be read from '{cfg.source}': skipped {', '.join(skipped)}")
    (out / "detections.json").write_text(json.dumps(detections))
    log.info("%d %s written to %s", len(detections), "frames" if kind in ("video", "webcam") else "images", out)
    if skipped:
        log.warning("%d file(s) skipped: %s", len(skipped), ", ".join(skipped))
    return out


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="predict")
def main(cfg: DictConfig) -> None:
    with task_errors("centerpose.predict"), discard_on_error(cfg.paths.output_dir):
        check_config_types(cfg)  # a mistyped tracker.* / decode value stops here, naming the key
        predict(cfg)


def command_line_decode_fields() -> list[str]:
    """The ``decode.*`` fields this job's command line sets (all of them for ``decode=<option>``)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return []
    keys = [o.split("=", 1)[0].lstrip("+~") for o in HydraConfig.get().overrides.task]
    names = [f.name for f in dataclasses.fields(DecodeOptions)]
    if "decode" in keys:
        return names
    return [n for n in names if f"decode.{n}" in keys]


def onnx_has_decode(path: Path) -> bool:
    """Whether an exported ONNX file holds the decode (people out) rather than the raw heads."""
    from centerpose.inference.onnx_runtime import read_metadata

    return bool(read_metadata(path).get("decode"))


if __name__ == "__main__":
    with error_boundary("centerpose.predict"):
        quote_argv()
        exit_if_output_unwritable(sys.argv[1:], "centerpose.predict")
        main()
