"""Kill a seeded CPU training with SIGKILL mid-run, resume it (ckpt_path=auto), compare with an uninterrupted run.

    python scripts/kill_resume_check.py --workdir /tmp/kr --num-workers 0 --rng original

Prints the largest absolute difference over every tensor of the final checkpoint's state_dict and optimizer
state, and whether the metrics history (metrics.csv without the perf/ timing columns) is identical.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from centerpose.checkpoints.reader import read_checkpoint


def train_command(
    data_root: Path, run_dir: Path, num_workers: int, rng: str, epochs: int, extra: list[str]
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "centerpose.train",
        "experiment=quickstart",
        "data.synthetic=null",
        f"data.root={data_root}",
        "data.input_size=64",
        f"data.num_workers={num_workers}",
        "data.batch_size=2",
        "data.val_batch_size=2",
        f"trainer.max_epochs={epochs}",
        "trainer.check_val_every_n_epoch=2",
        "trainer.enable_progress_bar=false",
        "callbacks.rich_progress_bar=null",
        "callbacks.pose_images=null",
        "backbone=timm",
        "backbone_name=resnet18",
        f"data.train_options.rng={rng}",
        "seed=5",
        f"hydra.run.dir={run_dir}",
        *extra,
    ]


def env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline", "WANDB_SILENT": "true"}


def finished_epoch(ckpt: Path) -> int:
    try:
        return int(read_checkpoint(ckpt, mmap=True)["epoch"])
    except Exception:
        return -1


def run_killed(cmd: list[str], run_dir: Path, kill_after_epoch: int, delay: float, timeout: float) -> None:
    """Start ``cmd`` and SIGKILL it ``delay`` s after ``last.ckpt`` of epoch ``kill_after_epoch`` appears."""
    log = open(run_dir.parent / f"{run_dir.name}_killed.log", "w")
    proc = subprocess.Popen(cmd, env=env(), stdout=log, stderr=subprocess.STDOUT)
    last = run_dir / "checkpoints" / "last.ckpt"
    start = time.time()
    while proc.poll() is None and time.time() - start < timeout:
        if last.is_file() and finished_epoch(last) >= kill_after_epoch:
            time.sleep(delay)
            break
        time.sleep(0.05)
    if proc.poll() is not None:
        raise RuntimeError(f"the run ended (code {proc.returncode}) before it could be killed; see {log.name}")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def run(cmd: list[str], timeout: float) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(proc.stdout[-3000:] + proc.stderr[-3000:])
    return proc


def tensors(obj, prefix=""):
    """Every tensor and number inside a nested checkpoint structure, by path."""
    if isinstance(obj, torch.Tensor):
        yield prefix, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from tensors(v, f"{prefix}/{k}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from tensors(v, f"{prefix}/{i}")
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield prefix, torch.tensor(float(obj))


def max_abs_diff(a: Path, b: Path) -> tuple[float, int, list[str]]:
    """Largest |a - b| over state_dict and optimizer_states, the number of tensors compared, mismatched keys."""
    ca, cb = read_checkpoint(a), read_checkpoint(b)
    ta = dict(tensors({"state_dict": ca["state_dict"], "optimizer_states": ca["optimizer_states"]}))
    tb = dict(tensors({"state_dict": cb["state_dict"], "optimizer_states": cb["optimizer_states"]}))
    if ta.keys() != tb.keys():
        return float("inf"), len(ta), sorted(set(ta) ^ set(tb))
    worst, diff_keys = 0.0, []
    for k in ta:
        d = (ta[k].double() - tb[k].double()).abs().max().item() if ta[k].numel() else 0.0
        if d > 0:
            diff_keys.append(k)
        worst = max(worst, d)
    return worst, len(ta), diff_keys


def metric_rows(run_dir: Path) -> list[dict]:
    """metrics.csv rows without the wall-clock columns (perf/)."""
    with open(run_dir / "csv" / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return [{k: v for k, v in r.items() if not k.startswith("perf/")} for r in rows]


def check(
    workdir: Path,
    num_workers: int,
    rng: str,
    epochs: int = 4,
    kill_after_epoch: int = 1,
    delay: float = 0.5,
    timeout: float = 3600,
) -> dict:
    from centerpose.data.synthetic import write_synthetic_coco

    data = workdir / "data"
    if not (data / "annotations").is_dir():
        write_synthetic_coco(data, num_train=6, num_val=2, image_size=(96, 96), seed=0)
    tag = f"w{num_workers}_{rng}"
    straight, killed = workdir / f"straight_{tag}", workdir / f"killed_{tag}"
    if finished_epoch(straight / "checkpoints" / "last.ckpt") != epochs - 1:  # reuse a finished reference run
        run(train_command(data, straight, num_workers, rng, epochs, []), timeout)
    run_killed(train_command(data, killed, num_workers, rng, epochs, []), killed, kill_after_epoch, delay, timeout)
    killed_at = finished_epoch(killed / "checkpoints" / "last.ckpt")
    run(train_command(data, killed, num_workers, rng, epochs, ["ckpt_path=auto"]), timeout)
    worst, count, keys = max_abs_diff(straight / "checkpoints" / "last.ckpt", killed / "checkpoints" / "last.ckpt")
    rows_a, rows_b = metric_rows(straight), metric_rows(killed)
    return {
        "num_workers": num_workers,
        "rng": rng,
        "resumed_after_epoch": killed_at,
        "tensors": count,
        "max_abs_diff": worst,
        "differing": keys[:5],
        "metrics_rows": [len(rows_a), len(rows_b)],
        "metrics_identical": rows_a == rows_b,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/centerpose_kill_resume"))
    parser.add_argument("--num-workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--rng", nargs="+", default=["original", "per_sample"])
    parser.add_argument("--delay", type=float, default=0.5, help="seconds after the checkpoint to kill")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    for workers in args.num_workers:
        for rng in args.rng:
            print(json.dumps(check(args.workdir, workers, rng, delay=args.delay)), flush=True)


if __name__ == "__main__":
    main()
