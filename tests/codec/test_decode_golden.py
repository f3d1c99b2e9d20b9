"""Decode, flip merge and post-process against the original's outputs (golden decode_seed0.npz)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from centerpose.codec.decode import decode, sigmoid_outputs
from centerpose.codec.flip import flip_merge
from centerpose.codec.postprocess import to_image_coords

pytestmark = pytest.mark.golden


@pytest.fixture(scope="module")
def g(golden):
    return golden("decode_seed0.npz")


def _heads(g, prefix):
    return {k[len(prefix):]: torch.from_numpy(v) for k, v in g.items() if k.startswith(prefix)}


def test_decode_and_postprocess(g):
    dets = decode(sigmoid_outputs(_heads(g, "raw_")), K=int(g["K"]))
    assert dets.shape == g["dets"].shape and dets.dtype == torch.float32
    np.testing.assert_allclose(dets.numpy(), g["dets"], rtol=0, atol=1e-5)
    res = to_image_coords(dets, torch.from_numpy(g["c"]), torch.from_numpy(g["s"]),
                          (int(g["out_h"]), int(g["out_w"])))
    assert res.shape == g["results"].shape
    np.testing.assert_allclose(res.numpy(), g["results"], rtol=0, atol=1e-5)


def test_flip_merge_decode_and_postprocess(g):
    merged = flip_merge(sigmoid_outputs(_heads(g, "flip_raw_")))
    dets = decode(merged, K=int(g["K"]))
    np.testing.assert_allclose(dets.numpy(), g["flip_dets"], rtol=0, atol=1e-5)
    res = to_image_coords(dets, torch.from_numpy(g["c"][:1]), torch.from_numpy(g["s"][:1]), int(g["out_h"]))
    np.testing.assert_allclose(res.numpy(), g["flip_results"], rtol=0, atol=1e-5)


def test_golden_decode_snaps_some_joints(g):
    """The golden case exercises both snapped and regressed joints (else the comparison proves little)."""
    heads = sigmoid_outputs(_heads(g, "raw_"))
    no_snap = decode({k: v for k, v in heads.items() if k != "hm_hp"}, K=int(g["K"]))
    changed = (no_snap[..., 5:39] != torch.from_numpy(g["dets"])[..., 5:39]).float().mean()
    assert 0.0 < float(changed) < 1.0
