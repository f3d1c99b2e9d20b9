"""scripts/gpu_acceptance.py --smoke: every row runs (or says why not) at tiny sizes, in one table, without hanging."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gpu_acceptance.py"
ROWS = (
    "train fp32",
    "train bf16-mixed",
    "train bf16-mixed + channels_last",
    "train fp32 + torch.compile",
    "loader, N workers",
    "flip test",
    "ONNX onnxruntime CPU",
    "ONNX onnxruntime CUDA",
    "DDP torchrun x1",
    "ONNX onnxruntime TensorRT",
)


def test_smoke_mode_prints_every_row_and_exits_zero(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--cpu"],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
        env=env,
    )
    table = [line for line in proc.stdout.splitlines() if line.startswith("| ")]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for name in ROWS:
        row = next((line for line in table if line.startswith(f"| {name}")), None)
        assert row is not None, (name, proc.stdout)
        assert "FAILED" not in row, row
    no_cuda = [line for line in table if "ONNX onnxruntime CUDA" in line or "TensorRT" in line]
    assert all("skipped" in line for line in no_cuda), no_cuda
    assert "none failed" in proc.stdout


def test_a_failing_row_is_reported_and_the_exit_code_says_so(tmp_path):
    # A data root without images: the training row fails in the table, the script still finishes, exit 1.
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "person_keypoints_train2017.json").write_text("{}")
    (tmp_path / "train2017").mkdir()
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--cpu", "--root", str(tmp_path), "--rows", "train fp32"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr[-2000:]
    row = next(line for line in proc.stdout.splitlines() if line.startswith("| train fp32 "))
    assert "FAILED" in row
