"""Learning on real images: can the whole COCO loop memorise a handful of real coco-mini images?

Trains ``centerpose.train`` (real COCO loader with flip and colour augmentation on a fixed crop, or the
original's full augmentation with ``--augment original``; encoder, loss, LightningModule, decoder and pycocotools
evaluation) on N real coco-mini train images and validates on the *same* images, so keypoint AP must climb
towards 1 if every part of the loop is right. Prints keypoint AP against minutes of training on this machine.

    python scripts/bench_learning.py                       # 8 images, ResNet-18 @ 192, 10 minutes, CPU
    python scripts/bench_learning.py --minutes 20          # what tests/training/test_learning.py runs (both recipes)
    python scripts/bench_learning.py --minutes 20 --recipe improved   # + sigma blobs, per-joint offsets, ...
    python scripts/bench_learning.py --minutes 3 --images 4
    python scripts/bench_learning.py --gpu --backbone dla --input-size 512 --minutes 10   # DLA-34 + DCN

The images are those of coco-mini's train split whose people all carry >= 8 labelled keypoints, largest
smallest-person first (a deterministic pick). The run folder (checkpoints, curves.png, pose images) is kept
under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_COCO_MINI = Path(os.environ.get("CENTERPOSE_SHARED", REPO.parent / "shared")) / "data" / "coco-mini"


def pick_images(ann: dict, count: int, min_keypoints: int = 8) -> list[int]:
    """Ids of ``count`` images whose annotated people (num_keypoints > 0) all have >= ``min_keypoints``.

    Largest smallest-person area first, so the handful is learnable at a small input size.
    """
    people = defaultdict(list)
    for a in ann["annotations"]:
        people[a["image_id"]].append(a)
    candidates = []
    for img in ann["images"]:
        labelled = [a for a in people[img["id"]] if a["num_keypoints"] > 0 and not a["iscrowd"]]
        if labelled and all(a["num_keypoints"] >= min_keypoints for a in labelled):
            candidates.append((-min(a["area"] for a in labelled), img["id"]))
    if len(candidates) < count:
        raise ValueError(
            f"only {len(candidates)} images have all people with >= {min_keypoints} keypoints; asked for {count}"
        )
    return [img_id for _, img_id in sorted(candidates)[:count]]


def write_subset(coco_mini: Path, out: Path, count: int) -> tuple[Path, list[int]]:
    """A COCO-layout root whose train and val splits are the same ``count`` real images (symlinked)."""
    ann_file = coco_mini / "annotations" / "person_keypoints_train2017.json"
    if not ann_file.is_file():
        raise FileNotFoundError(f"coco-mini not found: {ann_file} (pass --coco-mini)")
    ann = json.loads(ann_file.read_text())
    ids = set(pick_images(ann, count))
    subset = {
        **ann,
        "images": [i for i in ann["images"] if i["id"] in ids],
        "annotations": [a for a in ann["annotations"] if a["image_id"] in ids],
    }
    root = out / "data"
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    for split in ("train", "val"):
        (root / "annotations" / f"person_keypoints_{split}2017.json").write_text(json.dumps(subset))
        link = root / f"{split}2017"
        if not link.exists():
            link.symlink_to((coco_mini / "train2017").resolve(), target_is_directory=True)
    return root, sorted(ids)


def train(root: Path, run_dir: Path, args: argparse.Namespace) -> dict:
    """One `centerpose.train` run on ``root``; returns its history.json (epoch-level losses and val metrics)."""
    overrides = [
        f"data.root={root}",
        f"data.input_size={args.input_size}",
        f"data.batch_size={args.batch_size}",
        f"data.num_workers={args.workers}",
        "data.persistent_workers=true",
        "data.val_batch_size=1",
        "schedule=cosine",
        "schedule.warmup_steps=20",
        f"trainer.max_time=00:00:{args.minutes:02d}:00",
        f"model.lr={args.lr}",
        f"trainer.check_val_every_n_epoch={args.val_every}",
        "trainer.log_every_n_steps=1",
        "callbacks.pose_images.num_images=4",
        f"seed={args.seed}",
        f"hydra.run.dir={run_dir}",
        "trainer.enable_progress_bar=false",
        "task_name=bench_learning",
    ]
    if args.augment == "light":
        # the sample geometry stays fixed (no random crop, shift or scale); flip and colour are still drawn
        overrides += [
            "data.train_options.rand_crop=false",
            "data.train_options.shift=0.0",
            "data.train_options.scale=0.0",
        ]
    if args.recipe == "improved":
        # the measured switches (QUIRKS.md D2, E16, E9, E15): sigma-scaled joint blobs, one offset pair per joint,
        # weighted joint snapping and person rescoring
        overrides += [
            "codec.joint_radius=sigma",
            "model.net.joint_offsets=per_joint",
            "decode.snap=weighted",
            "decode.rescore=true",
        ]
    if args.dense_hp:
        # the original's --dense_hp: joint offsets supervised around each centre, not at the centre cell only
        overrides += ["codec.dense_hp=true"]
    if args.backbone == "dla":
        overrides += ["backbone=dla", "gpus=1" if args.gpu else "gpus=cpu"]
    else:
        overrides += [
            "backbone=timm",
            f"backbone_name={args.backbone}",
            f"model.net.head_conv={args.head_conv}",
            "gpus=1" if args.gpu else "gpus=cpu",
        ]
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    cmd = [sys.executable, "-m", "centerpose.train", *overrides]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, env=env, cwd=run_dir.parent)
    return json.loads((run_dir / "history.json").read_text())


def report(history: dict, args: argparse.Namespace, device: str) -> float:
    """Print keypoint AP vs minutes; returns the final keypoint AP."""
    rows = sorted(((int(e), r) for e, r in history["val"].items()), key=lambda t: t[0])
    print(
        f"\nMemorising {args.images} real coco-mini images ({args.backbone}, {args.input_size} px, "
        f"batch {args.batch_size}, Adam {args.lr:g} warm-up + cosine over {args.minutes} min, "
        f"{args.augment} augmentation, dense_hp {args.dense_hp}, {args.recipe} recipe) on {device}:"
    )
    print(f"{'minutes':>8} {'epoch':>6} {'images':>7} {'kp AP':>7} {'kp AP50':>8} {'box AP':>7}")
    for epoch, r in rows:
        print(
            f"{r['fit_s'] / 60:8.1f} {epoch + 1:6d} {int(r['images_seen']):7d} {r.get('AP', float('nan')):7.3f} "
            f"{r.get('AP50', float('nan')):8.3f} {r.get('bbox_AP', float('nan')):7.3f}"
        )
    if not args.gpu:
        print(f"{'GPU':>8}: not yet measured (run with --gpu; DLA-34 + DCN at 512: --backbone dla --input-size 512)")
    return rows[-1][1].get("AP", float("nan")) if rows else float("nan")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--coco-mini", type=Path, default=DEFAULT_COCO_MINI)
    p.add_argument("--out", type=Path, default=Path("outputs/bench_learning"))
    p.add_argument("--images", type=int, default=8)
    p.add_argument("--minutes", type=int, default=10)
    p.add_argument("--backbone", default="resnet18", help="a timm model name, or dla (DLA-34 + DCN)")
    p.add_argument("--head-conv", type=int, default=64)
    p.add_argument("--input-size", type=int, default=192)
    p.add_argument("--batch-size", type=int, default=4, help="small: 8 images make 2 optimizer steps per epoch")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--val-every", type=int, default=10, help="epochs between validations")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--seed", type=int, default=317)
    p.add_argument(
        "--augment",
        choices=("light", "original"),
        default="light",
        help="light: flip + colour on a fixed crop; original: + the original's random crop and scale",
    )
    p.add_argument(
        "--dense-hp",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the original's --dense_hp joint-offset targets (faster to fit)",
    )
    p.add_argument(
        "--recipe",
        choices=("original", "improved"),
        default="original",
        help="original: the original's targets, offsets and decode; improved: + the measured switches "
        "(joint_radius=sigma, joint_offsets=per_joint, snap=weighted, rescore)",
    )
    p.add_argument("--gpu", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> float:
    args = parse_args(argv)
    out = args.out.resolve() / time.strftime("%Y-%m-%d_%H-%M-%S")
    root, ids = write_subset(args.coco_mini, out, args.images)
    print(f"images: {ids}")
    history = train(root, out / "run", args)
    import torch

    device = (
        torch.cuda.get_device_name()
        if args.gpu
        else f"CPU ({os.cpu_count()} cores, torch threads {torch.get_num_threads()})"
    )
    return report(history, args, device)


if __name__ == "__main__":
    main()
