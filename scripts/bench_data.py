"""Throughput of CocoPoseDataset on coco-mini, with and without augmentation, and where the time goes.

Usage: python scripts/bench_data.py [--root ../shared/data/coco-mini] [--passes 3] [--split train]
Single process; prints samples/s and the per-stage split (imread, warp, colour, encode).
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

from centerpose.codec.encode import encode_pose_targets
from centerpose.data.augment import center_geometry, draw_train_geometry, sample_transforms, warp_image
from centerpose.data.coco import CocoPoseDataset
from centerpose.data.transforms import normalize


def staged_pass(ds: CocoPoseDataset, times: dict[str, float]) -> None:
    """One pass through ``ds`` by its public stages, timing each."""
    for i in range(len(ds)):
        t0 = time.perf_counter()
        img = ds.load_image(i)
        boxes, kpts = ds.load_annotations(i)
        t1 = time.perf_counter()
        h, w = img.shape[:2]
        rngs = ds.rngs_for(i) if ds.augment else None
        geo = draw_train_geometry(w, h, rngs.geometry, **ds.geometry_options) if rngs else center_geometry(w, h)
        t_in, t_rot, t_out = sample_transforms(geo, ds.input_size, ds.output_size)
        inp = warp_image(img, geo, t_in, ds.input_size).astype(np.float32) / 255.0
        t2 = time.perf_counter()
        if rngs is not None and ds.photometric is not None:
            ds.color_transform.bind_rngs(rngs.shuffle, rngs.color)
            inp = ds.photometric(image=inp)["image"]
        inp = normalize(inp, ds.mean, ds.std)
        t3 = time.perf_counter()
        encode_pose_targets(boxes, kpts, t_out, t_rot, flipped=geo.flipped, image_width=w, rot=geo.rot,
                            output_size=ds.output_size, max_objs=ds.max_objs, keypoints_spec=ds.keypoints)
        t4 = time.perf_counter()
        for name, dt in (("imread+anns", t1 - t0), ("geometry+warp", t2 - t1), ("colour+normalise", t3 - t2),
                         ("encode", t4 - t3)):
            times[name] += dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/coco-mini")
    ap.add_argument("--split", default="train", choices=["train", "val"])
    ap.add_argument("--passes", type=int, default=3)
    args = ap.parse_args()
    cv2.setNumThreads(1)  # as in a DataLoader worker: one core per sample
    ann = args.root / "annotations" / f"person_keypoints_{args.split}2017.json"
    for augment in (False, True):
        ds = CocoPoseDataset(args.root / f"{args.split}2017", ann, train=args.split == "train", augment=augment,
                             rng="per_sample")
        ds[0]  # warm caches
        t = time.perf_counter()
        for p in range(args.passes):
            ds.set_epoch(p)
            for i in range(len(ds)):
                ds[i]
        n = args.passes * len(ds)
        dt = time.perf_counter() - t
        times: dict[str, float] = defaultdict(float)
        for p in range(args.passes):
            ds.set_epoch(p)
            staged_pass(ds, times)
        total = sum(times.values())
        split = ", ".join(f"{k} {1e3 * v / n:.2f} ms ({100 * v / total:.0f}%)" for k, v in times.items())
        print(f"{args.split} augment={augment}: {n / dt:.1f} samples/s ({1e3 * dt / n:.2f} ms/sample over {n}); {split}")


if __name__ == "__main__":
    main()
