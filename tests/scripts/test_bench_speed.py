"""scripts/bench_speed.py runs end to end (tiny sizes) and prints its one table of three figures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_speed.py"


def test_bench_speed_prints_three_figures(coco_mini):
    env = {k: v for k, v in os.environ.items() if k != "CENTERNET_REPO"}  # the package's own baselines
    out = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--root",
            str(coco_mini),
            "--rounds",
            "1",
            "--data-limit",
            "8",
            "--decode-batch",
            "2",
            "--decode-runs",
            "1",
            "--forward-size",
            "64",
            "--forward-runs",
            "1",
            "--threads",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert "CENTERNET_REPO not set" in out.stdout
    for figure in ("data loader", "decode + post-process", "DLA-34 forward"):
        row = next(line for line in lines if line.startswith(figure))
        assert row.split()[-1] != "nan" and "x" in row, row
