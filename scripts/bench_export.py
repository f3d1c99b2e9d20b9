"""Per-image latency of an exported model: PyTorch eager vs onnxruntime, batch 1, side by side.

Each network (random weights: latency does not depend on them) is exported to ONNX (raw heads, fixed
size) in a temporary folder, then PyTorch eager and every onnxruntime provider run the same input in
interleaved rounds, so that load from other processes hits both alike. Rows for onnxruntime-CUDA and
TensorRT fp16 (onnxruntime's TensorRT provider) run when the providers and a GPU are present, else they
print "not yet measured".

Usage:
    python scripts/bench_export.py --threads 2
    python scripts/bench_export.py --models quickstart --runs 20
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Callable

import torch

from centerpose.config import experiment_network
from centerpose.export import export_onnx
from centerpose.models import build_model

#: name -> (network builder, input side): DLA-34 and ResNet-50 at the zoo's 512, the quickstart's network
#: (as configs/experiment/quickstart.yaml builds it) at 256, and the ResNet-18 the quickstart used before it.
MODELS = {
    "dla34": (partial(build_model, "dla34"), 512),
    "resnet50": (partial(build_model, "res_50"), 512),
    "quickstart": (partial(experiment_network, "quickstart"), 256),
    "resnet18": (partial(build_model, "resnet18", head_conv=64), 256),
}


def ort_session(path: Path, provider: str, threads: int | None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    providers: list = [provider]
    if provider == "TensorrtExecutionProvider":
        providers = [(provider, {"trt_fp16_enable": True}), "CUDAExecutionProvider"]
    return ort.InferenceSession(str(path), options, providers=providers)


def interleaved(runners: dict[str, Callable[[], object]], warmup: int, runs: int) -> dict[str, float]:
    """Median ms per runner; one call of each per round."""
    times: dict[str, list[float]] = {k: [] for k in runners}
    for i in range(warmup + runs):
        for name, fn in runners.items():
            t0 = time.perf_counter()
            fn()
            if i >= warmup:
                times[name].append((time.perf_counter() - t0) * 1000)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--threads", type=int, default=None, help="torch and onnxruntime CPU threads")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    import onnxruntime as ort

    if args.threads:
        torch.set_num_threads(args.threads)
    available = ort.get_available_providers()
    gpu = torch.cuda.is_available()
    print(
        f"torch {torch.__version__}, onnxruntime {ort.__version__}, CPU threads {torch.get_num_threads()}, "
        f"GPU: {torch.cuda.get_device_name() if gpu else 'none'}; batch 1, median of {args.runs} interleaved "
        f"rounds after {args.warmup}"
    )
    print("| model | input | PyTorch eager CPU | onnxruntime CPU | ratio | onnxruntime CUDA | TensorRT fp16 |")
    print("|---|---|---|---|---|---|---|")
    for name in args.models:
        build, side = MODELS[name]
        torch.manual_seed(0)
        net = build().eval()
        x = torch.randn(1, 3, side, side)
        with tempfile.TemporaryDirectory() as tmp:
            path = export_onnx(net, Path(tmp) / f"{name}.onnx", input_hw=(side, side), check=False)
            cpu = ort_session(path, "CPUExecutionProvider", args.threads)
            feed = {"image": x.numpy()}

            def eager() -> None:
                with torch.inference_mode():
                    net(x)

            ms = interleaved({"eager": eager, "ort": lambda: cpu.run(None, feed)}, args.warmup, args.runs)
            gpu_cells = []
            for provider in ("CUDAExecutionProvider", "TensorrtExecutionProvider"):
                if gpu and provider in available:
                    session = ort_session(path, provider, None)
                    run = interleaved({"gpu": lambda: session.run(None, feed)}, args.warmup, args.runs)
                    gpu_cells.append(f"{run['gpu']:.1f} ms")
                else:
                    gpu_cells.append("not yet measured")
        print(
            f"| {name} | {side}² | {ms['eager']:.1f} ms | {ms['ort']:.1f} ms | {ms['eager'] / ms['ort']:.2f}× "
            f"| {gpu_cells[0]} | {gpu_cells[1]} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
