"""Pre-flight check of a COCO keypoint split: every problem of the annotation file and the image folder,
found in seconds before the first training step or evaluated image, each named by file, image id and
annotation id.

Fatal (the run refuses to start): an unreadable json, no keypoint category or one with another joint count,
an annotation whose ``bbox`` is not 4 finite numbers with w, h >= 0, whose ``keypoints`` are not 3·J finite
numbers, whose category is not the keypoint category, an image without ``id`` / ``file_name``, duplicate
image ids, no usable image at all. Not fatal (reported; the sample is replaced during the run): a missing
image file, an annotation of an unknown image (pycocotools ignores it). With ``missing_images_fatal`` (used
with ``data.on_bad_sample=raise``) missing images are fatal too.

Speed: one ``json.load``, one listing of the image folder and a C-level ``sum`` per keypoint list (a NaN or
inf makes the sum non-finite; a string raises): a COCO-sized file (64 K images, 150 K people) takes seconds,
most of it parsing json (``scripts/bench_preflight.py``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from centerpose.errors import RunError

log = logging.getLogger("centerpose.data")

_NUMBER = (int, float)


@dataclass
class Problem:
    """One problem: where (file, image id, annotation id) and what."""

    file: str
    message: str
    fatal: bool = True
    image_id: int | None = None
    annotation_id: int | None = None

    def __str__(self) -> str:
        where = self.file
        if self.image_id is not None:
            where += f", image {self.image_id}"
        if self.annotation_id is not None:
            where += f", annotation {self.annotation_id}"
        return f"{'error' if self.fatal else 'warning'}: {where}: {self.message}"


@dataclass
class PreflightReport:
    """The outcome of :func:`check_split`."""

    ann_file: str
    image_dir: str
    num_images: int = 0
    num_annotations: int = 0
    num_samples: int = 0
    seconds: float = 0.0
    problems: list[Problem] = field(default_factory=list)

    @property
    def fatal(self) -> list[Problem]:
        return [p for p in self.problems if p.fatal]

    def add(self, message: str, fatal: bool = True, image_id=None, annotation_id=None, file: str | None = None):
        self.problems.append(Problem(file or self.ann_file, message, fatal, image_id, annotation_id))

    def summary(self) -> str:
        n_fatal = len(self.fatal)
        return (
            f"pre-flight {self.ann_file}: {self.num_images} images, {self.num_annotations} annotations, "
            f"{self.num_samples} usable samples, {n_fatal} error(s), {len(self.problems) - n_fatal} "
            f"warning(s) ({self.seconds:.1f} s)"
        )

    def to_json(self) -> dict:
        return {
            **{k: v for k, v in asdict(self).items() if k != "problems"},
            "problems": [asdict(p) for p in self.problems],
        }


class PreflightError(RunError, ValueError):
    """The data has fatal problems; the message lists them (and where the full report is)."""


def _is_number_list(values, length: int) -> str | None:
    """None when ``values`` is a list of ``length`` finite numbers, else what is wrong."""
    if not isinstance(values, list) or len(values) != length:
        got = f"{len(values)} values" if isinstance(values, list) else repr(values)[:40]
        return f"must hold {length} numbers, got {got}"
    try:
        total = sum(values)  # C speed; NaN / inf propagate, strings and None raise
    except TypeError:
        return f"holds non-numbers: {[v for v in values if not isinstance(v, _NUMBER)][:3]!r}"
    if not math.isfinite(total):
        bad = [v for v in values if not math.isfinite(v)]
        if bad:
            return f"holds non-finite values {bad[:3]!r}"
    return None


def list_image_files(image_dir: Path) -> set[str]:
    try:
        with os.scandir(image_dir) as it:
            return {e.name for e in it}
    except OSError:
        return set()


def check_split(
    ann_file: str | Path,
    image_dir: str | Path,
    num_joints: int,
    category_name: str = "person",
    train: bool = True,
    check_images: bool = True,
    missing_images_fatal: bool = False,
) -> PreflightReport:
    """Check one split; ``train`` counts only images with annotations as samples (the training filter)."""
    start = time.perf_counter()
    ann_file, image_dir = Path(ann_file), Path(image_dir)
    report = PreflightReport(str(ann_file), str(image_dir))
    try:
        with open(ann_file, "rb") as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        report.add(f"cannot read the annotation file: {e}")
        report.seconds = time.perf_counter() - start
        return report
    if not isinstance(data, dict):
        report.add("not a COCO annotation file (top level is not an object)")
        return report
    images, anns, cats = data.get("images"), data.get("annotations", []), data.get("categories")
    for key, value in (("images", images), ("annotations", anns), ("categories", cats)):
        if not isinstance(value, list):
            report.add(f"'{key}' must be a list, got {type(value).__name__}")
    if report.fatal:
        return report

    # -- category: the one whose skeleton the model encodes
    kp_cats = [c for c in cats if isinstance(c, dict) and c.get("keypoints")]
    chosen = [c for c in kp_cats if c.get("name") == category_name] or kp_cats
    category_id = None
    if not chosen:
        report.add("no category with 'keypoints' (is this a person_keypoints file?)")
    else:
        category_id = chosen[0].get("id")
        if len(chosen[0]["keypoints"]) != num_joints:
            report.add(
                f"category {chosen[0].get('name')!r} has {len(chosen[0]['keypoints'])} keypoints, the "
                f"configured skeleton has {num_joints} (keypoints= config)"
            )

    # -- images
    present = list_image_files(image_dir) if check_images else set()
    if check_images and not image_dir.is_dir():
        report.add(f"image folder not found: {image_dir}")
    known: dict[int, str] = {}
    for img in images:
        image_id = img.get("id") if isinstance(img, dict) else None
        name = img.get("file_name") if isinstance(img, dict) else None
        if not isinstance(image_id, int) or isinstance(image_id, bool):
            report.add(f"image entry without an integer 'id': {str(img)[:80]}")
            continue
        if image_id in known:
            report.add("duplicate image id", image_id=image_id)
            continue
        if not isinstance(name, str) or not name:
            report.add("image without 'file_name'", image_id=image_id)
            continue
        known[image_id] = name
        if check_images and name not in present and not (image_dir / name).is_file():
            report.add(
                "image file not found", fatal=missing_images_fatal, image_id=image_id, file=str(image_dir / name)
            )
    report.num_images = len(known)

    # -- annotations
    length = 3 * num_joints
    with_anns: set[int] = set()
    for ann in anns:
        if not isinstance(ann, dict):
            report.add(f"annotation entry is not an object: {str(ann)[:80]}")
            continue
        ann_id, image_id = ann.get("id"), ann.get("image_id")
        if image_id not in known:
            report.add(f"annotation of an unknown image id {image_id!r} (ignored)", fatal=False, annotation_id=ann_id)
            continue
        with_anns.add(image_id)
        bbox = ann.get("bbox")
        problem = _is_number_list(bbox, 4)
        if problem is None and (bbox[2] < 0 or bbox[3] < 0):
            problem = f"width and height must be >= 0, got {bbox!r}"
        if problem:
            report.add(f"'bbox' {problem}", image_id=image_id, annotation_id=ann_id)
        problem = _is_number_list(ann.get("keypoints"), length)
        if problem:
            report.add(f"'keypoints' {problem} ({num_joints} joints x 3)", image_id=image_id, annotation_id=ann_id)
        if category_id is not None and ann.get("category_id") != category_id:
            report.add(
                f"category_id {ann.get('category_id')!r} is not the keypoint category {category_id}",
                image_id=image_id,
                annotation_id=ann_id,
            )
    report.num_annotations = len(anns)
    report.num_samples = len(with_anns) if train else len(known)
    if report.num_samples == 0:
        what = "no image with annotations" if train else "no images"
        report.add(f"empty dataset: {what} in {ann_file}")
    report.seconds = time.perf_counter() - start
    return report


def log_report(report: PreflightReport, limit: int = 20) -> None:
    """Log the summary and the first ``limit`` problems."""
    (log.warning if report.problems else log.info)("%s", report.summary())
    for problem in report.problems[:limit]:
        (log.error if problem.fatal else log.warning)("  %s", problem)
    if len(report.problems) > limit:
        log.warning("  ... and %d more", len(report.problems) - limit)


def enforce(reports: list[PreflightReport], report_file: Path | None = None, limit: int = 20) -> None:
    """Log every report; write them all to ``report_file``; raise :class:`PreflightError` on fatal problems."""
    for report in reports:
        log_report(report, limit)
    if report_file is not None and any(r.problems for r in reports):
        try:
            report_file.parent.mkdir(parents=True, exist_ok=True)
            report_file.write_text(json.dumps([r.to_json() for r in reports], indent=1))
        except OSError:
            report_file = None
    fatal = [p for r in reports for p in r.fatal]
    if fatal:
        listing = "\n  ".join(str(p) for p in fatal[:limit])
        more = f"\n  ... and {len(fatal) - limit} more" if len(fatal) > limit else ""
        where = f" (all of them in {report_file})" if report_file else ""
        raise PreflightError(
            f"the data has {len(fatal)} fatal problem(s){where}; fix them or the paths "
            f"(python -m centerpose.check_data lists them):\n  {listing}{more}"
        )
