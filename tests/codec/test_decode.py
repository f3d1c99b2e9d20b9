"""Decoding, snapping rule, flip merge and post-process behaviour on handmade inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from centerpose.codec.decode import decode, heatmap_nms, sigmoid_outputs, topk_detections
from centerpose.codec.flip import flip_merge
from centerpose.codec.postprocess import split_results, to_image_coords
from centerpose.keypoints import COCO_PERSON, KeypointSpec

H = W = 32


def _heads(b: int = 1, j: int = 17, seed: int = 0, h: int = H, w: int = W) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {
        "hm": torch.rand(b, 1, h, w, generator=gen) * 0.05,
        "wh": torch.rand(b, 2, h, w, generator=gen) * 10 + 2,
        "reg": torch.rand(b, 2, h, w, generator=gen),
        "hps": torch.randn(b, 2 * j, h, w, generator=gen),
        "hm_hp": torch.rand(b, j, h, w, generator=gen) * 0.05,
        "hp_offset": torch.rand(b, 2, h, w, generator=gen),
    }


def _one_person(cand_score: float, cand_xy: tuple[int, int], wh=(10.0, 10.0), j: int = 1):
    """One detection at cell (10, 10) with joint 0 regressed to (12, 10) and one candidate at cand_xy."""
    heads = {k: torch.zeros_like(v) for k, v in _heads(j=j).items()}
    heads["hm"][0, 0, 10, 10] = 0.9
    heads["wh"][0, 0, 10, 10], heads["wh"][0, 1, 10, 10] = wh
    heads["hps"][0, 0, 10, 10] = 2.0
    heads["hm_hp"][0, 0, cand_xy[1], cand_xy[0]] = cand_score
    return heads


def _joint0(dets: torch.Tensor) -> tuple[float, float]:
    return float(dets[0, 0, 5]), float(dets[0, 0, 6])


def test_layout_and_regression_from_integer_cell():
    heads = {k: torch.zeros_like(v) for k, v in _heads().items()}
    del heads["hm_hp"]
    heads["hm"][0, 0, 5, 7] = 0.8
    heads["reg"][0, :, 5, 7] = torch.tensor([0.25, 0.5])
    heads["wh"][0, :, 5, 7] = torch.tensor([4.0, 6.0])
    heads["hps"][0, 2:4, 5, 7] = torch.tensor([1.5, -2.0])  # joint 1
    dets = decode(heads, K=3)
    assert dets.shape == (1, 3, 40)
    top = dets[0, 0]
    assert float(top[4]) == pytest.approx(0.8)
    assert top[:4].tolist() == pytest.approx([7.25 - 2, 5.5 - 3, 7.25 + 2, 5.5 + 3])
    assert top[7:9].tolist() == pytest.approx([8.5, 3.0])  # cell (7, 5) + offset, not the refined centre
    assert float(top[39]) == 0.0
    no_reg = decode({k: v for k, v in heads.items() if k != "reg"}, K=3)
    assert no_reg[0, 0, :4].tolist() == pytest.approx([7.5 - 2, 5.5 - 3, 7.5 + 2, 5.5 + 3])


def test_nms_keeps_plateaus_and_local_maxima():
    heat = torch.zeros(1, 1, 5, 5)
    heat[0, 0, 1, 1] = heat[0, 0, 1, 2] = 0.5  # plateau: both survive
    heat[0, 0, 3, 3] = 0.7
    heat[0, 0, 3, 4] = 0.6  # suppressed by its 0.7 neighbour
    kept = heatmap_nms(heat)
    assert kept[0, 0, 1, 1] == 0.5 and kept[0, 0, 1, 2] == 0.5 and kept[0, 0, 3, 4] == 0


def test_snaps_to_a_valid_candidate():
    dets = decode(_one_person(0.5, (13, 11), j=1), K=5)
    assert _joint0(dets) == pytest.approx((13.0, 11.0))  # cell + hp_offset 0


@pytest.mark.parametrize(
    "score, xy, why",
    [
        (0.1, (13, 11), "score exactly 0.1 is not a candidate"),
        (0.5, (16, 10), "outside the box (x2 = 15.5)"),
    ],
)
def test_snap_rejections(score, xy, why):
    dets = decode(_one_person(score, xy), K=5)
    assert _joint0(dets) == pytest.approx((12.0, 10.0)), why


def test_snap_rejects_far_candidate_inside_box():
    # Box 30 x 30 wide → limit 9 cells; candidate 10 cells from the regressed joint, inside the box.
    heads = _one_person(0.5, (22, 10), wh=(30.0, 30.0))
    assert _joint0(decode(heads, K=5)) == pytest.approx((12.0, 10.0))
    heads = _one_person(0.5, (20, 10), wh=(30.0, 30.0))  # 8 cells: accepted
    assert _joint0(decode(heads, K=5)) == pytest.approx((20.0, 10.0))


def test_only_nearest_candidate_is_tested_unless_improved():
    # Box x in [3, 17], limit 0.3 * 30 = 9 cells; regressed joint at (12, 10).
    heads = _one_person(0.5, (18, 10), wh=(14.0, 30.0))  # nearest (6 cells), outside the box
    heads["hm_hp"][0, 0, 10, 5] = 0.5  # farther (7 cells) but valid
    assert _joint0(decode(heads, K=5)) == pytest.approx((12.0, 10.0))  # E9
    assert _joint0(decode(heads, K=5, snap="nearest_valid")) == pytest.approx((5.0, 10.0))


def test_weighted_snap_prefers_a_strong_peak_over_a_weak_nearer_one():
    # Box 30 x 30 → limit 9 cells, proximity sigma 7.5; regressed joint at (12, 10).
    heads = _one_person(0.15, (13, 10), wh=(30.0, 30.0))  # weak, 1 cell away
    heads["hm_hp"][0, 0, 10, 16] = 0.9  # strong, 4 cells away: 0.9 * exp(-0.5 (4/7.5)^2) = 0.78 > 0.15
    assert _joint0(decode(heads, K=5)) == pytest.approx((13.0, 10.0))
    assert _joint0(decode(heads, K=5, snap="weighted")) == pytest.approx((16.0, 10.0))
    heads["hm_hp"][0, 0, 10, 16] = 0.16  # barely stronger but farther: proximity wins
    assert _joint0(decode(heads, K=5, snap="weighted")) == pytest.approx((13.0, 10.0))
    # the tests of the other modes still hold: a strong peak beyond the limit is never taken
    heads = _one_person(0.9, (22, 10), wh=(30.0, 30.0))
    assert _joint0(decode(heads, K=5, snap="weighted")) == pytest.approx((12.0, 10.0))


def test_rescore_ranks_people_by_centre_times_joint_scores():
    heads = {k: torch.zeros_like(v) for k, v in _heads(j=2).items()}
    heads["hm"][0, 0, 5, 5], heads["hm"][0, 0, 20, 20] = 0.9, 0.6
    heads["wh"][0, :, 5, 5] = heads["wh"][0, :, 20, 20] = 8.0
    heads["hm_hp"][0, :, 5, 5] = 0.2  # the stronger centre's joints sit on weak heat
    heads["hm_hp"][0, :, 20, 20] = 0.8
    plain = decode(heads, K=4)
    dets, kp = decode(heads, K=4, rescore=True, return_kp_scores=True)
    assert float(plain[0, 0, 4]) == pytest.approx(0.9)
    assert float(dets[0, 0, 4]) == pytest.approx((0.6 * 0.8) ** 0.5)
    assert float(dets[0, 1, 4]) == pytest.approx((0.9 * 0.2) ** 0.5)
    assert dets[0, 0, :4].tolist() == pytest.approx([16, 16, 24, 24])  # rows move whole
    assert dets[0, 0, 5:9].tolist() == pytest.approx([20, 20, 20, 20])
    assert kp[0, 0].tolist() == pytest.approx([0.8, 0.8])
    assert (dets[0, :, 4].diff() <= 0).all()


def test_per_joint_offsets_place_joints_that_share_a_cell_apart():
    heads = {k: torch.zeros_like(v) for k, v in _heads(j=2).items()}
    heads["hm"][0, 0, 10, 10] = 0.9
    heads["wh"][0, :, 10, 10] = 10.0
    heads["hps"][0, :, 10, 10] = 2.0  # both joints regressed to (12, 12)
    heads["hm_hp"][0, :, 12, 12] = 0.8  # both peaks in cell (12, 12)
    heads["hp_offset"] = torch.zeros(1, 4, H, W)
    heads["hp_offset"][0, :, 12, 12] = torch.tensor([0.25, 0.5, 0.75, 0.125])  # joint 0's pair, joint 1's
    dets = decode(heads, K=3)
    assert dets[0, 0, 5:9].tolist() == pytest.approx([12.25, 12.5, 12.75, 12.125])
    shared = decode(dict(heads, hp_offset=heads["hp_offset"][:, :2]), K=3)
    assert shared[0, 0, 5:9].tolist() == pytest.approx([12.25, 12.5, 12.25, 12.5])


def test_kp_scores_are_heatmap_values_at_final_joint():
    heads = _one_person(0.5, (13, 11))
    dets, kp = decode(heads, K=5, return_kp_scores=True)
    assert kp.shape == (1, 5, 1) and float(kp[0, 0, 0]) == pytest.approx(0.5)
    no_hp = {k: v for k, v in heads.items() if k != "hm_hp"}
    dets, kp = decode(no_hp, K=5, return_kp_scores=True)
    assert torch.equal(kp[..., 0], dets[..., 4])


def test_batch32_matches_per_image_and_other_joint_count():
    heads = _heads(b=32, j=5, seed=3, h=64, w=64)
    heads = {k: v.clone() for k, v in heads.items()}
    heads["hm_hp"][:, :, ::7, ::5] = 0.6  # plenty of candidates
    dets = decode(heads, K=20)
    assert dets.shape == (32, 20, 5 + 10 + 1)
    for i in (0, 17, 31):
        single = decode({k: v[i : i + 1] for k, v in heads.items()}, K=20)
        assert torch.equal(dets[i : i + 1], single)
    assert torch.all(dets[:, :-1, 4] >= dets[:, 1:, 4])


def test_tie_break_modes():
    heat = torch.zeros(1, 1, 128, 128)
    heat.view(-1)[[7, 10, 500, 9000]] = 1.0
    _, inds, _, _, _ = topk_detections(heat, 4, "stable")
    assert inds[0].tolist() == [7, 10, 500, 9000]
    _, inds, _, _, _ = topk_detections(heat, 4, "topk")
    assert sorted(inds[0].tolist()) == [7, 10, 500, 9000]
    with pytest.raises(ValueError, match="K=20000"):
        topk_detections(heat, 20000)


@pytest.mark.parametrize(
    "device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))]
)
def test_device_agnostic(device):
    heads = {k: v.to(device) for k, v in _heads(b=2).items()}
    dets = decode(heads, K=10, tie_break="stable")
    assert dets.device.type == device
    res = to_image_coords(dets, torch.tensor([[100.0, 80.0]] * 2), torch.tensor([200.0, 200.0]), (H, W))
    assert res.device.type == device and res.shape == (2, 10, 39)


def _mirror(heads: dict[str, torch.Tensor], spec: KeypointSpec) -> dict[str, torch.Tensor]:
    """Outputs an ideal network gives for the mirrored image (cell c ↦ W − 1 − c)."""
    perm = torch.as_tensor(spec.flip_index)
    j = spec.num_joints
    m = {k: v.flip(3) for k, v in heads.items()}
    hps = m["hps"].reshape(-1, j, 2, H, W)
    m["hps"] = torch.stack([-hps[:, :, 0], hps[:, :, 1]], 2)[:, perm].reshape(-1, 2 * j, H, W)
    m["hm_hp"] = m["hm_hp"][:, perm]
    return m


def test_flip_merge_of_symmetric_input_is_identity():
    heads = _heads(b=2)
    mirror = _mirror(heads, COCO_PERSON)
    both = {k: torch.cat([heads[k], mirror[k]]) for k in heads}
    merged = flip_merge(both)
    for k in ("hm", "wh", "hps", "hm_hp"):
        assert torch.allclose(merged[k], heads[k], atol=1e-6), k
    assert torch.equal(merged["reg"], heads["reg"]) and torch.equal(merged["hp_offset"], heads["hp_offset"])
    assert torch.allclose(decode(merged, K=10), decode(heads, K=10), atol=1e-5)


def test_flip_merge_fix_offset_and_errors():
    heads = _heads(b=1)
    mirror = _mirror(heads, COCO_PERSON)
    both = {k: torch.cat([heads[k], mirror[k]]) for k in heads}
    fixed = flip_merge(both, fix_offset=True)
    plain = flip_merge(both)
    # x channels move by half of (1 − 1/R) = 0.375; y channels are untouched.
    assert torch.allclose(fixed["hps"][:, 0::2] - plain["hps"][:, 0::2], torch.tensor(0.375))
    assert torch.equal(fixed["hps"][:, 1::2], plain["hps"][:, 1::2])
    with pytest.raises(ValueError, match="2B"):
        flip_merge({k: v[:1] for k, v in both.items()} | {"hm": torch.zeros(3, 1, H, W)})
    five = KeypointSpec(names=tuple("abcde"), flip_pairs=((1, 2), (3, 4)))
    with pytest.raises(ValueError, match="5 joints"):
        flip_merge(both, five)


def test_to_image_coords_closed_form_and_split():
    dets = torch.zeros(1, 2, 2 * 2 + 6)
    dets[0, 0] = torch.tensor([0, 0, 128, 64, 0.7, 64, 32, 10, 20, 0])
    res = to_image_coords(dets, torch.tensor([[320.0, 240.0]]), torch.tensor([[640.0, 480.0]]), (128, 128), scale=2.0)
    r = 640 / 128
    box, score, kps = split_results(res)
    assert res.shape == (1, 2, 9)
    assert box[0, 0].tolist() == pytest.approx(
        [(-64 * r + 320) / 2, (-64 * r + 240) / 2, (64 * r + 320) / 2, (0 * r + 240) / 2]
    )
    assert float(score[0, 0]) == pytest.approx(0.7)
    expected = [[320 / 2, (-32 * r + 240) / 2], [(-54 * r + 320) / 2, (-44 * r + 240) / 2]]
    np.testing.assert_allclose(kps[0, 0].numpy(), expected, rtol=1e-6)
    with pytest.raises(ValueError):
        to_image_coords(dets, torch.zeros(2, 2), torch.ones(2), 128)


def test_sigmoid_outputs_plain_or_clamped_out_of_place():
    raw = {"hm": torch.tensor([[[[-20.0, 0.0, 20.0]]]]), "wh": torch.ones(1, 2, 1, 3)}
    before = raw["hm"].clone()
    plain = sigmoid_outputs(raw)
    clamped = sigmoid_outputs(raw, clamp=True)
    assert torch.equal(raw["hm"], before) and plain["wh"] is raw["wh"]
    assert float(plain["hm"].min()) < 1e-4 and float(plain["hm"][0, 0, 0, 1]) == 0.5
    assert clamped["hm"][0, 0, 0].tolist() == pytest.approx([1e-4, 0.5, 1 - 1e-4])


def _blobs(b: int, c: int, s: int, n: int, g: torch.Generator) -> torch.Tensor:
    """Gaussian peaks of random height and width on weak noise (heatmaps as a network draws them)."""
    yy, xx = torch.meshgrid(torch.arange(s), torch.arange(s), indexing="ij")
    out = torch.rand(b, c, s, s, generator=g) * 0.02
    for _ in range(n):
        cy, cx = torch.rand(2, b, c, 1, 1, generator=g) * s
        sigma = 1 + torch.rand(b, c, 1, 1, generator=g) * 2
        amp = torch.rand(b, c, 1, 1, generator=g)
        out = torch.maximum(out, amp * torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2)))
    return out


@pytest.mark.parametrize("kind", ["noise", "blobs", "crowd", "ties"])
def test_eager_shortcuts_give_the_traced_decode_bit_for_bit(kind, monkeypatch):
    """Eager decode (running-max NMS, peaks from a wider raw top-k, candidate axis cut after the last strong
    peak) equals the fixed-K graph's decode (max-pool NMS of every cell, top-K, all K candidates)."""
    import sys

    dec = sys.modules["centerpose.codec.decode"]  # the package's `decode` attribute is the function
    g = torch.Generator().manual_seed(5)
    heads = _heads(b=3, j=5, seed=5, h=64, w=64)
    if kind == "noise":
        heads["hm"], heads["hm_hp"] = torch.rand(3, 1, 64, 64, generator=g), torch.rand(3, 5, 64, 64, generator=g)
    elif kind in ("blobs", "crowd"):
        n = 3 if kind == "blobs" else 25
        heads["hm"], heads["hm_hp"] = _blobs(3, 1, 64, n, g), _blobs(3, 5, 64, n, g)
    else:  # probabilities on a coarse grid: equal scores everywhere
        heads["hm_hp"] = torch.randint(0, 12, (3, 5, 64, 64), generator=g) / 10.0
        heads["hp_offset"] = torch.randint(0, 4, (3, 2, 64, 64), generator=g) / 4.0
    heads["wh"] = heads["wh"] * 3
    eager = [decode(heads, K=40, snap=snap, return_kp_scores=True) for snap in ("nearest", "weighted")]
    monkeypatch.setattr(dec, "is_exporting", lambda: True)
    traced = [decode(heads, K=40, snap=snap, return_kp_scores=True) for snap in ("nearest", "weighted")]
    for got, want in zip(eager, traced):
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    no_snap = decode({k: v for k, v in heads.items() if k != "hm_hp"}, K=40)
    assert not torch.equal(no_snap[..., 5:15], traced[0][0][..., 5:15])  # joints did snap


def test_nms_kernel_is_any_odd_window():
    heat = torch.rand(2, 3, 17, 23, generator=torch.Generator().manual_seed(0))
    for kernel in (1, 3, 5, 7):
        want = heat * (torch.nn.functional.max_pool2d(heat, kernel, 1, kernel // 2) == heat)
        assert torch.equal(heatmap_nms(heat, kernel), want)
