"""Shared by the export tests: random-weight checkpoints with spread scores, and comparing people."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from hydra.utils import instantiate

from centerpose.config import compose


@torch.no_grad()
def spread_scores(net: torch.nn.Module, seed: int = 0) -> None:
    """Make a random-init net look trained enough to compare decodes.

    A fresh net's heatmaps are all ≈ sigmoid(−2.19) ≈ 0.1006, so scores tie to within float noise and
    joints sit on the 0.1 snapping threshold; scaling the last conv of ``hm``/``hm_hp`` spreads them. The
    DCN offset convs start at zero (a DCN is then a plain conv): random ones make them really deform.
    """
    from centerpose.models.dcn import DCN

    g = torch.Generator().manual_seed(seed)
    for name in ("hm", "hm_hp"):
        head = getattr(net.heads, name, None)
        stacks = head if isinstance(head, torch.nn.ModuleList) else [head] if head is not None else []
        for h in stacks:
            last = [m for m in h.modules() if isinstance(m, torch.nn.Conv2d)][-1]
            last.weight.mul_(40.0)
    for m in net.modules():
        if isinstance(m, DCN):
            w = m.conv_offset_mask.weight
            w.copy_(torch.randn(w.shape, generator=g) * 0.02)


def make_checkpoint(path: Path, overrides: list[str]) -> Path:
    """A centerpose checkpoint (state dict + centerpose_config) of a random-init net from train overrides."""
    from centerpose.config import resolved_config

    torch.manual_seed(0)
    config = resolved_config(compose("train", ["paths.output_dir=.", *overrides]))
    net = instantiate(config["model"]["net"])
    spread_scores(net)
    torch.save({"state_dict": {f"net.{k}": v for k, v in net.state_dict().items()}, "centerpose_config": config}, path)
    return path


def assert_same_people(got: np.ndarray, want: np.ndarray, atol: float = 1e-3, score_atol: float = 1e-5) -> None:
    """Rows ``[box 4, score, coordinates ...]`` (N, D): equal scores, and each row's coordinates within
    ``atol`` of a row with the same score (people whose scores tie may come in either order; the tie group
    at the top-K cut-off is not compared)."""
    assert got.shape == want.shape, (got.shape, want.shape)
    np.testing.assert_allclose(got[:, 4], want[:, 4], atol=score_atol, rtol=0)
    coords = lambda r: np.concatenate([r[:, :4], r[:, 5:]], axis=1)  # noqa: E731
    g, w = coords(got), coords(want)
    cutoff = want[:, 4].min()
    for i in range(len(got)):
        if abs(got[i, 4] - cutoff) <= score_atol:
            # A group of (float-noise) ties that the top-K cut splits may keep different members in each
            # runtime: a random-init net has many cells with exactly the bias's score.
            continue
        tied = np.flatnonzero(np.abs(want[:, 4] - got[i, 4]) <= score_atol)
        err = np.abs(w[tied] - g[i]).max(axis=1).min()
        assert err <= atol, f"person {i} (score {got[i, 4]:.6f}): closest equal-score person differs by {err:.3g}"
