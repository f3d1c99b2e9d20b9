"""Evaluate a checkpoint (or the encode/decode oracle) with COCO keypoint and box AP.

    python -m centerpose.evaluate model=outputs/train/<run>/checkpoints/last.ckpt data=coco
    python -m centerpose.evaluate model=multi_pose_dla_3x decode.flip_test=false test.scales=[0.5,1,1.5]
    python -m centerpose.evaluate oracle=all data=coco_mini

The network comes from the checkpoint (``centerpose.checkpoints``: weights, keypoint description, architecture
entry), runs through ``centerpose.inference.Predictor``, which decodes with the codec; scoring is
``centerpose.evaluation``; the oracle (``centerpose.evaluation.oracle``) encodes and decodes ground truth with
the same codec.

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
from omegaconf import DictConfig
from pycocotools.coco import COCO
from rich.console import Console
from rich.table import Table

from centerpose.codec.codec import CenterPoseCodec
from centerpose.config import build_codec, config_dir, decode_options, model_file, quote_argv
from centerpose.data.datamodule import check_coco_layout, coco_split_paths
from centerpose.codec.poses import Poses
from centerpose.evaluation.coco import evaluate_coco, save_coco_results, to_coco_results
from centerpose.codec.ops import JOINT_OFFSETS
from centerpose.evaluation.oracle import ORACLE_VARIANTS, oracle_results  # noqa: F401  (ORACLE_VARIANTS: re-export)
from centerpose.data.image_io import BadImageError, read_image_checked
from centerpose.inference.device import resolve_device  # noqa: F401  (re-export)
from centerpose.keypoints import KeypointSpec
from centerpose.errors import RunError, error_boundary, task_errors
from centerpose.outputs import discard_on_error
from centerpose.safety import exit_if_output_unwritable, writable_problem

log = logging.getLogger("centerpose.evaluate")


def checkpoint_results(
    cfg: DictConfig,
    ckpt_path: Path,
    image_dir: Path,
    coco: COCO,
    codec: CenterPoseCodec,
    unreadable: list[dict] | None = None,
) -> tuple[dict[int, Poses], dict]:
    """Run the predictor over every image of the split; returns results and per-stage times.

    The decode is ``codec``'s (the run's one, with the ``decode`` group's options: by default the detector's
    flip test and plain sigmoid) with the checkpoint's skeleton; ``test.*`` is the protocol around it. An image
    that cannot be read is scored as one without detections and appended to ``unreadable``.
    """
    from rich.progress import track

    from centerpose.inference.predictor import Predictor

    test = cfg.test
    kwargs = dict(keep_res=test.keep_res, scales=list(test.scales), score_thresh=0.0, merge=test.merge, codec=codec)
    if test.pad is not None:
        kwargs["pad"] = test.pad
    predictor = Predictor.from_checkpoint(ckpt_path, device=resolve_device(cfg.device), **kwargs)
    check_skeleton_fits(predictor.keypoints, codec.keypoints, str(ckpt_path))
    keypoints = codec.keypoints
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
            results[img_id] = Poses.empty(keypoints.num_joints)
            continue
        predictor.timer.add("load", time.perf_counter() - start)
        results[img_id] = predictor.predict_poses(image)
        predictor.timer.add("tot", time.perf_counter() - start)
    return results, predictor.timer.summary()


def check_skeleton_fits(ckpt_keypoints: KeypointSpec, data_keypoints: KeypointSpec, ckpt_path: str) -> None:
    """Refuse, before the first image, a checkpoint whose heads predict another skeleton than the data's."""
    if ckpt_keypoints.num_joints != data_keypoints.num_joints:
        raise RunError(
            f"checkpoint {ckpt_path} predicts {ckpt_keypoints.num_joints} joints "
            f"({', '.join(ckpt_keypoints.names[:6])}...) but the data / keypoints config has "
            f"{data_keypoints.num_joints}: evaluate it with keypoints= matching its training"
        )


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
    if cfg.oracle:  # a mistyped oracle setting stops before any image is read
        for key, value, allowed in (
            ("oracle", cfg.oracle, sorted(ORACLE_VARIANTS)),
            ("test.joint_offsets", cfg.test.joint_offsets, list(JOINT_OFFSETS)),
        ):
            if value not in allowed:
                raise RunError(f"{key}={value}: expected one of {allowed}")
    keypoints = hydra.utils.instantiate(cfg.keypoints)
    ckpt_path = None if cfg.oracle else model_file(cfg, required=False)
    if ckpt_path is not None:
        from centerpose.checkpoints.format import checkpoint_keypoints

        # Score with the skeleton (and OKS sigmas) the checkpoint was trained for; the pre-flight pass below
        # then refuses data of another skeleton before the first image.
        keypoints = checkpoint_keypoints(ckpt_path) or keypoints
    # the run's decode options and codec, built once
    codec = build_codec(cfg, keypoints, decode_options(cfg))
    check_coco_layout(cfg.data.root, ("val",))
    image_dir, ann_file = coco_split_paths(cfg.data.root, "val")
    out = Path(cfg.paths.output_dir)
    problem = writable_problem(out)
    if problem:
        raise RunError(f"cannot write results to '{out}' ({problem}); set hydra.run.dir= to a writable folder")
    if cfg.data.get("preflight", True):
        enforce(
            [
                check_split(
                    ann_file,
                    image_dir,
                    keypoints.num_joints,
                    keypoints.category_name,
                    train=False,
                    missing_images_fatal=cfg.data.get("on_bad_sample", "skip") == "raise",
                )
            ],
            out / "preflight.json",
        )
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(ann_file))
    times = None
    unreadable: list[dict] = []
    if cfg.oracle:
        # The trainer path: no flip (the oracle heads are probabilities, decoded without a sigmoid).
        results = oracle_results(
            image_dir,
            ann_file,
            cfg.oracle,
            codec.replace(flip_test=False),
            cfg.max_images,
            joint_offsets=cfg.test.joint_offsets,
        )
    elif ckpt_path is not None:
        results, times = checkpoint_results(cfg, ckpt_path, image_dir, coco, codec, unreadable)
    else:
        raise RunError(
            "evaluate needs model=<checkpoint file or model-zoo name> (or ckpt_path=) or oracle=hm|hm_hp|all"
        )
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
    with task_errors("centerpose.evaluate"), discard_on_error(cfg.paths.output_dir):
        return evaluate(cfg)["AP"]


if __name__ == "__main__":
    with error_boundary("centerpose.evaluate"):
        quote_argv()
        exit_if_output_unwritable(sys.argv[1:], "centerpose.evaluate")
        main()
