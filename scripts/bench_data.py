"""The data path from file to normalised float input: per-stage cost, side by side with the original, loader sweep.

Three measurements, all on coco-mini train (the 36 annotated images), default augmentation:

1. **Stages** of one sample of centerpose's uint8 path (read, decode, annotations, geometry + warp,
   colour draws folded into the affine map, target encoding, collate, pin, the device-side
   ``on_after_batch_transfer`` on this machine: the input, and the joint heatmaps drawn from the samples' sparse
   targets), and for contrast the float path's colour + normalise.
2. **End to end, side by side in one process**: a DataLoader (batch 8, ``num_workers=0``) over
   - the original's ``multi_pose`` dataset, imported at run time from ``--original-src`` (a checkout of
     xingyizhou/CenterNet; nothing of it is copied here), default collate;
   - centerpose ``input_format="float"`` (the original's CPU float path);
   - centerpose's default: the data module's ``input_format`` (``uint8``) and ``joint_heatmaps`` (``sparse``)
     + ``CenterPoseModule.on_after_batch_transfer`` (input finished, ``hm_hp`` drawn where the batch lands);
   - the same with ``joint_heatmaps="dense"`` (each sample draws and ships its (J, O, O) ``hm_hp``);
   all with the data module's ``collate_samples``; in alternating rounds, samples/s counted from file to
   normalised float input (all rounds together, and the fastest round of each pipeline). Before timing, the
   original's and centerpose's inputs are compared for the same seeds (colour augmentation on).
3. **Loader sweep**: centerpose's default path with ``num_workers`` 0, 1, 2, ... in images/s.
4. **Decode reduction** (``--reduction-sizes``): ``decode_reduction="auto"`` against the full decode for each
   input size, same seeds: the share of samples decoded smaller, the mean / max |pixel difference| of the warped
   uint8 images (colour off) and the CPU ms per sample of both.

One core per pipeline (cv2 and torch on one thread) unless ``--threads``; on a shared machine prefer the
ratios, which come from interleaved rounds in one process.

Usage:
    python scripts/bench_data.py --original-src /path/to/CenterNet [--root ../shared/data/coco-mini]
        [--rounds 5] [--workers 0 1 2] [--reduction-sizes 512 256]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import io
import os
import random
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from centerpose.codec.device_heatmaps import finish_joint_heatmaps
from centerpose.codec.encode import encode_pose_targets
from centerpose.data.collate import collate_samples
from centerpose.data.augment import draw_train_geometry, sample_transforms, warp_image
from centerpose.data.coco import CocoPoseDataset
from centerpose.data.datamodule import CocoPoseDataModule, worker_init
from centerpose.data.photometric import finish_input, sample_input
from centerpose.data.transforms import normalize
from centerpose.training.module import CenterPoseModule

BATCH = 8
# What the data module builds its datasets with by default (the row and profile "centerpose default").
DEFAULTS = {
    name: p.default
    for name, p in inspect.signature(CocoPoseDataModule).parameters.items()
    if name in ("input_format", "joint_heatmaps")
}
clock = time.process_time  # CPU time of this process: robust to other load on a shared machine


# ------------------------------------------------------------------ the original, imported at run time
def original_dataset(original_src: Path, root: Path, split: str = "train"):
    """The original's COCO multi-pose dataset (``COCOHP`` + ``MultiPoseDataset``) with its default options.

    The original's ``src/lib`` is put on ``sys.path`` only while its modules import; its ``utils`` and
    ``datasets`` package names are then removed from ``sys.modules`` again.
    """
    lib = original_src / "src" / "lib"
    if not (lib / "datasets" / "sample" / "multi_pose.py").is_file():
        raise FileNotFoundError(
            f"{original_src}: no src/lib/datasets/sample/multi_pose.py; pass the root of a "
            "xingyizhou/CenterNet checkout"
        )
    names = ("utils", "datasets")

    def ours(k: str) -> bool:
        return k in names or k.startswith(tuple(n + "." for n in names))

    saved = {k: sys.modules.pop(k) for k in list(sys.modules) if ours(k)}
    sys.path.insert(0, str(lib))
    try:
        multi_pose = importlib.import_module("datasets.sample.multi_pose")
        coco_hp = importlib.import_module("datasets.dataset.coco_hp")
    finally:
        sys.path.remove(str(lib))
        for k in [k for k in sys.modules if ours(k)]:
            del sys.modules[k]
        sys.modules.update(saved)
    cls = type("OriginalCOCOHP", (coco_hp.COCOHP, multi_pose.MultiPoseDataset), {})
    # COCOHP reads {data_dir}/coco/...: a temporary folder with a link to the dataset root.
    data_dir = Path(tempfile.mkdtemp(prefix="centernet_data_"))
    (data_dir / "coco").symlink_to(root.resolve())
    opt = SimpleNamespace(  # the original's opts.py defaults for multi_pose
        data_dir=str(data_dir),
        not_rand_crop=False,
        scale=0.4,
        shift=0.1,
        aug_rot=0.0,
        rotate=0.0,
        flip=0.5,
        input_res=512,
        output_res=128,
        no_color_aug=False,
        mse_loss=False,
        dense_hp=False,
        hm_gauss=4,
        reg_offset=True,
        hm_hp=True,
        reg_hp_offset=True,
        debug=0,
    )
    with contextlib.redirect_stdout(io.StringIO()):
        return cls(opt, split)


def check_against_original(orig, ours: CocoPoseDataset, n: int = 4) -> float:
    """Max |input difference| of the first ``n`` train samples for the same seeds (colour on)."""
    worst = 0.0
    for i in range(n):
        np.random.seed(i)
        random.seed(i)
        want = orig[i]["input"]
        np.random.seed(i)
        random.seed(i)
        got = sample_input(ours[i])
        worst = max(worst, float(np.abs(got - want).max()))
    return worst


# ------------------------------------------------------------------ per-stage profile
def stage_profile(ds: CocoPoseDataset, module: CenterPoseModule, passes: int) -> dict[str, float]:
    """CPU seconds per sample of each stage of the uint8 path (plus the float path's colour + normalise)."""
    t: dict[str, float] = defaultdict(float)
    n = 0
    for p in range(passes):
        ds.set_epoch(p)
        samples = []
        for i in range(len(ds)):
            t0 = clock()
            data = np.fromfile(ds.image_path(i), dtype=np.uint8)
            t1 = clock()
            img = cv2.imdecode(data, cv2.IMREAD_COLOR)
            t2 = clock()
            boxes, kpts = ds.load_annotations(i)
            t3 = clock()
            h, w = img.shape[:2]
            rngs = ds.rngs_for(i)
            geo = draw_train_geometry(w, h, rngs.geometry, **ds.geometry_options)
            t_in, t_rot, t_out = sample_transforms(geo, ds.input_size, ds.output_size)
            warped = warp_image(img, geo, t_in, ds.input_size)
            t4 = clock()
            affine = ds.input_map(warped, rngs)
            t6 = clock()
            targets = encode_pose_targets(
                boxes,
                kpts,
                t_out,
                t_rot,
                flipped=geo.flipped,
                image_width=w,
                rot=geo.rot,
                output_size=ds.output_size,
                max_objs=ds.max_objs,
                keypoints_spec=ds.keypoints,
                joint_heatmaps=ds.joint_heatmaps,
            )
            targets.pop("gt_det")
            t7 = clock()
            x = warped.astype(np.float32) / 255.0
            t8 = clock()
            ds.color_transform.bind_rngs(rngs.shuffle, rngs.color)
            normalize(ds.photometric(image=x)["image"], ds.mean, ds.std)
            t9 = clock()
            samples.append(
                {
                    "image": warped,
                    "input_affine": affine,
                    **targets,
                    "meta": {"img_id": ds.ids[i], "c": geo.c, "s": float(geo.s)},
                }
            )
            for name, dt in (
                ("read file", t1 - t0),
                ("decode JPEG", t2 - t1),
                ("annotations", t3 - t2),
                ("geometry + flip + warp", t4 - t3),
                ("colour draws + fold", t6 - t4),
                ("encode targets", t7 - t6),
                ("[float path: /255]", t8 - t7),
                ("[float path: colour + normalise]", t9 - t8),
            ):
                t[name] += dt
            n += 1
        for k in range(0, len(samples) - BATCH + 1, BATCH):
            t0 = clock()
            batch = collate_samples(samples[k : k + BATCH])
            t1 = clock()
            if torch.cuda.is_available():
                batch = {key: v.pin_memory() if isinstance(v, torch.Tensor) else v for key, v in batch.items()}
            t2 = clock()
            finish_input(batch)  # the two calls of module.on_after_batch_transfer, timed apart
            t3 = clock()
            finish_joint_heatmaps(batch)
            t4 = clock()
            for name, dt in (
                ("collate", t1 - t0),
                ("pin" if torch.cuda.is_available() else "pin (no CUDA: n/a)", t2 - t1),
                ("device step: input (on this CPU)", t3 - t2),
                ("device step: draw hm_hp (on this CPU)", t4 - t3),
            ):
                t[name] += dt * len(samples) / ((len(samples) // BATCH) * BATCH)
    return {k: v / n for k, v in t.items()}


# ------------------------------------------------------------------ decode reduction
def reduction_check(image_dir: Path, ann: Path, input_size: int, passes: int = 2) -> dict[str, float]:
    """``decode_reduction`` "auto" vs "off" on the same seeded samples (colour off: the images alone)."""
    from centerpose.data.augment import SampleRngs, reduction_factor

    kw = dict(input_size=input_size, input_format="uint8", joint_heatmaps="sparse", color_aug=False)
    sets = {mode: CocoPoseDataset(image_dir, ann, decode_reduction=mode, **kw) for mode in ("off", "auto")}
    cpu = {mode: 0.0 for mode in sets}
    reduced, n, total, worst = 0, 0, 0.0, 0
    for p in range(passes):
        for i in range(len(sets["off"])):
            out = {}
            for mode, ds in sets.items():
                t0 = clock()
                out[mode] = ds.get_sample(i, SampleRngs.seeded(1000 * p + i))
                cpu[mode] += clock() - t0
            diff = np.abs(out["off"]["image"].astype(np.int16) - out["auto"]["image"])
            reduced += reduction_factor(out["off"]["meta"]["s"], input_size) > 1
            total, worst, n = total + float(diff.mean()), max(worst, int(diff.max())), n + 1
    return {
        "reduced": reduced / n,
        "mean": total / n,
        "max": worst,
        "off_ms": 1e3 * cpu["off"] / n,
        "auto_ms": 1e3 * cpu["auto"] / n,
    }


# ------------------------------------------------------------------ end to end
def loader_pass(loader: DataLoader, finish=None) -> tuple[int, float, float]:
    """(samples, wall seconds, CPU seconds of this process) of one pass, from file to the float input."""
    t0, c0 = time.perf_counter(), time.process_time()
    count = 0
    for batch in loader:
        if finish is not None:
            batch = finish(batch, 0)
        assert batch["input"].dtype == torch.float32
        count += batch["input"].shape[0]
    return count, time.perf_counter() - t0, time.process_time() - c0


def bare_module() -> CenterPoseModule:
    """A CenterPoseModule for its batch hook only (no network is run)."""
    return CenterPoseModule(net=nn.Identity(), loss=nn.Identity(), optimizer=torch.optim.SGD)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    shared = Path(os.environ.get("CENTERPOSE_SHARED", Path(__file__).resolve().parents[2] / "shared"))
    ap.add_argument(
        "--root",
        type=Path,
        default=shared / "data/coco-mini",
        help="coco-mini root (default: $CENTERPOSE_SHARED/data/coco-mini, else ../shared/data/coco-mini)",
    )
    ap.add_argument(
        "--original-src", type=Path, default=None, help="a xingyizhou/CenterNet checkout, for the side-by-side rows"
    )
    ap.add_argument("--rounds", type=int, default=5, help="alternating end-to-end rounds (one pass each)")
    ap.add_argument("--passes", type=int, default=2, help="passes of the stage profile")
    ap.add_argument("--workers", type=int, nargs="*", default=[0, 1, 2], help="loader sweep (empty: skip)")
    ap.add_argument("--threads", type=int, default=1, help="cv2 and torch threads of this process")
    ap.add_argument(
        "--reduction-sizes",
        type=int,
        nargs="*",
        default=[],
        help="input sizes of the decode_reduction check (e.g. 512 256; empty: skip)",
    )
    args = ap.parse_args()
    cv2.setNumThreads(args.threads)
    torch.set_num_threads(args.threads)
    image_dir = args.root / "train2017"
    ann = args.root / "annotations" / "person_keypoints_train2017.json"
    module = bare_module()
    print(
        f"# coco-mini train, default augmentation, batch {BATCH}; {os.cpu_count()} CPUs, "
        f"{args.threads} thread(s); torch {torch.__version__}, cv2 {cv2.__version__}"
    )

    # 1. stages
    u8 = CocoPoseDataset(image_dir, ann, rng="per_sample", **DEFAULTS)
    prof = stage_profile(u8, module, args.passes)
    path = (
        "read file",
        "decode JPEG",
        "annotations",
        "geometry + flip + warp",
        "colour draws + fold",
        "encode targets",
        "collate",
        "pin" if torch.cuda.is_available() else "pin (no CUDA: n/a)",
        "device step: input (on this CPU)",
        "device step: draw hm_hp (on this CPU)",
    )
    total = sum(prof[k] for k in path)
    print(f"\n## per-sample stages (CPU time), centerpose default {DEFAULTS} ({len(u8)} images x {args.passes} passes)")
    for k in path:
        print(f"  {k:<42s} {1e3 * prof[k]:7.2f} ms  {100 * prof[k] / total:5.1f} %")
    print(f"  {'total':<42s} {1e3 * total:7.2f} ms  ({1 / total:.1f} samples per CPU-second)")
    for k in ("[float path: /255]", "[float path: colour + normalise]"):
        print(f"  {k:<42s} {1e3 * prof[k]:7.2f} ms  (the work the uint8 path moves to the device)")

    # 2. end to end, side by side
    rows: dict[str, tuple[DataLoader, object]] = {}
    if args.original_src is not None:
        orig = original_dataset(args.original_src, args.root, "train")
        diff = check_against_original(orig, CocoPoseDataset(image_dir, ann, rng="original", input_format="uint8"))
        print(
            f"\n# parity: centerpose uint8 path vs the original, first 4 train samples, same seeds, colour on: "
            f"max |input difference| {diff:.2e}"
        )
        rows["original (multi_pose.py)"] = (DataLoader(orig, batch_size=BATCH, shuffle=True), None)
    flt = CocoPoseDataset(image_dir, ann, input_format="float")
    rows["centerpose input_format=float"] = (
        DataLoader(flt, batch_size=BATCH, shuffle=True, collate_fn=collate_samples),
        None,
    )
    if DEFAULTS["joint_heatmaps"] != "dense":  # what the sparse joint heatmaps improve on
        dense = CocoPoseDataset(image_dir, ann, **{**DEFAULTS, "joint_heatmaps": "dense"})
        rows["centerpose uint8 + dense hm_hp + device step"] = (
            DataLoader(dense, batch_size=BATCH, shuffle=True, collate_fn=collate_samples),
            module.on_after_batch_transfer,
        )
    u8o = CocoPoseDataset(image_dir, ann, **DEFAULTS)
    rows["centerpose uint8 + sparse hm_hp + device step"] = (
        DataLoader(u8o, batch_size=BATCH, shuffle=True, collate_fn=collate_samples),
        module.on_after_batch_transfer,
    )
    done: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    fastest: dict[str, float] = defaultdict(lambda: float("inf"))  # CPU seconds per sample of the best round
    for _ in range(args.rounds):
        for name, (loader, finish) in rows.items():
            n, wall, cpu = loader_pass(loader, finish)
            for k, v in enumerate((n, wall, cpu)):
                done[name][k] += v
            fastest[name] = min(fastest[name], cpu / n)
    print(
        f"\n## end to end, file -> normalised float input, one process, DataLoader batch {BATCH} num_workers=0 "
        f"({args.rounds} alternating rounds; per CPU-second = the rate of one dedicated core)"
    )
    first = next(iter(done))
    n0, wall0, cpu0 = done[first]
    for name, (n, wall, cpu) in done.items():
        print(
            f"  {name:<46s} {n / cpu:7.1f} samples per CPU-s ({1e3 * cpu / n:6.2f} ms) x{(n / cpu) / (n0 / cpu0):.2f}"
            f" | best round {1e3 * fastest[name]:6.2f} ms x{fastest[first] / fastest[name]:.2f}"
            f" | wall {n / wall:7.1f} samples/s x{(n / wall) / (n0 / wall0):.2f}"
        )
    print(
        f"  (x = vs {first}; all rounds together, then the fastest round of each, which is least disturbed by "
        "other load)"
    )

    # 3. loader sweep
    if args.workers:
        print(f"\n## DataLoader sweep, centerpose default ({DEFAULTS} + device step), batch {BATCH}")
    for workers in args.workers:
        loader = DataLoader(
            u8o,
            batch_size=BATCH,
            shuffle=True,
            num_workers=workers,
            worker_init_fn=worker_init,
            persistent_workers=workers > 0,
            collate_fn=collate_samples,
        )
        loader_pass(loader, module.on_after_batch_transfer)  # worker start-up
        n, dt = 0, 0.0
        for _ in range(args.rounds):
            m, d, _ = loader_pass(loader, module.on_after_batch_transfer)
            n, dt = n + m, dt + d
        print(f"  num_workers={workers}: {n / dt:7.1f} images/s")

    # 4. decode reduction
    if args.reduction_sizes:
        print("\n## decode_reduction='auto' vs the full decode, same seeds, colour off (warped uint8 images)")
    for size in args.reduction_sizes:
        r = reduction_check(image_dir, ann, size, args.passes)
        print(
            f"  input {size}: {100 * r['reduced']:5.1f} % of samples decoded smaller; |pixel difference| mean "
            f"{r['mean']:.2f} max {r['max']} (of 255, all samples); CPU {r['off_ms']:.2f} -> {r['auto_ms']:.2f} "
            f"ms per sample (x{r['off_ms'] / r['auto_ms']:.2f})"
        )


if __name__ == "__main__":
    main()
