"""Three speed figures side by side with a baseline, in one table: data loader, decode + post-process, DLA-34 forward.

Baselines: the original (xingyizhou/CenterNet) when ``CENTERNET_REPO`` (or ``--original-src``) points at a
checkout, imported at run time (nothing of it is copied here); otherwise the package's own original-equivalent
path, named in the table:

1. **data** — images/s from file to the normalised float input, coco-mini train, default augmentation, DataLoader
   batch 8, ``num_workers=0``, cv2 and torch on one thread, alternating rounds in one process, CPU time of this
   process (:mod:`scripts.bench_data`'s loaders): ours = the data module's defaults + the module's
   ``on_after_batch_transfer``; baseline = the original's ``multi_pose`` dataset, else ``input_format="float"`` +
   dense ``hm_hp`` (the original's CPU float path re-implemented here).
2. **decode** — ms per image of decode + post-process to image coordinates at batch 32, K = 100, on
   :mod:`scripts.bench_decode`'s random 128 × 128 heads: ours = ``decode`` + ``to_image_coords``; baseline = the
   original's ``multi_pose_decode`` + ``multi_pose_post_process`` (its detector's numpy post-process), else our
   decode run image by image (batch 1, 32 times).
3. **forward** — DLA-34 (with DCN) forward ms, batch 1, 512², ``torch.inference_mode``: ours = the default DCN
   implementation for the device; baseline = the original's ``DLASeg`` when its DCNv2 extension is built, else our
   network with every DCN on ``torchvision.ops.deform_conv2d`` (what DCNv2 computes; :mod:`scripts.bench_dcn`).

On a shared machine the ratios (interleaved in one process) mean more than the absolute figures.

Usage:
    CENTERNET_REPO=/path/to/CenterNet python scripts/bench_speed.py [--root ../shared/data/coco-mini]
    python scripts/bench_speed.py --rounds 1 --decode-batch 2 --forward-size 64   # a quick check
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling bench scripts, imported for reuse
import bench_data  # noqa: E402
import bench_dcn  # noqa: E402
import bench_decode  # noqa: E402

from centerpose.codec.decode import decode  # noqa: E402
from centerpose.codec.postprocess import to_image_coords  # noqa: E402
from centerpose.data.coco import CocoPoseDataset  # noqa: E402
from centerpose.data.collate import collate_samples  # noqa: E402
from centerpose.keypoints import COCO_PERSON  # noqa: E402

BATCH = bench_data.BATCH


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (else platform's guess)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


@contextlib.contextmanager
def original_modules(src: Path, names: tuple[str, ...]):
    """Put the original's ``src/lib`` on ``sys.path`` while its modules import; afterwards its top-level package
    names (``names``) are taken out of ``sys.modules`` again and ours restored."""
    lib = src / "src" / "lib"

    def theirs(k: str) -> bool:
        return k in names or k.startswith(tuple(n + "." for n in names))

    saved = {k: sys.modules.pop(k) for k in list(sys.modules) if theirs(k)}
    sys.path.insert(0, str(lib))
    try:
        yield
    finally:
        sys.path.remove(str(lib))
        for k in [k for k in sys.modules if theirs(k)]:
            del sys.modules[k]
        sys.modules.update(saved)


# ------------------------------------------------------------------ 1. data
def bench_loader(root: Path, original_src: Path | None, rounds: int, limit: int | None) -> dict[str, object]:
    """Images per CPU-second of ours and the baseline, alternating rounds (one pass each) in this process."""
    image_dir, ann = root / "train2017", root / "annotations" / "person_keypoints_train2017.json"
    module = bench_data.bare_module()
    ours_set = CocoPoseDataset(image_dir, ann, **bench_data.DEFAULTS)
    if original_src is not None:
        base_set, base_name, base_collate = (
            bench_data.original_dataset(original_src, root),
            "original multi_pose.py",
            None,
        )
    else:
        base_set = CocoPoseDataset(image_dir, ann, input_format="float", joint_heatmaps="dense")
        base_name, base_collate = "centerpose input_format=float + dense hm_hp", collate_samples
    subset = (lambda ds: torch.utils.data.Subset(ds, range(min(limit, len(ds))))) if limit else (lambda ds: ds)
    loaders = {
        "ours": (
            DataLoader(subset(ours_set), batch_size=BATCH, shuffle=True, collate_fn=collate_samples),
            module.on_after_batch_transfer,
        ),
        "base": (
            DataLoader(
                subset(base_set),
                batch_size=BATCH,
                shuffle=True,
                **({"collate_fn": base_collate} if base_collate else {}),
            ),
            None,
        ),
    }
    best = {k: float("inf") for k in loaders}
    totals = {k: [0, 0.0] for k in loaders}
    for _ in range(rounds):
        for k, (loader, finish) in loaders.items():
            n, _, cpu = bench_data.loader_pass(loader, finish)
            totals[k][0] += n
            totals[k][1] += cpu
            best[k] = min(best[k], cpu / n)
    rate = {k: n / cpu for k, (n, cpu) in totals.items()}
    return {
        "ours": rate["ours"],
        "base": rate["base"],
        "base_name": base_name,
        "unit": "images/s (one core)",
        "higher": True,
        "note": f"best rounds x{best['base'] / best['ours']:.2f}",
    }


# ------------------------------------------------------------------ 2. decode + post-process
def original_post_process(original_src: Path) -> Callable:
    """The original's ``utils.post_process.multi_pose_post_process`` (its detector's numpy post-process)."""
    with original_modules(original_src, ("utils",)):
        return importlib.import_module("utils.post_process").multi_pose_post_process


def interleaved_ms(fns: dict[str, Callable[[], object]], warmup: int, runs: int) -> dict[str, float]:
    """Median wall ms of each callable, run in turn each repeat (a load spike hits all alike)."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for i in range(warmup + runs):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            if i >= warmup:
                times[k].append((time.perf_counter() - t0) * 1e3)
    return {k: statistics.median(v) for k, v in times.items()}


def bench_decode_post(original_src: Path | None, batch: int, K: int, runs: int) -> dict[str, object]:
    """ms per image of decode + post-process, ours and the baseline, on the same random heads."""
    size = 128
    heads = bench_decode._heads(batch, size, COCO_PERSON.num_joints, torch.device("cpu"))
    c = torch.full((batch, 2), 320.0)
    s = torch.full((batch,), 640.0)

    def ours() -> None:
        to_image_coords(decode(heads, K=K), c, s, size)

    if original_src is not None:
        orig_decode = bench_decode.original_decode(original_src)
        post = original_post_process(original_src)
        cs, ss = [np.array([320.0, 320.0], np.float32)] * batch, [640.0] * batch

        def base() -> None:  # MultiPoseDetector.process's decode, then post_process's numpy per image
            dets = orig_decode(
                heads["hm"],
                heads["wh"],
                heads["hps"],
                reg=heads["reg"],
                hm_hp=heads["hm_hp"],
                hp_offset=heads["hp_offset"],
                K=K,
            )
            dets = dets.detach().cpu().numpy()
            out = post(dets.copy(), cs, ss, size, size)
            [np.array(o[1], dtype=np.float32).reshape(-1, 39) for o in out]

        base_name = "original multi_pose_decode + multi_pose_post_process"
    else:
        one = [({k: v[i : i + 1] for k, v in heads.items()}, c[i : i + 1], s[i : i + 1]) for i in range(batch)]

        def base() -> None:
            for h, ci, si in one:
                to_image_coords(decode(h, K=K), ci, si, size)

        base_name = "centerpose decode, image by image (batch 1)"
    with torch.inference_mode():
        ms = interleaved_ms({"ours": ours, "base": base}, warmup=1, runs=runs)
    return {
        "ours": ms["ours"] / batch,
        "base": ms["base"] / batch,
        "base_name": base_name,
        "unit": f"ms/image (batch {batch}, K={K})",
        "higher": False,
        "note": "",
    }


# ------------------------------------------------------------------ 3. DLA-34 forward
def original_dla34(original_src: Path) -> torch.nn.Module:
    """The original's DLA-34 ``DLASeg`` with the multi-pose heads (needs its compiled DCNv2; no download)."""
    with original_modules(original_src, ("models",)):
        net = importlib.import_module("models.networks.pose_dla_dcn")
        heads = {"hm": 1, "wh": 2, "hps": 34, "reg": 2, "hm_hp": 17, "hp_offset": 2}
        return net.DLASeg(
            "dla34", heads, pretrained=False, down_ratio=4, final_kernel=1, last_level=5, head_conv=256
        ).eval()


def bench_forward(original_src: Path | None, size: int, runs: int) -> dict[str, object]:
    """DLA-34 forward ms, ours and the baseline (interleaved)."""
    note = ""
    if original_src is not None:
        try:
            theirs = original_dla34(original_src)
        except Exception as e:  # DCNv2's C extension is rarely built: fall back, and say why
            theirs, note = None, f"original DLA-34 not importable ({type(e).__name__}: {str(e).splitlines()[0][:60]})"
        if theirs is not None:
            from centerpose.models import build_model

            ours_net = build_model("dla34").eval()
            x = torch.randn(1, 3, size, size)
            with torch.inference_mode():
                ms = interleaved_ms({"ours": lambda: ours_net(x), "base": lambda: theirs(x)}, warmup=1, runs=runs)
            return {
                "ours": ms["ours"],
                "base": ms["base"],
                "base_name": "original DLASeg (DCNv2)",
                "unit": f"ms (batch 1, {size}^2)",
                "higher": False,
                "note": note,
            }
    med, diff = bench_dcn.bench_network("dla34", size, warmup=1, runs=runs)
    note = "; ".join(x for x in (note, f"outputs equal within {diff:.1e}") if x)
    return {
        "ours": med["sampling"],
        "base": med["torchvision"],
        "base_name": "centerpose DLA-34, DCN on torchvision deform_conv2d",
        "unit": f"ms (batch 1, {size}^2)",
        "higher": False,
        "note": note,
    }


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    shared = Path(os.environ.get("CENTERPOSE_SHARED", Path(__file__).resolve().parents[2] / "shared"))
    ap.add_argument("--root", type=Path, default=shared / "data/coco-mini", help="coco-mini root")
    ap.add_argument(
        "--original-src",
        type=Path,
        default=os.environ.get("CENTERNET_REPO") or None,
        help="a xingyizhou/CenterNet checkout (default: $CENTERNET_REPO)",
    )
    ap.add_argument("--rounds", type=int, default=5, help="alternating loader rounds")
    ap.add_argument("--data-limit", type=int, default=None, help="first N train images only")
    ap.add_argument("--decode-batch", type=int, default=32)
    ap.add_argument("--K", type=int, default=100)
    ap.add_argument("--decode-runs", type=int, default=5)
    ap.add_argument("--forward-size", type=int, default=512)
    ap.add_argument("--forward-runs", type=int, default=3)
    ap.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count() or 1,
        help="torch threads of the decode and forward figures (the loader always runs on one)",
    )
    args = ap.parse_args()
    src = Path(args.original_src) if args.original_src else None
    rows = []
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    rows.append(("data loader", bench_loader(args.root, src, args.rounds, args.data_limit)))
    torch.set_num_threads(args.threads)
    rows.append(("decode + post-process", bench_decode_post(src, args.decode_batch, args.K, args.decode_runs)))
    rows.append(("DLA-34 forward", bench_forward(src, args.forward_size, args.forward_runs)))

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"# {cpu_name()}, {os.cpu_count()} CPUs; loader 1 thread, decode/forward {args.threads} torch thread(s); "
        f"torch {torch.__version__}, cv2 {cv2.__version__}; load average {load:.1f} at the end"
    )
    print(f"# baseline: {'the original at ' + str(src) if src else 'CENTERNET_REPO not set: the package own paths'}")
    print(f"{'figure':<22} {'unit':<28} {'ours':>9} {'baseline':>9} {'speed-up':>8}  baseline / note")
    for name, r in rows:
        speedup = r["ours"] / r["base"] if r["higher"] else r["base"] / r["ours"]
        note = f" ({r['note']})" if r["note"] else ""
        print(f"{name:<22} {r['unit']:<28} {r['ours']:9.2f} {r['base']:9.2f} {speedup:7.2f}x  {r['base_name']}{note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
