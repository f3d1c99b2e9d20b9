"""Measure each improved switch against the original default, one at a time and all together.

    python scripts/measure_improvements.py oracle --data ../shared/data/coco-mini
    python scripts/measure_improvements.py model --ckpt outputs/.../last.ckpt --data data/synthetic

``oracle``: COCO keypoint AP of the encode/decode oracle (ground-truth head maps, METHOD.md §3.7) on the val
split, for the switches that change it (tie_break, snap, corrected_radius). ``model``: keypoint AP of a trained
checkpoint on its val set (the original's test protocol: keep_res, flip test) for the decode switches
(tie_break, snap, fix_flip_offset) and the multi-scale merge. Prints one markdown table row per setting,
each beside the original's figure.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time

from omegaconf import OmegaConf

from centerpose.config import compose
from centerpose.evaluate import evaluate

ORACLE_SWITCHES = {
    "original (default)": {},
    "tie_break=stable": {"decode.tie_break": "stable"},
    "snap=nearest_valid": {"decode.snap": "nearest_valid"},
    "corrected_radius": {"codec.corrected_radius": True},
}
MODEL_SWITCHES = {
    "original (default)": {},
    "tie_break=stable": {"decode.tie_break": "stable"},
    "snap=nearest_valid": {"decode.snap": "nearest_valid"},
    "fix_flip_offset": {"decode.fix_flip_offset": True},
}


def _all(switches: dict) -> dict:
    merged: dict = {}
    for overrides in switches.values():
        merged.update(overrides)
    return merged


def run(base: list[str], overrides: dict) -> dict:
    cfg = compose("evaluate", base + [f"{k}={v}" for k, v in overrides.items()])
    with contextlib.redirect_stdout(io.StringIO()):
        return evaluate(cfg)


def table(rows: list[tuple[str, dict, dict, float]], what: str) -> None:
    print(f"| switch | {what} AP | Δ vs original | AP50 | AP75 | seconds |")
    print("|---|---|---|---|---|---|")
    base = rows[0][1]["AP"]
    for name, metrics, _, seconds in rows:
        print(
            f"| {name} | {metrics['AP']:.4f} | {metrics['AP'] - base:+.4f} | {metrics['AP50']:.4f} | "
            f"{metrics['AP75']:.4f} | {seconds:.0f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("oracle", "model"))
    parser.add_argument("--data", required=True, help="COCO-layout root with annotations/ and val2017/")
    parser.add_argument("--ckpt", help="checkpoint (model mode)")
    parser.add_argument("--oracle", default="all", help="oracle variant: hm | hm_hp | all")
    parser.add_argument("--out", default="/tmp/centerpose_measure")
    parser.add_argument("--scales", default="0.5,1.0,1.5", help="multi-scale merge comparison (model mode)")
    args = parser.parse_args()

    base = [f"data.root={args.data}", f"paths.output_dir={args.out}", "device=cpu"]
    if args.mode == "oracle":
        base.append(f"oracle={args.oracle}")
        switches = {**ORACLE_SWITCHES, "all together": _all(ORACLE_SWITCHES)}
    else:
        if not args.ckpt:
            parser.error("model mode needs --ckpt")
        base.append(f"ckpt_path={args.ckpt}")
        switches = {**MODEL_SWITCHES, "all together": _all(MODEL_SWITCHES)}
        scales = "[" + args.scales + "]"
        switches[f"scales {scales}, merge=original"] = {"test.scales": scales}
        switches[f"scales {scales}, merge=improved"] = {"test.scales": scales, "test.merge": "improved"}
    rows = []
    for name, overrides in switches.items():
        start = time.perf_counter()
        metrics = run(base, overrides)
        rows.append((name, metrics, overrides, time.perf_counter() - start))
        print(f"{name}: AP {metrics['AP']:.4f}", flush=True)
    print()
    table(rows, "oracle " + args.oracle if args.mode == "oracle" else "keypoint")
    print("\noverrides:", OmegaConf.to_yaml({name: o for name, _, o, _ in rows}))


if __name__ == "__main__":
    main()
