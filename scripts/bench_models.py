"""Forward latency of the networks (batch 1, 512×512, ``torch.inference_mode``).

Usage:
    python scripts/bench_models.py --device cpu --threads 2
    python scripts/bench_models.py --device cuda --archs dla34 resnet50 hourglass --runs 50
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from centerpose.models import build_model


def bench(arch: str, device: torch.device, size: int, warmup: int, runs: int) -> float:
    """Median forward time in milliseconds."""
    model = build_model(arch).to(device).eval()
    x = torch.randn(1, 3, size, size, device=device)
    times = []
    with torch.inference_mode():
        for i in range(warmup + runs):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            model(x)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i >= warmup:
                times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archs", nargs="+", default=["dla34", "resnet50", "hourglass"])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    print(f"device: {name}, input 1x3x{args.size}x{args.size}, median of {args.runs} after {args.warmup} warm-up")
    for arch in args.archs:
        print(f"{arch:>12s}: {bench(arch, device, args.size, args.warmup, args.runs):8.1f} ms", flush=True)


if __name__ == "__main__":
    main()
