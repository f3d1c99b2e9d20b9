"""Training throughput and peak memory of full steps (loader + forward + backward + optimizer).

For each model and each variant — fp32 (the original's), bf16-mixed (autocast), channels_last, and
``torch.compile`` with ``--compile`` — this runs ``--steps`` timed training steps after ``--warmup``
steps and prints images/s and peak memory side by side with fp32. Every variant starts from the same
weights and first batch; the "loss vs fp32" column is the relative difference of that first loss
from fp32's, i.e. whether the variant still computes the original's numbers.

A step is what Lightning's loop does: the DataLoader batch (uint8 path, ``num_workers``), the
module's ``on_after_batch_transfer`` (device-side photometrics), the network, ``PoseLoss``, backward
and Adam. Peak memory is ``torch.cuda.max_memory_allocated`` on CUDA, else the peak resident set
size above the level before the variant (sampled every 5 ms).

Models: ``dla34`` (DLA-34 + DCN neck, 512², coco-mini train), ``quickstart`` (the network of
``experiment=quickstart``, 256², the embedded synthetic set) and ``resnet18`` (64-wide heads,
256², the same data: the quickstart's network before it).

Usage:
    python scripts/bench_train.py [--models dla34 quickstart] [--batch 2] [--steps 3] [--device cuda]
        [--root ../shared/data/coco-mini] [--compile]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import tempfile
import threading
import time
from functools import partial
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from centerpose.config import experiment_network
from centerpose.data.coco import CocoPoseDataset
from centerpose.data.collate import collate_samples
from centerpose.data.datamodule import worker_init
from centerpose.data.synthetic import ensure_synthetic_coco
from centerpose.training.losses import PoseLoss
from centerpose.models import build_model
from centerpose.training.module import CenterPoseModule

VARIANTS = ("fp32", "bf16-mixed", "fp32+channels_last", "bf16-mixed+channels_last")


class PeakRss:
    """Peak resident set size (bytes) of this process while active, sampled by a thread."""

    def __init__(self, every: float = 0.005) -> None:
        self.every, self.peak, self._stop = every, 0, threading.Event()
        self._page = os.sysconf("SC_PAGE_SIZE")

    def rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self._page

    def __enter__(self) -> "PeakRss":
        self.base = self.peak = self.rss()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.peak = max(self.peak, self.rss())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def model_and_data(name: str, root: Path, batch: int, workers: int):
    """(network, training loader) of one benchmark model."""
    if name == "dla34":
        net = build_model("dla34")
        ds = CocoPoseDataset(
            root / "train2017",
            root / "annotations" / "person_keypoints_train2017.json",
            input_size=512,
            input_format="uint8",
            rng="per_sample",
        )
    elif name in ("quickstart", "resnet18"):
        net = experiment_network("quickstart") if name == "quickstart" else build_model("resnet18", head_conv=64)
        syn = ensure_synthetic_coco(
            Path(tempfile.gettempdir()) / "centerpose_bench_synthetic",
            num_train=64,
            num_val=16,
            image_size=[256, 256],
            seed=0,
        )
        ds = CocoPoseDataset(
            syn / "train2017",
            syn / "annotations" / "person_keypoints_train2017.json",
            input_size=256,
            input_format="uint8",
            rng="per_sample",
        )
    else:
        raise ValueError(f"unknown model {name!r}; choose dla34, quickstart or resnet18")
    loader = DataLoader(
        ds,
        batch_size=batch,
        shuffle=False,
        drop_last=True,
        num_workers=workers,
        worker_init_fn=worker_init,
        persistent_workers=workers > 0,
        collate_fn=collate_samples,
    )
    return net, loader


def to_device(batch, device):
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch.to(device, non_blocking=True) if isinstance(batch, torch.Tensor) else batch


def run_variant(
    variant: str,
    net0: torch.nn.Module,
    loader: DataLoader,
    device: torch.device,
    warmup: int,
    steps: int,
    compile_net: bool,
    budget_s: float = float("inf"),
) -> dict:
    """Images/s, peak memory and first loss of ``steps`` timed steps after ``warmup`` (fewer timed steps,
    at least one, once ``budget_s`` seconds of timed steps have passed)."""
    torch.manual_seed(0)
    net = copy.deepcopy(net0).to(device)
    module = CenterPoseModule(net=net, loss=PoseLoss(), optimizer=partial(torch.optim.Adam), lr=1.25e-4)
    channels_last = "channels_last" in variant
    if channels_last:
        net.to(memory_format=torch.channels_last)
    forward = torch.compile(net) if compile_net else net
    opt = torch.optim.Adam(net.parameters(), lr=1.25e-4)
    bf16 = variant.startswith("bf16")
    autocast = partial(torch.autocast, device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext
    it = iter(loader)

    def step() -> float:
        nonlocal it
        try:
            batch = next(it)
        except StopIteration:
            it = iter(loader)
            batch = next(it)
        batch = module.on_after_batch_transfer(to_device(batch, device), 0)
        x = batch["input"]
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast():
            outputs = forward(x)
        loss, _ = module.loss([{k: v.float() for k, v in o.items()} for o in outputs], batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss.detach())

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with PeakRss() as rss:
        first_loss = step()
        for _ in range(warmup - 1):
            step()
        sync()
        t0 = time.perf_counter()
        done = 0
        while done < steps and (done == 0 or time.perf_counter() - t0 < budget_s):
            step()
            done += 1
        sync()
        dt = time.perf_counter() - t0
    peak = (torch.cuda.max_memory_allocated(device) if device.type == "cuda" else rss.peak - rss.base) / 2**30
    return {"images_per_s": done * loader.batch_size / dt, "peak_gib": peak, "first_loss": first_loss, "steps": done}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["quickstart", "dla34"])
    shared = Path(os.environ.get("CENTERPOSE_SHARED", Path(__file__).resolve().parents[2] / "shared"))
    ap.add_argument(
        "--root",
        type=Path,
        default=shared / "data/coco-mini",
        help="coco-mini root (default: $CENTERPOSE_SHARED/data/coco-mini, else ../shared/data/coco-mini)",
    )
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, default=None, help="per-step batch (default: 32 on CUDA, 2 on CPU)")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps first (compile and cudnn tuning)")
    ap.add_argument("--workers", type=int, default=None, help="loader workers (default: 8 on CUDA, 0 on CPU)")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    ap.add_argument("--compile", action="store_true", help="also each variant with torch.compile")
    ap.add_argument(
        "--budget",
        type=float,
        default=None,
        help="seconds of timed steps per variant before it stops early (default: none on CUDA, 60 on CPU)",
    )
    args = ap.parse_args()
    device = torch.device(args.device)
    batch = args.batch or (32 if device.type == "cuda" else 2)
    workers = args.workers if args.workers is not None else (8 if device.type == "cuda" else 0)
    budget = args.budget if args.budget is not None else (float("inf") if device.type == "cuda" else 60.0)
    hw = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"CPU, {os.cpu_count()} cores, {torch.get_num_threads()} threads"
    )
    print(
        f"# {hw}; torch {torch.__version__}; batch {batch}, {args.warmup} warm-up + {args.steps} timed steps, "
        f"{workers} loader workers",
        flush=True,
    )
    for name in args.models:
        net0, loader = model_and_data(name, args.root, batch, workers)
        print(f"\n## {name}", flush=True)
        base = None
        for variant in args.variants:
            for compiled in (False, True) if args.compile else (False,):
                label = variant + ("+compile" if compiled else "")
                try:
                    r = run_variant(variant, net0, loader, device, max(args.warmup, 1), args.steps, compiled, budget)
                except Exception as e:  # e.g. compile without a working toolchain, bf16 without support
                    print(f"  {label:<34s} failed: {type(e).__name__}: {str(e).splitlines()[0][:120]}")
                    continue
                base = base or r
                dloss = abs(r["first_loss"] - base["first_loss"]) / abs(base["first_loss"])
                print(
                    f"  {label:<34s} {r['images_per_s']:8.2f} images/s  x{r['images_per_s'] / base['images_per_s']:.2f}"
                    f"   peak {r['peak_gib']:6.2f} GiB   first loss {r['first_loss']:.4f} (vs fp32 {dloss:.1e})"
                    f"   {r['steps']} timed step(s)",
                    flush=True,
                )


if __name__ == "__main__":
    main()
