"""Joint heatmaps drawn per batch from sparse targets equal the dataset's dense hm_hp bit for bit."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from centerpose.codec.device_heatmaps import RADIUS_KEY, draw_joint_heatmaps, finish_joint_heatmaps
from centerpose.codec.encode import encode_pose_targets
from centerpose.codec.gaussian import draw_gaussians
from centerpose.data.collate import collate_samples
from centerpose.data.coco import CocoPoseDataset
from centerpose.keypoints import COCO_PERSON
from centerpose.training.losses import PoseLoss
from centerpose.training.module import CenterPoseModule

METHODS = ("numpy", "torch")


def _reference(hp_ind, hp_mask, hp_radius, J, H, W) -> np.ndarray:
    """Sample by sample, joint by joint, with the encoder's draw_gaussians."""
    B, slots = hp_ind.shape
    out = np.zeros((B, J, H, W), np.float32)
    for b in range(B):
        for s in np.flatnonzero(hp_mask[b]):
            draw_gaussians(out[b], [s % J], [[hp_ind[b, s] % W, hp_ind[b, s] // W]], [hp_radius[b, s]])
    return out


@pytest.mark.parametrize("method", METHODS)
def test_random_joints_match_reference_at_borders_and_large_radii(method):
    rng = np.random.default_rng(0)
    B, N, J, H, W = 3, 6, 5, 24, 20
    # Centres cluster on the borders and corners; radii up to larger than the map.
    ys = np.clip(rng.choice([0, 1, H - 2, H - 1, 7], size=(B, N * J)) + rng.integers(-1, 2, (B, N * J)), 0, H - 1)
    xs = np.clip(rng.choice([0, 1, W - 2, W - 1, 9], size=(B, N * J)) + rng.integers(-1, 2, (B, N * J)), 0, W - 1)
    hp_ind = (ys * W + xs).astype(np.int64)
    hp_mask = (rng.random((B, N * J)) < 0.6).astype(np.int64)
    hp_mask[2] = 0  # a sample without joints
    hp_radius = np.where(hp_mask > 0, rng.integers(0, 30, (B, N * J)), 0).astype(np.int16)
    want = _reference(hp_ind, hp_mask, hp_radius, J, H, W)
    got = draw_joint_heatmaps(
        torch.from_numpy(hp_ind), torch.from_numpy(hp_mask), torch.from_numpy(hp_radius), J, (H, W), method
    )
    assert got.dtype == torch.float32 and got.shape == (B, J, H, W)
    assert (want > 0).sum() > 500 and want[2].max() == 0
    np.testing.assert_array_equal(got.numpy(), want)


@pytest.mark.parametrize("method", METHODS)
def test_empty_batch_gives_zero_maps(method):
    z = torch.zeros(2, 4 * 17, dtype=torch.int64)
    got = draw_joint_heatmaps(z, z, z.short(), 17, 16, method)
    assert got.shape == (2, 17, 16, 16) and not got.any()


def test_bad_shapes_and_method_raise():
    z = torch.zeros(2, 34, dtype=torch.int64)
    with pytest.raises(ValueError, match="multiple of J"):
        draw_joint_heatmaps(z, z, z, 5, 8)
    with pytest.raises(ValueError, match="equal"):
        draw_joint_heatmaps(z, z[:1], z, 17, 8)
    with pytest.raises(ValueError, match="method"):
        draw_joint_heatmaps(z, z, z, 17, 8, "cuda")
    with pytest.raises(ValueError, match="joint_heatmaps"):
        encode_pose_targets(np.zeros((0, 4)), np.zeros((0, 17, 3)), np.eye(2, 3), np.eye(2, 3), joint_heatmaps="x")


def _random_people(rng, n, J, size):
    x1, y1 = rng.uniform(-60, size, n), rng.uniform(-60, size, n)
    boxes = np.stack([x1, y1, x1 + rng.uniform(1, 300, n), y1 + rng.uniform(1, 300, n)], 1).astype(np.float32)
    kp = np.concatenate([rng.uniform(-40, size + 40, (n, J, 2)), rng.integers(0, 3, (n, J, 1))], 2)
    return boxes, kp.astype(np.float32)


@pytest.mark.parametrize("method", METHODS)
def test_encoded_synthetic_people_sparse_equals_dense(method):
    rng = np.random.default_rng(1)
    J, O, size = COCO_PERSON.num_joints, 64, 256
    t_out = np.array([[O / size, 0, 0], [0, O / size, 0]], np.float64)
    dense, sparse = [], []
    for i in range(6):
        boxes, kp = _random_people(rng, int(rng.integers(0, 40)), J, size)
        kw = dict(flipped=bool(i % 2), image_width=size, output_size=O, max_objs=32)
        d = encode_pose_targets(boxes, kp, t_out, t_out, **kw)
        s = encode_pose_targets(boxes, kp, t_out, t_out, joint_heatmaps="sparse", **kw)
        assert "hm_hp" not in s and s[RADIUS_KEY].dtype == np.int16
        assert set(s) - {RADIUS_KEY} == set(d) - {"hm_hp"}
        for k in set(d) - {"hm_hp"}:
            np.testing.assert_array_equal(s[k], d[k], err_msg=k)
        assert (s[RADIUS_KEY][s["hp_mask"] == 0] == 0).all()
        dense.append(d["hm_hp"])
        sparse.append(s)
    batch = {k: torch.from_numpy(np.stack([s[k] for s in sparse])) for k in ("hp_ind", "hp_mask", RADIUS_KEY)}
    got = draw_joint_heatmaps(batch["hp_ind"], batch["hp_mask"], batch[RADIUS_KEY], J, O, method)
    np.testing.assert_array_equal(got.numpy(), np.stack(dense))


def _datasets(coco_mini, **kw):
    ann = coco_mini / "annotations" / "person_keypoints_train2017.json"
    common = dict(train=True, augment=True, rng="per_sample", seed=3, input_format="uint8", **kw)
    return (
        CocoPoseDataset(coco_mini / "train2017", ann, **common),
        CocoPoseDataset(coco_mini / "train2017", ann, joint_heatmaps="sparse", **common),
    )


def test_coco_mini_augmented_samples_sparse_equals_dense(coco_mini):
    """Every coco-mini train image, flipped and cropped, with both methods; the cases that matter occur."""
    dense_set, sparse_set = _datasets(coco_mini, flip=0.5, scale=0.4)
    J, O = 17, dense_set.output_size
    seen = {"border": 0, "many": 0}
    for start in range(0, len(dense_set), 12):
        idx = range(start, min(start + 12, len(dense_set)))
        dense = [dense_set[i] for i in idx]
        sparse = [sparse_set[i] for i in idx]
        b = collate_samples(sparse)
        want = np.stack([d["hm_hp"] for d in dense])
        for method in METHODS:
            got = draw_joint_heatmaps(b["hp_ind"], b["hp_mask"], b[RADIUS_KEY], J, O, method)
            np.testing.assert_array_equal(got.numpy(), want)
        for s in sparse:
            m = s["hp_mask"] > 0
            x, y, r = s["hp_ind"][m] % O, s["hp_ind"][m] // O, s[RADIUS_KEY][m]
            seen["border"] += int(((x < r) | (y < r) | (x >= O - r) | (y >= O - r)).sum())
            seen["many"] += int(s["reg_mask"].sum() >= 5)
    assert seen["border"] > 20 and seen["many"] >= 3


def test_flip_always_and_never(coco_mini):
    for flip in (0.0, 1.0):
        dense_set, sparse_set = _datasets(coco_mini, flip=flip)
        dense = [dense_set[i] for i in range(8)]
        b = finish_joint_heatmaps(collate_samples([sparse_set[i] for i in range(8)]))
        assert RADIUS_KEY not in b
        np.testing.assert_array_equal(b["hm_hp"].numpy(), np.stack([d["hm_hp"] for d in dense]))


class _TinyNet(nn.Module):
    """Heads from the input: one 1x1 conv, average-pooled by the down ratio (deterministic)."""

    def __init__(self, J: int = 17):
        super().__init__()
        self.sizes = {"hm": 1, "wh": 2, "hps": 2 * J, "reg": 2, "hm_hp": J, "hp_offset": 2}
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, sum(self.sizes.values()), 1)

    def forward(self, x):
        y = nn.functional.avg_pool2d(self.conv(x), 4)
        return [dict(zip(self.sizes, y.split(list(self.sizes.values()), dim=1)))]


def test_loader_batches_and_training_loss_equal_with_both_settings(coco_mini):
    dense_set, sparse_set = _datasets(coco_mini)
    module = CenterPoseModule(net=_TinyNet(), loss=PoseLoss(), optimizer=torch.optim.SGD)
    batches = []
    for ds in (dense_set, sparse_set):
        loader = DataLoader(ds, batch_size=4, shuffle=False, collate_fn=collate_samples)
        batches.append(module.on_after_batch_transfer(next(iter(loader)), 0))
    dense, sparse = batches
    assert set(dense) == set(sparse) and RADIUS_KEY not in sparse
    for k, v in dense.items():
        if isinstance(v, torch.Tensor):
            assert v.dtype == sparse[k].dtype and torch.equal(v, sparse[k]), k
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # self.log without a trainer
        losses = [module.training_step(b, 0) for b in batches]
    outputs = module.net(dense["input"])
    stats = [module.loss(outputs, b)[1] for b in batches]
    assert torch.equal(losses[0], losses[1]) and stats[0]["hm_hp_loss"] > 0
    assert all(torch.equal(stats[0][k], stats[1][k]) for k in stats[0])


def test_datamodule_defaults_to_sparse_for_both_splits(coco_mini):
    from centerpose.data.datamodule import CocoPoseDataModule

    dm = CocoPoseDataModule(coco_mini, batch_size=2, num_workers=0, preflight=False)
    dm.setup("fit")
    assert dm.train_set.joint_heatmaps == dm.val_set.joint_heatmaps == "sparse"
    batch = next(iter(dm.val_dataloader()))
    assert RADIUS_KEY in batch and "hm_hp" not in batch
    dense = CocoPoseDataModule(coco_mini, num_workers=0, preflight=False, joint_heatmaps="dense")
    dense.setup("validate")
    np.testing.assert_array_equal(
        finish_joint_heatmaps(batch)["hm_hp"].numpy(), next(iter(dense.val_dataloader()))["hm_hp"].numpy()
    )


def test_loss_names_the_missing_drawing_step():
    batch = {"hm": torch.zeros(1, 1, 8, 8), RADIUS_KEY: torch.zeros(1, 17, dtype=torch.int16)}
    with pytest.raises(KeyError, match="finish_joint_heatmaps"):
        PoseLoss()({"hm": torch.zeros(1, 1, 8, 8)}, batch)
