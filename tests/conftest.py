"""Shared fixtures: paths to ../shared (skipped cleanly when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CENTERPOSE_SHARED", REPO.parent / "shared"))
COCO_MINI = SHARED / "data" / "coco-mini"
GOLDEN = SHARED / "golden"
KEYS_DIR = SHARED / "docs" / "keys"


@pytest.fixture(scope="session")
def coco_mini() -> Path:
    if not (COCO_MINI / "annotations" / "person_keypoints_val2017.json").is_file():
        pytest.skip(f"coco-mini not found at {COCO_MINI}")
    return COCO_MINI


def load_golden(name: str) -> dict[str, np.ndarray]:
    path = GOLDEN / name
    if not path.is_file():
        pytest.skip(f"golden file not found: {path}")
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="session")
def golden():
    return load_golden


@pytest.fixture()
def one_torch_thread():
    """Training tests on the two shared CI cores: more torch threads than free cores is several times slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
