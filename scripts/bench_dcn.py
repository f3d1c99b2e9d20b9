"""CPU latency of the DCN implementations: single layers at CenterNet's DLA-up shapes and the DLA-34 forward.

For each layer shape it times forward (``torch.inference_mode``) and forward+backward of one :class:`DCN`
with ``impl="torchvision"`` and ``impl="sampling"``; then the whole ``dla34`` network forward (batch 1,
512×512) with every DCN switched to each impl. The impls are run interleaved, repeat by repeat, so a
load spike on a shared machine hits both alike; medians are printed.

Usage:
    python scripts/bench_dcn.py                       # 2 threads, 7 layer repeats, 5 network repeats
    python scripts/bench_dcn.py --threads 4 --net-runs 3
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import torch

from centerpose.models import DCN, build_model

IMPLS = ("torchvision", "sampling")
# (channels, size) of DLA-34's DCNs at 512×512 input: IDA levels at strides 4, 8, 16 (64/128/256 channels)
LAYER_SHAPES = ((256, 32), (128, 64), (64, 128))


def set_impl(model: torch.nn.Module, impl: str) -> None:
    """Switch every DCN inside ``model`` to ``impl``."""
    for m in model.modules():
        if isinstance(m, DCN):
            m.impl = impl


def interleaved_medians(fns: dict[str, Callable[[], None]], warmup: int, runs: int) -> dict[str, float]:
    """Median wall time (ms) of each callable, running them in turn each repeat."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for i in range(warmup + runs):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            if i >= warmup:
                times[name].append((time.perf_counter() - t0) * 1000)
    return {k: statistics.median(v) for k, v in times.items()}


def bench_layer(c: int, size: int, warmup: int, runs: int) -> tuple[dict[str, float], dict[str, float]]:
    """Forward and forward+backward medians (ms) of a c→c 3×3 DCN on (1, c, size, size)."""
    torch.manual_seed(0)
    dcn = DCN(c, c, 3, stride=1, padding=1)
    with torch.no_grad():  # offsets of a few pixels, as a trained layer has
        dcn.conv_offset_mask.weight.normal_(0, 0.02)
        dcn.conv_offset_mask.bias.normal_(0, 1.0)
    x = torch.randn(1, c, size, size, requires_grad=True)

    def fwd(impl: str) -> Callable[[], None]:
        def run() -> None:
            dcn.impl = impl
            with torch.inference_mode():
                dcn(x)

        return run

    def fwd_bwd(impl: str) -> Callable[[], None]:
        def run() -> None:
            dcn.impl = impl
            dcn(x).square().mean().backward()

        return run

    f = interleaved_medians({k: fwd(k) for k in IMPLS}, warmup, runs)
    fb = interleaved_medians({k: fwd_bwd(k) for k in IMPLS}, warmup, runs)
    return f, fb


def bench_network(arch: str, size: int, warmup: int, runs: int) -> tuple[dict[str, float], float]:
    """Network forward medians (ms) per impl, and the max |diff| between their outputs."""
    torch.manual_seed(0)
    model = build_model(arch).eval()
    for m in model.modules():  # non-zero offsets so the sampling really is deformable
        if isinstance(m, DCN):
            with torch.no_grad():
                m.conv_offset_mask.weight.normal_(0, 0.01)
                m.conv_offset_mask.bias.normal_(0, 1.0)
    x = torch.randn(1, 3, size, size)
    outs: dict[str, object] = {}

    def fwd(impl: str) -> Callable[[], None]:
        def run() -> None:
            set_impl(model, impl)
            with torch.inference_mode():
                outs[impl] = model(x)

        return run

    medians = interleaved_medians({k: fwd(k) for k in IMPLS}, warmup, runs)
    flat = {k: _tensors(v) for k, v in outs.items()}
    diff = max(float((a - b).abs().max()) for a, b in zip(*flat.values()))
    return medians, diff


def _tensors(obj: object) -> list[torch.Tensor]:
    """All tensors inside nested lists/tuples/dicts, in a fixed order."""
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, dict):
        return [t for k in sorted(obj) for t in _tensors(obj[k])]
    if isinstance(obj, (list, tuple)):
        return [t for o in obj for t in _tensors(o)]
    return []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--layer-runs", type=int, default=7)
    parser.add_argument("--net-runs", type=int, default=5)
    parser.add_argument("--size", type=int, default=512, help="network input size")
    parser.add_argument("--arch", default="dla34")
    parser.add_argument("--skip-net", action="store_true", help="layers only")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"cpu, {torch.get_num_threads()} threads; medians in ms ({' vs '.join(IMPLS)})")
    for c, size in LAYER_SHAPES:
        f, fb = bench_layer(c, size, warmup=1, runs=args.layer_runs)
        print(
            f"DCN 1x{c}x{size}x{size}->{c}: fwd {f['torchvision']:8.1f} -> {f['sampling']:7.1f}  "
            f"(x{f['torchvision'] / f['sampling']:.1f});  fwd+bwd {fb['torchvision']:8.1f} -> "
            f"{fb['sampling']:7.1f}  (x{fb['torchvision'] / fb['sampling']:.1f})",
            flush=True,
        )
    if not args.skip_net:
        med, diff = bench_network(args.arch, args.size, warmup=1, runs=args.net_runs)
        print(
            f"{args.arch} forward 1x3x{args.size}x{args.size}: {med['torchvision']:8.1f} -> {med['sampling']:7.1f}"
            f"  (x{med['torchvision'] / med['sampling']:.1f}); max |diff| of outputs {diff:.2e}"
        )


if __name__ == "__main__":
    main()
