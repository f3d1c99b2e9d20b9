"""uint8 loader path: the folded colour + normalisation map against the per-sample float path."""

from __future__ import annotations

import albumentations as A
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from centerpose.data.coco import CocoPoseDataset
from centerpose.data.photometric import (
    AFFINE_KEY,
    IMAGE_KEY,
    _affine_torch,
    apply_input_affine,
    color_affine,
    finish_input,
    input_affine,
    sample_input,
)
from centerpose.data.preprocess import preprocess
from centerpose.data.transforms import COCO_MEAN_BGR, COCO_STD_BGR, color_aug, normalize
from test_dataset import make_coco


def _pair(img_dir, ann, **kw):
    common = dict(train=True, augment=True, rng="per_sample", seed=5)
    common.update(kw)
    return CocoPoseDataset(img_dir, ann, **common), CocoPoseDataset(img_dir, ann, input_format="uint8", **common)


@pytest.mark.parametrize(
    "ops",
    [
        ("brightness", "contrast", "saturation"),
        ("saturation", "contrast", "brightness"),
        ("contrast", "saturation", "brightness"),
    ],
)
def test_fold_equals_float_colour_ops(ops):
    rng = np.random.default_rng(1)
    u = rng.integers(0, 256, (16, 20, 3), dtype=np.uint8)
    alphas, light = (1.3, 0.65, 1.1), np.array([0.2, -0.15, 0.05])
    x = u.astype(np.float32) / 255.0
    want = normalize(color_aug(x.copy(), ops, alphas, light), COCO_MEAN_BGR, COCO_STD_BGR)
    grey_mean = float(np.float64([0.114, 0.587, 0.299]) @ u.reshape(-1, 3).mean(0)) / 255.0
    affine = input_affine(COCO_MEAN_BGR, COCO_STD_BGR, color=color_affine(ops, alphas, light, grey_mean))
    got = apply_input_affine(torch.from_numpy(u), torch.from_numpy(affine)).numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="unknown colour op"):
        color_affine(("hue",), (1.0,), light, grey_mean)


@pytest.mark.parametrize("kw", [{}, {"channel_order": "rgb"}, {"augment": False, "train": False}])
def test_uint8_samples_match_float_path_with_the_same_draws(coco_mini, kw):
    ann = coco_mini / "annotations" / "person_keypoints_train2017.json"
    flt, u8 = _pair(coco_mini / "train2017", ann, **kw)
    for i in range(3):  # colour on: seed 5 gives two op orders, flipped and unflipped crops
        a, b = flt[i], u8[i]
        assert "input" not in b and b[IMAGE_KEY].dtype == np.uint8 and b[IMAGE_KEY].shape == (512, 512, 3)
        assert b[AFFINE_KEY].shape == (3, 4) and b[AFFINE_KEY].dtype == np.float32
        np.testing.assert_allclose(sample_input(b), a["input"], rtol=0, atol=1e-5)
        for key in ("hm", "hm_hp", "ind", "hps", "hp_offset"):
            np.testing.assert_array_equal(a[key], b[key])
        np.testing.assert_array_equal(a["meta"]["c"], b["meta"]["c"])


def test_collated_batch_is_finished_once_on_the_device_side(tmp_path):
    img_dir, ann = make_coco(
        tmp_path, images=[{"id": i, "file_name": f"{i}.jpg", "width": 320, "height": 240} for i in (1, 2, 3)]
    )
    flt, u8 = _pair(img_dir, ann, train=False)
    ref = next(iter(DataLoader(flt, batch_size=3)))
    batch = next(iter(DataLoader(u8, batch_size=3)))
    assert batch[IMAGE_KEY].dtype == torch.uint8 and batch[IMAGE_KEY].shape == (3, 512, 512, 3)
    out = finish_input(batch)
    assert IMAGE_KEY not in out and AFFINE_KEY not in out
    assert out["input"].dtype == torch.float32 and out["input"].is_contiguous()
    torch.testing.assert_close(out["input"], ref["input"], rtol=0, atol=1e-5)
    assert finish_input(ref)["input"] is ref["input"]  # float batches pass through


def test_cpu_kernel_equals_the_device_kernel():
    rng = np.random.default_rng(2)
    u = torch.from_numpy(rng.integers(0, 256, (3, 33, 40, 3), dtype=np.uint8))
    affine = torch.from_numpy(rng.normal(0, 0.02, (3, 3, 4)).astype(np.float32))
    got = apply_input_affine(u, affine)  # CPU: cv2 kernels
    want = _affine_torch(u, affine)  # the batched torch ops used on CUDA
    assert got.shape == (3, 3, 33, 40) and got.is_contiguous()
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
    u64 = u.double().permute(0, 3, 1, 2)
    exact = torch.einsum("bck,bkhw->bchw", affine[:, :, :3].double(), u64) + affine[:, :, 3, None, None].double()
    torch.testing.assert_close(got.double(), exact, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="uint8"):
        apply_input_affine(u.float(), affine)


def test_extra_transforms_take_the_float_path(tmp_path):
    img_dir, ann = make_coco(tmp_path)
    ds = CocoPoseDataset(img_dir, ann, input_format="uint8", extra_transforms=[A.InvertImg(p=1.0)])
    assert not ds.uint8_input and ds[0]["input"].dtype == np.float32
    with pytest.raises(ValueError, match="input_format"):
        CocoPoseDataset(img_dir, ann, input_format="half")


def test_test_time_preprocess_uint8_matches_float64_normalisation():
    img = np.random.default_rng(0).integers(0, 256, (70, 90, 3), dtype=np.uint8)
    ref = preprocess(img, 1.0)
    raw = preprocess(img, 1.0, normalize=False)
    assert raw.image.dtype == np.uint8 and raw.image.shape == (96, 96, 3)
    got = apply_input_affine(torch.from_numpy(raw.image), torch.from_numpy(input_affine(COCO_MEAN_BGR, COCO_STD_BGR)))
    np.testing.assert_allclose(got.numpy(), ref.image, rtol=0, atol=1e-5)
