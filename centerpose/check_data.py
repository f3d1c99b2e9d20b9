"""Check a dataset before training on it: the pre-flight pass, and optionally a decode of every image.

    python -m centerpose.check_data data=coco                  # annotations + every image exists (seconds)
    python -m centerpose.check_data data=coco scan=true        # + decode every image (progress bar)
    python -m centerpose.check_data data=coco_mini splits=[val]

Prints every problem with file, image id and annotation id, writes ``check_data.json`` into the run folder
and exits with code 1 when a problem would stop a training (or, with ``scan=true``, an image is unreadable).
"""

from __future__ import annotations

import json
import logging
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import hydra
from omegaconf import DictConfig

from centerpose.config import config_dir, quote_argv
from centerpose.data.datamodule import check_coco_layout, coco_split_paths
from centerpose.data.image_io import BadImageError, read_image_checked
from centerpose.data.preflight import Problem, check_split, log_report
from centerpose.errors import error_boundary, task_errors
from centerpose.safety import exit_if_output_unwritable

log = logging.getLogger("centerpose.check_data")


def image_files(ann_file: Path, image_dir: Path) -> list[tuple[int, Path]]:
    data = json.loads(ann_file.read_text())
    return [
        (img["id"], image_dir / img["file_name"])
        for img in data.get("images", [])
        if isinstance(img, dict) and "id" in img and img.get("file_name")
    ]


def scan_images(files: list[tuple[int, Path]], workers: int = 4, description: str = "decoding") -> list[Problem]:
    """Decode every file (threads: cv2 releases the GIL); one :class:`Problem` per unreadable image."""
    from rich.progress import Progress

    def read(item: tuple[int, Path]) -> Problem | None:
        image_id, path = item
        try:
            read_image_checked(path)
        except BadImageError as e:
            return Problem(str(path), e.reason, fatal=False, image_id=image_id)
        return None

    problems = []
    with Progress() as progress, ThreadPoolExecutor(max(1, workers)) as pool:
        task = progress.add_task(description, total=len(files))
        for problem in pool.map(read, files):
            if problem is not None:
                problems.append(problem)
            progress.advance(task)
    return problems


def check_data(cfg: DictConfig) -> int:
    """Run the checks; returns the exit code (0: trainable as is)."""
    keypoints = hydra.utils.instantiate(cfg.keypoints)
    root = Path(cfg.data.root)
    if cfg.data.get("synthetic") is not None:
        from centerpose.data.synthetic import ensure_synthetic_coco

        ensure_synthetic_coco(root, **cfg.data.synthetic)
    check_coco_layout(root, tuple(cfg.splits))
    reports, failed = [], False
    for split in cfg.splits:
        image_dir, ann_file = coco_split_paths(root, split)
        report = check_split(
            ann_file,
            image_dir,
            keypoints.num_joints,
            keypoints.category_name,
            train=split == "train",
            missing_images_fatal=cfg.data.get("on_bad_sample") == "raise",
        )
        if cfg.scan and not report.fatal:
            bad = scan_images(image_files(ann_file, image_dir), cfg.workers, f"decoding {split}")
            missing = {(p.image_id, p.file) for p in report.problems}
            report.problems += [p for p in bad if (p.image_id, p.file) not in missing]
            failed |= bool(bad)
        log_report(report, limit=50)
        failed |= bool(report.fatal)
        reports.append(report)
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "check_data.json").write_text(json.dumps([r.to_json() for r in reports], indent=1))
    verdict = "problems found" if failed else "OK"
    log.info("%s: %s (full report: %s)", root, verdict, out / "check_data.json")
    return 1 if failed else 0


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="check_data")
def main(cfg: DictConfig) -> None:
    with task_errors("centerpose.check_data"):
        code = check_data(cfg)
    if code:
        sys.exit(code)


if __name__ == "__main__":
    with error_boundary("centerpose.check_data"):
        quote_argv()
        exit_if_output_unwritable(sys.argv[1:], "centerpose.check_data")
        main()
