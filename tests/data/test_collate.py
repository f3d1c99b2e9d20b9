"""collate_samples: the batch default_collate makes, from the fast stacking path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from centerpose.data.collate import collate_samples


def _samples(n=3):
    rng = np.random.default_rng(0)
    return [
        {
            "image": rng.integers(0, 256, (8, 8, 3), dtype=np.uint8),
            "hm": rng.random((1, 4, 4), dtype=np.float32),
            "ind": np.arange(5, dtype=np.int64) + i,
            "reg_mask": np.ones(5, np.uint8),
            "strided": np.arange(12, dtype=np.float32).reshape(3, 4).T,
            "meta": {"img_id": i, "c": np.array([1.5, 2.0], np.float32), "s": 3.0},
        }
        for i in range(n)
    ]


def _assert_same(got, want):
    assert type(got) is type(want)
    if isinstance(want, dict):
        assert list(got) == list(want)
        for k in want:
            _assert_same(got[k], want[k])
    else:
        assert got.dtype == want.dtype and got.shape == want.shape
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_collate_samples_equals_default_collate():
    samples = _samples()
    _assert_same(collate_samples(samples), default_collate(samples))


@pytest.mark.filterwarnings("ignore:The given NumPy array is not writable")  # default_collate's own
def test_odd_fields_fall_back_to_default_collate():
    samples = _samples()
    samples[1]["hm"] = samples[1]["hm"].astype(np.float64)  # mixed dtypes: default_collate's promotion
    ro = samples[2]["ind"].copy()
    ro.setflags(write=False)  # read-only arrays cannot back a tensor without a copy
    samples[2]["ind"] = ro
    _assert_same(collate_samples(samples), default_collate(samples))
    assert collate_samples([1, 2]).tolist() == [1, 2]


def test_worker_path_equals_default_collate(monkeypatch):
    """Inside a DataLoader worker the arrays are stacked by torch (into shared memory), else by numpy."""
    import centerpose.data.collate as collate

    monkeypatch.setattr(collate, "get_worker_info", lambda: object())
    samples = _samples()
    _assert_same(collate.collate_samples(samples), default_collate(samples))
