"""Time decode + post-process (METHOD §3.2, §3.4) on random 128 x 128 head outputs.

Usage: python scripts/bench_decode.py [--device cpu|cuda] [--runs 20] [--batch 1 32] [--K 100] [--threads N]
        [--original-src /path/to/CenterNet]
Prints the median milliseconds per call for each batch size (decode, post-process, total); with
``--original-src`` (a xingyizhou/CenterNet checkout, imported at run time, nothing copied) also the original's
``multi_pose_decode`` on the same heads, its largest |difference| from ours, and the speed ratio.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import time
from pathlib import Path

import torch

from centerpose.codec.decode import decode
from centerpose.codec.postprocess import to_image_coords
from centerpose.keypoints import COCO_PERSON


def _heads(b: int, size: int, j: int, device: torch.device) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    heads = {
        "hm": torch.rand(b, 1, size, size, generator=gen),
        "wh": torch.rand(b, 2, size, size, generator=gen) * 30,
        "reg": torch.rand(b, 2, size, size, generator=gen),
        "hps": torch.randn(b, 2 * j, size, size, generator=gen) * 5,
        "hm_hp": torch.rand(b, j, size, size, generator=gen),
        "hp_offset": torch.rand(b, 2, size, size, generator=gen),
    }
    return {k: v.to(device) for k, v in heads.items()}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def original_decode(original_src: Path):
    """The original's ``models.decode.multi_pose_decode``, imported from ``src/lib`` of a checkout."""
    lib = original_src / "src" / "lib"
    if not (lib / "models" / "decode.py").is_file():
        raise FileNotFoundError(f"{original_src}: no src/lib/models/decode.py; pass a xingyizhou/CenterNet checkout")
    saved = {k: sys.modules.pop(k) for k in list(sys.modules) if k == "models" or k.startswith("models.")}
    sys.path.insert(0, str(lib))
    try:
        return importlib.import_module("models.decode").multi_pose_decode
    finally:
        sys.path.remove(str(lib))
        for k in [k for k in sys.modules if k == "models" or k.startswith("models.")]:
            del sys.modules[k]
        sys.modules.update(saved)


def _median_ms(fn, warmup: int, runs: int, device: torch.device) -> float:
    times = []
    for i in range(warmup + runs):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--K", type=int, default=100)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--tie-break", default="topk", choices=["topk", "stable"])
    parser.add_argument("--original-src", type=Path, default=None, help="side by side with the original's decode")
    args = parser.parse_args()
    orig = original_decode(args.original_src) if args.original_src is not None else None
    device = torch.device(args.device)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    print(f"device={device} threads={torch.get_num_threads()} size={args.size} K={args.K} "
          f"tie_break={args.tie_break} runs={args.runs} (median ms)")
    for b in args.batch:
        heads = _heads(b, args.size, COCO_PERSON.num_joints, device)
        c = torch.full((b, 2), 320.0, device=device)
        s = torch.full((b,), 640.0, device=device)
        dec_ms, post_ms = [], []
        with torch.inference_mode():
            for i in range(args.warmup + args.runs):
                _sync(device)
                t0 = time.perf_counter()
                dets = decode(heads, K=args.K, tie_break=args.tie_break)
                _sync(device)
                t1 = time.perf_counter()
                to_image_coords(dets, c, s, args.size).cpu()
                _sync(device)
                t2 = time.perf_counter()
                if i >= args.warmup:
                    dec_ms.append((t1 - t0) * 1e3)
                    post_ms.append((t2 - t1) * 1e3)
        d, p = statistics.median(dec_ms), statistics.median(post_ms)
        print(f"batch {b:3d}: decode {d:8.2f} ms  post {p:7.2f} ms  total {d + p:8.2f} ms  "
              f"({(d + p) / b:.2f} ms/image)")
        if orig is not None:  # the original's decode of the same heads (no post-process: it runs in numpy there)
            with torch.inference_mode():
                want = orig(heads["hm"], heads["wh"], heads["hps"], reg=heads["reg"], hm_hp=heads["hm_hp"],
                            hp_offset=heads["hp_offset"], K=args.K)
                got = decode(heads, K=args.K, tie_break=args.tie_break)
                o = _median_ms(lambda: orig(heads["hm"], heads["wh"], heads["hps"], reg=heads["reg"],
                                            hm_hp=heads["hm_hp"], hp_offset=heads["hp_offset"], K=args.K),
                               args.warmup, args.runs, device)
                ours = _median_ms(lambda: decode(heads, K=args.K, tie_break=args.tie_break), args.warmup, args.runs,
                                  device)
            diff = (got.float() - want.float()).abs().max().item() if got.shape == want.shape else float("nan")
            print(f"           original multi_pose_decode {o:8.2f} ms, ours {ours:8.2f} ms: x{o / ours:.2f} "
                  f"({o / b:.2f} vs {ours / b:.2f} ms/image); max |difference| {diff:.1e}")


if __name__ == "__main__":
    main()
