"""PoseLoss against the original's loss (golden loss_seed0.npz) and its behaviour."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from centerpose.codec.ops import clamped_sigmoid, gather_feat
from centerpose.training.losses import (STAT_NAMES, PoseLoss, focal_loss, reg_l1_loss, reg_smooth_l1_loss,
                                        reg_weighted_l1_loss)


def _case(g: dict[str, np.ndarray], case: str) -> tuple[list[dict], dict]:
    batch = {k.split("__")[2]: torch.from_numpy(v) for k, v in g.items() if k.startswith(f"{case}__batch__")}
    stacks = sorted({k.split("__")[1] for k in g if k.startswith(f"{case}__out")})
    outs = [{k.split("__")[2]: torch.from_numpy(v) for k, v in g.items() if k.startswith(f"{case}__{s}__")}
            for s in stacks]
    return outs, batch


@pytest.mark.golden
@pytest.mark.parametrize("case", ["s1", "s2", "empty"])
def test_golden_loss(golden, case):
    g = golden("loss_seed0.npz")
    outs, batch = _case(g, case)
    loss, stats = PoseLoss()(outs if len(outs) > 1 else outs[0], batch)
    assert list(stats) == list(STAT_NAMES)
    for name in STAT_NAMES:
        np.testing.assert_allclose(float(stats[name]), float(g[f"{case}__stat__{name}"]), rtol=1e-6, atol=0)
    np.testing.assert_allclose(float(loss), float(g[f"{case}__loss"]), rtol=1e-6)


@pytest.mark.golden
def test_caller_outputs_not_mutated_and_gradients_flow(golden):
    outs, batch = _case(golden("loss_seed0.npz"), "s1")
    leaves = [{k: v.clone().requires_grad_(True) for k, v in o.items()} for o in outs]
    before = {k: v.detach().clone() for k, v in leaves[0].items()}
    loss, _ = PoseLoss()(leaves, batch)
    loss.backward()
    for k, v in leaves[0].items():
        assert torch.equal(v.detach(), before[k]), k
        assert v.grad is not None and torch.isfinite(v.grad).all(), k
        assert v.grad.abs().sum() > 0, k


@pytest.mark.golden
@pytest.mark.parametrize("kwargs, off", [
    ({"hm_hp": False}, {"hm_hp_loss", "hp_offset_loss"}),
    ({"reg_offset": False}, {"off_loss"}),
    ({"wh_weight": 0.0}, {"wh_loss"}),
    ({"off_weight": 0.0}, {"off_loss", "hp_offset_loss"}),
    ({"reg_hp_offset": False}, {"hp_offset_loss"}),
])
def test_disabled_terms_report_zero(golden, kwargs, off):
    g = golden("loss_seed0.npz")
    outs, batch = _case(g, "s1")
    loss, stats = PoseLoss(**kwargs)(outs[0], batch)
    crit = PoseLoss(**kwargs)
    for name in STAT_NAMES[1:]:
        assert isinstance(stats[name], torch.Tensor)
        if name in off:
            assert float(stats[name]) == 0.0, name
        else:
            assert float(stats[name]) == pytest.approx(float(g[f"s1__stat__{name}"]), rel=1e-6), name
    expected = (crit.hm_weight * stats["hm_loss"] + crit.wh_weight * stats["wh_loss"]
                + crit.off_weight * stats["off_loss"] + crit.hp_weight * stats["hp_loss"]
                + crit.hm_hp_weight * stats["hm_hp_loss"] + crit.off_weight * stats["hp_offset_loss"])
    assert float(loss) == pytest.approx(float(expected), rel=1e-6)


def test_focal_loss_normalisers():
    gt = torch.zeros(2, 1, 8, 8)
    gt[0, 0, 3, 3] = 1.0
    gt[0, 0, 3, 4] = 0.5
    pred = clamped_sigmoid(torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0)))
    pos = gt.eq(1).float()
    p = (torch.log(pred) * (1 - pred) ** 2 * pos).sum()
    n = (torch.log(1 - pred) * pred ** 2 * (1 - gt) ** 4 * gt.lt(1).float()).sum()
    assert torch.allclose(focal_loss(pred, gt), -(p + n) / 1)
    # No positives: the un-normalised branch (E2); "max1" reads the same.
    assert torch.allclose(focal_loss(pred[1:], gt[1:]), -(torch.log(1 - pred[1:]) * pred[1:] ** 2).sum())
    assert torch.equal(focal_loss(pred, gt, "max1"), focal_loss(pred, gt))
    per_image = focal_loss(pred, gt, "image")
    assert torch.allclose(per_image, (focal_loss(pred[:1], gt[:1]) + focal_loss(pred[1:], gt[1:])) / 2)
    with pytest.raises(ValueError, match="normalize"):
        focal_loss(pred, gt, "mean")


def test_regression_losses_and_gather():
    out = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
    ind = torch.tensor([[0, 7, 19], [4, 0, 0]])
    g = gather_feat(out, ind)
    assert g.shape == (2, 3, 3)
    assert torch.equal(g[0, 1], out[0, :, 1, 2]) and torch.equal(g[1, 0], out[1, :, 0, 4])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]], dtype=torch.uint8)
    target = g + 1.0  # error of 1 on every valid coordinate
    assert float(reg_l1_loss(out, mask, ind, target)) == pytest.approx(9 / (9 + 1e-4))
    assert float(reg_smooth_l1_loss(out, mask, ind, target)) == pytest.approx(9 * 0.5 / (3 + 1e-4))  # E3
    wmask = mask.unsqueeze(2).expand(-1, -1, 3).clone()
    wmask[0, 0, 2] = 0
    assert float(reg_weighted_l1_loss(out, wmask, ind, target)) == pytest.approx(8 / (8 + 1e-4))
    with pytest.raises(ValueError):
        PoseLoss(reg_loss="l2")


def _two_joints_in_one_cell_batch() -> dict[str, torch.Tensor]:
    """One person whose nose (4.25, 6.5) and left eye (4.75, 6.25) share output cell (4, 6) of an 8 x 8 map."""
    from centerpose.codec.encode import encode_pose_targets

    kp = np.zeros((1, 17, 3), np.float32)
    kp[0, 0], kp[0, 1], kp[0, 11] = (4.25, 6.5, 2), (4.75, 6.25, 2), (3.5, 3.5, 2)
    eye = np.eye(2, 3, dtype=np.float32)
    t = encode_pose_targets(np.float32([[1, 1, 7, 7]]), kp, eye, eye, output_size=8, max_objs=2)
    return {k: torch.from_numpy(v).unsqueeze(0) for k, v in t.items() if k != "gt_det"}


def test_per_joint_offsets_read_each_slots_own_joint():
    batch = _two_joints_in_one_cell_batch()
    gen = torch.Generator().manual_seed(0)
    shared = {"hm": torch.randn(1, 1, 8, 8, generator=gen), "wh": torch.randn(1, 2, 8, 8, generator=gen),
              "reg": torch.randn(1, 2, 8, 8, generator=gen), "hps": torch.randn(1, 34, 8, 8, generator=gen),
              "hm_hp": torch.randn(1, 17, 8, 8, generator=gen), "hp_offset": torch.rand(1, 2, 8, 8, generator=gen)}
    # every joint's pair a copy of the shared map: the same loss
    copies = dict(shared, hp_offset=shared["hp_offset"].repeat(1, 17, 1, 1))
    _, a = PoseLoss()(shared, batch)
    _, b = PoseLoss()(copies, batch)
    assert float(b["hp_offset_loss"]) == pytest.approx(float(a["hp_offset_loss"]), rel=1e-6)
    # each joint's own pair set to its target: zero loss, which one shared pair cannot reach for the two
    exact = torch.zeros(1, 34, 8, 8)
    for j, (x, y) in {0: (4.25, 6.5), 1: (4.75, 6.25), 11: (3.5, 3.5)}.items():
        exact[0, 2 * j:2 * j + 2, int(y), int(x)] = torch.tensor([x % 1, y % 1])
    _, c = PoseLoss()(dict(shared, hp_offset=exact), batch)
    assert float(c["hp_offset_loss"]) == 0.0
    best_shared = shared["hp_offset"].clone()
    best_shared[0, :, 6, 4] = torch.tensor([0.5, 0.375])  # the midpoint of the nose's and the eye's offsets
    best_shared[0, :, 3, 3] = 0.5
    _, d = PoseLoss()(dict(shared, hp_offset=best_shared), batch)
    assert float(d["hp_offset_loss"]) > 0.05
