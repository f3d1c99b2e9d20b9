"""gen_oracle_map's flood fill (handmade cases + a plain queue reference) and oracle_outputs."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest
import torch

from centerpose.codec.oracle import gen_oracle_map, oracle_outputs


def _reference(feat: np.ndarray, ind: np.ndarray, w: int, h: int) -> np.ndarray:
    """One-cell-at-a-time queue exactly as METHOD §3.7 describes (slow, for checking)."""
    b, m, d = feat.shape
    out = np.zeros((b, d, h, w), np.float32)
    for i in range(b):
        seen = np.zeros((h, w), bool)
        queue = deque()
        for j in range(m):
            if ind[i, j] > 0:
                x, y = ind[i, j] % w, ind[i, j] // w
                out[i, :, y, x] = feat[i, j]
                seen[y, x] = True
                queue.append((x, y, feat[i, j]))
        while queue:
            x, y, f = queue.popleft()
            for dx, dy in ((0, 1), (0, -1), (1, 0), (-1, 0)):
                xx, yy = x + dx, y + dy
                if 0 <= xx < w and 0 <= yy < h and not seen[yy, xx]:
                    out[i, :, yy, xx] = f
                    seen[yy, xx] = True
                    queue.append((xx, yy, f))
    return out


def test_single_seed_fills_everything():
    out = gen_oracle_map(np.array([[[2.0, -1.0]]]), np.array([[7]]), w=4, h=3)
    assert out.shape == (1, 2, 3, 4) and out.dtype == np.float32
    assert (out[0, 0] == 2.0).all() and (out[0, 1] == -1.0).all()


def test_slot_at_cell_zero_is_skipped_and_empty_image_stays_zero():
    feat = np.array([[[5.0], [1.0]], [[3.0], [0.0]]])
    ind = np.array([[0, 3], [0, 0]])
    out = gen_oracle_map(feat, ind, w=3, h=3)
    assert (out[0] == 1.0).all()  # the slot at cell 0 never seeds (QUIRK E14)
    assert (out[1] == 0.0).all()


def test_tie_goes_to_earlier_queue_entry_in_neighbour_order():
    # Seeds at x=0 and x=2 of a 1-row map: cell x=1 is reached by both at distance 1.
    feat = np.array([[[1.0], [2.0]]])
    out = gen_oracle_map(feat, np.array([[2, 0]]), w=3, h=1)  # second slot is cell 0: skipped
    assert out[0, 0, 0].tolist() == [1.0, 1.0, 1.0]
    # Seeds at cells 1 and 3 of a 1-row map of 5 (slot order 1 then 3): cell 2 goes to the first slot.
    out = gen_oracle_map(np.array([[[1.0], [2.0]]]), np.array([[1, 3]]), w=5, h=1)
    assert out[0, 0, 0].tolist() == [1.0, 1.0, 1.0, 2.0, 2.0]
    out = gen_oracle_map(np.array([[[2.0], [1.0]]]), np.array([[3, 1]]), w=5, h=1)
    assert out[0, 0, 0].tolist() == [1.0, 1.0, 2.0, 2.0, 2.0]  # now cell 2 belongs to the slot at 3


def test_later_slot_overwrites_cell_but_both_spread():
    # Two slots on the same cell 4 (centre of 3x3), then the first slot's value fills the neighbours.
    out = gen_oracle_map(np.array([[[1.0], [2.0]]]), np.array([[4, 4]]), w=3, h=3)
    assert out[0, 0, 1, 1] == 2.0  # overwritten
    assert out[0, 0, 0, 1] == 1.0 and out[0, 0, 2, 2] == 1.0  # first queue entry spreads first


def test_matches_reference_on_random_cases():
    rng = np.random.default_rng(0)
    for _ in range(100):
        m, w, h = rng.integers(1, 8), rng.integers(1, 9), rng.integers(1, 9)
        ind = rng.integers(0, w * h, (3, m))
        ind[rng.random((3, m)) < 0.3] = 0
        ind[0, -1] = ind[0, 0]  # duplicates
        feat = rng.normal(size=(3, m, 2)).astype(np.float32)
        assert np.array_equal(gen_oracle_map(feat, ind, w, h), _reference(feat, ind, w, h))


def test_torch_in_torch_out_and_bad_index():
    out = gen_oracle_map(torch.ones(1, 1, 2), torch.tensor([[3]]), 2, 2)
    assert isinstance(out, torch.Tensor) and out.shape == (1, 2, 2, 2)
    with pytest.raises(ValueError, match="outside"):
        gen_oracle_map(np.ones((1, 1, 1)), np.array([[9]]), 3, 3)


def _batch(j: int = 3, n: int = 4, hw: int = 8):
    b = {"hm": torch.zeros(1, 1, hw, hw), "hm_hp": torch.zeros(1, j, hw, hw),
         "ind": torch.zeros(1, n, dtype=torch.int64), "wh": torch.zeros(1, n, 2), "reg": torch.zeros(1, n, 2),
         "hps": torch.zeros(1, n, 2 * j), "hp_offset": torch.zeros(1, n * j, 2),
         "hp_ind": torch.zeros(1, n * j, dtype=torch.int64)}
    b["hm"][0, 0, 3, 2] = 1.0
    b["ind"][0, 0] = 3 * hw + 2
    b["wh"][0, 0] = torch.tensor([4.0, 2.0])
    b["reg"][0, 0] = torch.tensor([0.5, 0.25])
    b["hps"][0, 0] = torch.arange(2 * j, dtype=torch.float32)
    return b


def test_oracle_outputs_variants():
    batch = _batch()
    out = oracle_outputs(batch, {"hm", "kps"})
    assert set(out) == {"hm", "hps", "wh", "reg"}
    assert out["hm"] is batch["hm"]
    assert out["hps"].shape == (1, 6, 8, 8) and (out["hps"][0, 5] == 5.0).all()
    assert (out["wh"][0, 0] == 4.0).all()
    full = oracle_outputs(batch, {"hm", "kps", "hm_hp", "hp_offset"})
    assert set(full) == {"hm", "hps", "wh", "reg", "hm_hp", "hp_offset"}
    base = {"hm": torch.full((1, 1, 8, 8), 0.3), "hps": torch.zeros(1, 6, 8, 8), "wh": torch.ones(1, 2, 8, 8),
            "reg": torch.zeros(1, 2, 8, 8)}
    mixed = oracle_outputs(batch, {"hm"}, base=base)
    assert mixed["wh"] is base["wh"] and mixed["hm"] is batch["hm"]
    with pytest.raises(ValueError, match="unknown"):
        oracle_outputs(batch, {"heat"})
    with pytest.raises(ValueError, match="hps"):
        oracle_outputs(batch, {"hm"})


def test_per_joint_oracle_offsets_keep_joints_that_share_a_cell():
    """Two joints of one person in one cell: the shared map keeps one offset (the later slot's), the per-joint
    maps keep both (QUIRK E16), and the decode reads each joint's own."""
    from centerpose.codec.ops import gather_feat, joint_offset_map

    batch = _batch(j=3)
    cell = 5 * 8 + 4
    batch["hp_ind"][0, :2] = cell  # person 0, joints 0 and 1
    batch["hp_offset"][0, 0] = torch.tensor([0.1, 0.2])
    batch["hp_offset"][0, 1] = torch.tensor([0.7, 0.9])
    variant = {"hm", "kps", "hm_hp", "hp_offset"}
    shared = oracle_outputs(batch, variant)["hp_offset"]
    per_joint = oracle_outputs(batch, variant, joint_offsets="per_joint")["hp_offset"]
    assert shared.shape == (1, 2, 8, 8) and per_joint.shape == (1, 6, 8, 8)
    assert shared[0, :, 5, 4].tolist() == pytest.approx([0.7, 0.9])  # joint 0's offset is lost
    offsets, ind = joint_offset_map(per_joint, batch["hp_ind"][:, :2], torch.tensor([0, 1]))
    read = gather_feat(offsets, ind)[0]
    assert torch.allclose(read, torch.tensor([[0.1, 0.2], [0.7, 0.9]]))
    assert (per_joint[0, 4:] == 0).all()  # joint 2 has no seed
    with pytest.raises(ValueError, match="per_joint"):
        oracle_outputs(batch, variant, joint_offsets="each")


# METHOD §3.7: oracle AP of the original on coco-mini val (kp AP, AP50, AP75, APm, APl, AR, bbox AP).
ORACLE_TABLE = {
    "hm": ({"hm", "kps"}, (1.0000, 1.0000, 1.0000, 1.0000, 1.0000, 1.0000, 0.9673)),
    "hm+hm_hp": ({"hm", "kps", "hm_hp"}, (0.9052, 1.0000, 0.9505, 0.8238, 0.9969, 0.9221, 0.9673)),
    "all": ({"hm", "kps", "hm_hp", "hp_offset"}, (0.9778, 1.0000, 0.9802, 0.9578, 1.0000, 0.9794, 0.9673)),
}
# Same with the deterministic tie-break (§3.7 "Tie sensitivity"): kp AP and bbox AP.
ORACLE_STABLE = {"hm": (0.9877, 0.9671), "hm+hm_hp": (0.8905, 0.9671), "all": (0.9650, 0.9671)}


@pytest.fixture(scope="module")
def val_targets(golden, coco_mini):
    import contextlib
    import io

    from pycocotools.coco import COCO

    g = golden("samples_val.npz")
    keys = ("hm", "wh", "reg", "ind", "reg_mask", "hps", "hps_mask", "hm_hp", "hp_offset", "hp_ind", "hp_mask")
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(coco_mini / "annotations" / "person_keypoints_val2017.json"))
    return {k: torch.from_numpy(g[k]) for k in keys}, g, gt


def _oracle_stats(val_targets, variant, tie_break):
    from centerpose.codec.decode import decode
    from centerpose.codec.postprocess import to_image_coords
    from centerpose.evaluation.coco import evaluate_coco, to_coco_results

    batch, g, gt = val_targets
    dets = decode(oracle_outputs(batch, variant), K=100, tie_break=tie_break)  # CPU, original topk calls
    res = to_image_coords(dets, torch.from_numpy(g["c"]), torch.from_numpy(g["s"]), 128).numpy()
    results = to_coco_results({int(i): res[n] for n, i in enumerate(g["img_id"])})
    assert len(results) == 79 * 100
    return evaluate_coco(gt, results)


@pytest.mark.golden
@pytest.mark.parametrize("name", list(ORACLE_TABLE))
def test_oracle_ap_reproduces_method_table(val_targets, name):
    variant, expected = ORACLE_TABLE[name]
    st = _oracle_stats(val_targets, variant, "topk")
    got = (st["AP"], st["AP50"], st["AP75"], st["APm"], st["APl"], st["AR"], st["bbox_AP"])
    assert got == pytest.approx(expected, abs=5e-5)


@pytest.mark.golden
@pytest.mark.slow
@pytest.mark.parametrize("name", list(ORACLE_STABLE))
def test_oracle_ap_with_stable_tie_break(val_targets, name):
    st = _oracle_stats(val_targets, ORACLE_TABLE[name][0], "stable")
    assert (st["AP"], st["bbox_AP"]) == pytest.approx(ORACLE_STABLE[name], abs=5e-5)
