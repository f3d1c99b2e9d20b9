"""Evaluate a checkpoint (or the encode/decode oracle) with COCO keypoint and box AP.

    python -m centerpose.evaluate ckpt_path=outputs/train/<run>/checkpoints/last.ckpt data=coco
    python -m centerpose.evaluate ckpt_path=... test.flip=false test.scales=[0.5,1,1.5]
    python -m centerpose.evaluate oracle=all data=coco_mini

Writes ``results.json`` (COCO format, the original's rounding) and ``metrics.json`` to the run directory,
prints the metric table and, for a checkpoint, the test time per stage (load, pre, net, dec, post;
ms/img, mean and median) like the original's test.py.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import sys
import time
from pathlib import Path

import hydra
import numpy as np
import torch
from omegaconf import DictConfig
from pycocotools.coco import COCO
from rich.console import Console
from rich.table import Table

from centerpose.config import config_dir, quote_argv
from centerpose.data.datamodule import check_coco_layout, coco_split_paths
from centerpose.evaluation.coco import evaluate_coco, save_coco_results, to_coco_results
from centerpose.data.image_io import BadImageError, read_image_checked
from centerpose.keypoints import KeypointSpec
from centerpose.safety import RunError, exit_if_output_unwritable, one_line_errors, writable_problem

log = logging.getLogger("centerpose.evaluate")

#: The original's flag sets of METHOD.md §3.7 (which heads are replaced by ground truth).
ORACLE_VARIANTS = {
    "hm": {"hm", "kps"},  # --not_hm_hp --eval_oracle_hm --eval_oracle_kps
    "hm_hp": {"hm", "kps", "hm_hp"},  # --not_reg_hp_offset ... --eval_oracle_hmhp
    "all": {"hm", "kps", "hm_hp", "hp_offset"},
}


def resolve_device(name: str) -> torch.device:
    return torch.device("cuda" if name == "auto" and torch.cuda.is_available() else
                        "cpu" if name == "auto" else name)


def oracle_results(image_dir: Path, ann_file: Path, variant: str, keypoints: KeypointSpec, K: int,
                   input_size: int, max_images: int | None, tie_break: str = "topk", snap: str = "nearest",
                   corrected_radius: bool = False) -> dict[int, np.ndarray]:
    """Detections decoded from ground-truth encodings of every val image (the trainer path, no flip);
    ``tie_break``/``snap`` switch the decode, ``corrected_radius`` the encoding (all off = the original)."""
    from torch.utils.data import DataLoader, Subset

    from centerpose.codec.decode import decode
    from centerpose.codec.oracle import oracle_outputs
    from centerpose.codec.postprocess import to_image_coords
    from centerpose.data.coco import CocoPoseDataset

    if variant not in ORACLE_VARIANTS:
        raise ValueError(f"unknown oracle '{variant}'; choose one of {sorted(ORACLE_VARIANTS)}")
    dataset = CocoPoseDataset(image_dir, ann_file, train=False, augment=False, keypoints=keypoints,
                              input_size=input_size, corrected_radius=corrected_radius)
    if max_images:
        dataset = Subset(dataset, range(min(max_images, len(dataset))))
    results: dict[int, np.ndarray] = {}
    for batch in DataLoader(dataset, batch_size=8, num_workers=0):
        heads = oracle_outputs(batch, ORACLE_VARIANTS[variant])
        dets = decode(heads, K=K, tie_break=tie_break, snap=snap)
        rows = to_image_coords(dets, batch["meta"]["c"], batch["meta"]["s"], tuple(batch["hm"].shape[-2:]))
        for img_id, r in zip(batch["meta"]["img_id"].tolist(), rows.numpy()):
            results[int(img_id)] = r
    return results


def checkpoint_results(cfg: DictConfig, image_dir: Path, coco: COCO, keypoints: KeypointSpec,
                       unreadable: list[dict] | None = None) -> tuple[dict[int, np.ndarray], dict]:
    """Run the predictor over every image of the split; returns results and per-stage times.

    An image that cannot be read is scored as one without detections and appended to ``unreadable``.
    """
    from rich.progress import track

    from centerpose.predictor import Predictor

    test = cfg.test
    kwargs = dict(flip_test=test.flip, keep_res=test.keep_res, scales=list(test.scales), K=test.K,
                  score_thresh=0.0, fix_flip_offset=test.fix_flip_offset, merge=test.get("merge", "original"),
                  tie_break=test.get("tie_break", "topk"), snap=test.get("snap", "nearest"))
    if test.pad is not None:
        kwargs["pad"] = test.pad
    predictor = Predictor.from_checkpoint(cfg.ckpt_path, device=resolve_device(cfg.device), **kwargs)
    check_skeleton_fits(predictor.keypoints, keypoints, cfg.ckpt_path)
    j = keypoints.num_joints
    ids = sorted(coco.getImgIds())[: cfg.max_images or None]
    results = {}
    unreadable = [] if unreadable is None else unreadable
    for img_id in track(ids, description="evaluating"):
        start = time.perf_counter()
        path = image_dir / coco.loadImgs(img_id)[0]["file_name"]
        try:
            image = read_image_checked(path)
        except BadImageError as e:  # scored as an image without detections; named in the log and the report
            log.warning("image %s skipped: %s: %s", img_id, path, e.reason)
            unreadable.append({"file": str(path), "image_id": int(img_id), "reason": e.reason})
            results[img_id] = np.zeros((0, 5 + 2 * j), np.float32)
            continue
        predictor.timer.add("load", time.perf_counter() - start)
        rows = predictor.predict_rows(image)
        results[img_id] = rows[:, : 5 + 2 * j]
        predictor.timer.add("tot", time.perf_counter() - start)
    return results, predictor.timer.summary()


def check_skeleton_fits(ckpt_keypoints: KeypointSpec, data_keypoints: KeypointSpec, ckpt_path: str) -> None:
    """Refuse, before the first image, a checkpoint whose heads predict another skeleton than the data's."""
    if ckpt_keypoints.num_joints != data_keypoints.num_joints:
        raise RunError(f"checkpoint {ckpt_path} predicts {ckpt_keypoints.num_joints} joints "
                       f"({', '.join(ckpt_keypoints.names[:6])}...) but the data / keypoints config has "
                       f"{data_keypoints.num_joints}: evaluate it with keypoints= matching its training")


def print_report(metrics: dict[str, float], times: dict | None, console: Console) -> None:
    table = Table(title="COCO evaluation")
    table.add_column("metric")
    table.add_column("keypoints", justify="right")
    table.add_column("bbox", justify="right")
    for name in ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"):
        bbox = {"AR": "bbox_AR100", "AR50": None, "AR75": None}.get(name, f"bbox_{name}")
        table.add_row(name, f"{metrics[name]:.4f}", f"{metrics[bbox]:.4f}" if bbox in metrics else "")
    console.print(table)
    if times:
        timing = Table(title="test time per image (ms)")
        for col in ("stage", "mean", "median"):
            timing.add_column(col, justify="right")
        for stage in ("load", "pre", "net", "dec", "post", "tot"):
            if stage in times:
                timing.add_row(stage, f"{times[stage]['mean_ms']:.1f}", f"{times[stage]['median_ms']:.1f}")
        console.print(timing)


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Evaluate a checkpoint or an oracle on ``data.root``'s val split; writes results and metrics."""
    from centerpose.config_check import check_config_types
    from centerpose.data.preflight import check_split, enforce

    check_config_types(cfg)
    keypoints = hydra.utils.instantiate(cfg.keypoints)
    if cfg.ckpt_path and not cfg.oracle:
        from centerpose.checkpoints.format import checkpoint_keypoints

        # Score with the skeleton (and OKS sigmas) the checkpoint was trained for; the pre-flight pass below
        # then refuses data of another skeleton before the first image.
        keypoints = checkpoint_keypoints(cfg.ckpt_path) or keypoints
    check_coco_layout(cfg.data.root, ("val",))
    image_dir, ann_file = coco_split_paths(cfg.data.root, "val")
    out = Path(cfg.paths.output_dir)
    problem = writable_problem(out)
    if problem:
        raise RunError(f"cannot write results to '{out}' ({problem}); set hydra.run.dir= to a writable folder")
    if cfg.data.get("preflight", True):
        enforce([check_split(ann_file, image_dir, keypoints.num_joints, keypoints.category_name, train=False,
                             missing_images_fatal=cfg.data.get("on_bad_sample", "skip") == "raise")],
                out / "preflight.json")
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(ann_file))
    times = None
    unreadable: list[dict] = []
    if cfg.oracle:
        results = oracle_results(image_dir, ann_file, cfg.oracle, keypoints, cfg.test.K, cfg.data.input_size,
                                 cfg.max_images, tie_break=cfg.test.get("tie_break", "topk"),
                                 snap=cfg.test.get("snap", "nearest"),
                                 corrected_radius=cfg.test.get("corrected_radius", False))
    elif cfg.ckpt_path:
        results, times = checkpoint_results(cfg, image_dir, coco, keypoints, unreadable)
    else:
        raise ValueError("evaluate needs ckpt_path=<checkpoint> or oracle=hm|hm_hp|all")
    coco_results = to_coco_results(dict(sorted(results.items())))
    if cfg.max_images:
        coco.imgs = {i: coco.imgs[i] for i in sorted(results)}  # score only the evaluated images
        coco.dataset["images"] = [im for im in coco.dataset["images"] if im["id"] in results]
    metrics = evaluate_coco(coco, coco_results, keypoints)
    out.mkdir(parents=True, exist_ok=True)
    if unreadable:
        (out / "bad_samples.json").write_text(json.dumps(unreadable, indent=1))
        log.warning("unreadable images were scored without detections; listed in %s", out / "bad_samples.json")
    save_coco_results(coco_results, out / "results.json")
    report = {**metrics, **({"time": times} if times else {})}
    (out / "metrics.json").write_text(json.dumps(report, indent=2))
    print_report(metrics, times, Console())
    log.info("results and metrics written to %s", out)
    return metrics


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="evaluate")
def main(cfg: DictConfig) -> float:
    with one_line_errors(log):
        return evaluate(cfg)["AP"]


if __name__ == "__main__":
    quote_argv()
    exit_if_output_unwritable(sys.argv[1:], "centerpose.evaluate")
    main()
