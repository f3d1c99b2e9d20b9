"""Time decode + post-process (METHOD §3.2, §3.4) on random 128 x 128 head outputs, side by side.

Usage: python scripts/bench_decode.py [--device cpu|cuda] [--runs 20] [--batch 1 32] [--K 100] [--threads N]
        [--original-src /path/to/CenterNet] [--previous GIT_REV]
Per batch size, prints the median milliseconds of ours (decode, post-process, total) and, interleaved in the
same loop so a busy machine slows every contender alike:
- ``--original-src`` (a xingyizhou/CenterNet checkout, imported at run time, nothing copied): the original's
  ``multi_pose_decode`` alone and with its post-process (``multi_pose_post_process``, per image, as its detector
  runs it), the ratios of ours to both, and the largest |difference| of the decoded rows;
- ``--previous REV``: this package's decode and post-process as of git revision REV (read with ``git show``).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from centerpose.codec.decode import decode
from centerpose.codec.postprocess import to_image_coords
from centerpose.keypoints import COCO_PERSON

REPO = Path(__file__).resolve().parents[1]


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


def original_functions(original_src: Path):
    """The original's ``models.decode.multi_pose_decode`` and ``utils.post_process.multi_pose_post_process``,
    imported from ``src/lib`` of a checkout."""
    lib = original_src / "src" / "lib"
    if not (lib / "models" / "decode.py").is_file():
        raise FileNotFoundError(f"{original_src}: no src/lib/models/decode.py; pass a xingyizhou/CenterNet checkout")
    names = ("models", "utils")
    saved = {k: sys.modules.pop(k) for k in list(sys.modules) if k.split(".")[0] in names}
    sys.path.insert(0, str(lib))
    try:
        dec = importlib.import_module("models.decode").multi_pose_decode
        post = importlib.import_module("utils.post_process").multi_pose_post_process
        return dec, post
    finally:
        sys.path.remove(str(lib))
        for k in [k for k in sys.modules if k.split(".")[0] in names]:
            del sys.modules[k]
        sys.modules.update(saved)


def previous_functions(rev: str):
    """This package's ``decode`` and ``to_image_coords`` at git revision ``rev`` (loaded from ``git show``)."""
    out = {}
    tmp = Path(tempfile.mkdtemp(prefix="centerpose_prev_"))
    for name in ("decode", "postprocess"):
        text = subprocess.run(
            ["git", "-C", str(REPO), "show", f"{rev}:centerpose/codec/{name}.py"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        (tmp / f"prev_{name}.py").write_text(text)
        spec = importlib.util.spec_from_file_location(f"prev_{name}", tmp / f"prev_{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        out[name] = module
    return out["decode"].decode, out["postprocess"].to_image_coords


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
    parser.add_argument("--previous", default=None, help="side by side with this package's decode at a git rev")
    args = parser.parse_args()
    orig = original_functions(args.original_src) if args.original_src is not None else None
    prev = previous_functions(args.previous) if args.previous else None
    device = torch.device(args.device)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    print(
        f"device={device} threads={torch.get_num_threads()} size={args.size} K={args.K} "
        f"tie_break={args.tie_break} runs={args.runs} (median ms per batch, contenders interleaved)"
    )
    for b in args.batch:
        heads = _heads(b, args.size, COCO_PERSON.num_joints, device)
        c = torch.full((b, 2), 320.0, device=device)
        s = torch.full((b,), 640.0, device=device)
        c_np, s_np = c.cpu().numpy(), s.cpu().numpy()

        def ours():
            dets = decode(heads, K=args.K, tie_break=args.tie_break)
            _sync(device)
            t = time.perf_counter()
            to_image_coords(dets, c, s, args.size).cpu()
            return t

        contenders = {"ours": ours}
        if prev is not None:

            def previous():
                dets = prev[0](heads, K=args.K, tie_break=args.tie_break)
                _sync(device)
                t = time.perf_counter()
                prev[1](dets, c, s, args.size).cpu()
                return t

            contenders["previous"] = previous
        if orig is not None:

            def original():
                dets = orig[0](
                    heads["hm"],
                    heads["wh"],
                    heads["hps"],
                    reg=heads["reg"],
                    hm_hp=heads["hm_hp"],
                    hp_offset=heads["hp_offset"],
                    K=args.K,
                )
                _sync(device)
                t = time.perf_counter()
                orig[1](dets.cpu().numpy(), c_np, s_np, args.size, args.size)
                return t

            contenders["original"] = original
        times = {name: ([], []) for name in contenders}  # decode ms, post ms
        with torch.inference_mode():
            for i in range(args.warmup + args.runs):
                for name, fn in contenders.items():
                    _sync(device)
                    t0 = time.perf_counter()
                    t1 = fn()
                    _sync(device)
                    t2 = time.perf_counter()
                    if i >= args.warmup:
                        times[name][0].append((t1 - t0) * 1e3)
                        times[name][1].append((t2 - t1) * 1e3)
        med = {
            name: (statistics.median(d), statistics.median(p), statistics.median(np.add(d, p)))
            for name, (d, p) in times.items()
        }
        print(f"batch {b:3d}:")
        for name, (d, p, total) in med.items():
            print(f"  {name:9s} decode {d:8.2f}  post {p:8.2f}  total {total:8.2f} ms  ({total / b:6.2f} ms/image)")
        ours_total = med["ours"][2]
        if prev is not None:
            print(f"  ours vs previous ({args.previous}): x{med['previous'][2] / ours_total:.2f} (decode + post)")
        if orig is not None:
            with torch.inference_mode():
                want = orig[0](
                    heads["hm"],
                    heads["wh"],
                    heads["hps"],
                    reg=heads["reg"],
                    hm_hp=heads["hm_hp"],
                    hp_offset=heads["hp_offset"],
                    K=args.K,
                )
                got = decode(heads, K=args.K, tie_break=args.tie_break)
            diff = (got.float() - want.float()).abs().max().item() if got.shape == want.shape else float("nan")
            print(
                f"  ours vs original: x{med['original'][0] / ours_total:.2f} vs its decode alone, "
                f"x{med['original'][2] / ours_total:.2f} vs its decode + post-process; "
                f"max |difference| of decoded rows {diff:.1e}"
            )


if __name__ == "__main__":
    main()
