"""Val samples of coco-mini against the original's outputs (../shared/golden, METHOD §1.6)."""

from __future__ import annotations

import numpy as np
import pytest

from centerpose.codec.gaussian import radius_from_box
from centerpose.data.coco import CocoPoseDataset

pytestmark = pytest.mark.golden

TARGET_KEYS = ("hm", "wh", "reg", "ind", "reg_mask", "hps", "hps_mask", "hm_hp", "hp_offset", "hp_ind", "hp_mask")
FLOAT_KEYS = {"hm", "wh", "reg", "hps", "hm_hp", "hp_offset"}


@pytest.fixture(scope="module")
def val_samples(coco_mini):
    ds = CocoPoseDataset(coco_mini / "val2017", coco_mini / "annotations" / "person_keypoints_val2017.json",
                         train=False, augment=False, return_gt_det=True)
    return [ds[i] for i in range(len(ds))]


def test_every_val_sample_matches_golden(val_samples, golden):
    ref = golden("samples_val.npz")
    assert len(val_samples) == len(ref["img_id"]) == 79
    for i, sample in enumerate(val_samples):
        for key in TARGET_KEYS:
            got, want = sample[key], ref[key][i]
            assert got.dtype == want.dtype and got.shape == want.shape, (i, key, got.dtype, want.dtype)
            if key in FLOAT_KEYS:
                np.testing.assert_allclose(got, want, rtol=0, atol=1e-5, err_msg=f"sample {i} {key}")
            else:
                np.testing.assert_array_equal(got, want, err_msg=f"sample {i} {key}")
        meta = sample["meta"]
        assert meta["img_id"] == ref["img_id"][i]
        assert meta["c"].dtype == np.float32
        np.testing.assert_array_equal(meta["c"], ref["c"][i])
        assert meta["s"] == ref["s"][i]
        gt_det = ref[f"gt_det_{i}"]
        assert meta["gt_det"].shape == gt_det.shape and meta["gt_det"].dtype == np.float32
        np.testing.assert_allclose(meta["gt_det"], gt_det, rtol=0, atol=1e-5, err_msg=f"gt_det {i}")


def test_first_inputs_match_golden(val_samples, golden):
    ref = golden("samples_val_input8.npz")
    for i in range(8):
        assert val_samples[i]["input"].shape == (3, 512, 512) and val_samples[i]["input"].dtype == np.float32
        np.testing.assert_allclose(val_samples[i]["input"], ref["input"][i], rtol=0, atol=1e-5)


def test_method_golden_values_image_397133(val_samples):
    s = val_samples[0]
    assert s["meta"]["img_id"] == 397133
    np.testing.assert_array_equal(s["meta"]["c"], np.float32([320, 213.5]))
    assert s["meta"]["s"] == 640
    np.testing.assert_allclose(s["wh"][0], [21.881996, 55.524], atol=1e-5)
    np.testing.assert_allclose(s["reg"][0], [0.673004, 0.045998], atol=1e-5)
    assert s["ind"][0] == 8152 and s["ind"][1] == 9862
    np.testing.assert_allclose(s["wh"][1], [12.432, 7.353996], atol=1e-5)
    assert radius_from_box(s["wh"][:2, 1], s["wh"][:2, 0]).tolist() == [8, 2]
    assert s["hps_mask"][0].sum() == 2 * 13
    assert s["hm"].sum(dtype=np.float64) == pytest.approx(54.532066, abs=1e-4)
    assert s["hm_hp"].sum(dtype=np.float64) == pytest.approx(656.594299, abs=1e-3)
    np.testing.assert_allclose(s["input"][:, 0, 0], [-1.413175, -1.631605, -1.690989], atol=1e-6)


def test_image_without_people_is_all_zero(val_samples):
    s = next(x for x in val_samples if x["meta"]["img_id"] == 11813)
    for key in TARGET_KEYS:
        assert not s[key].any(), key
    assert s["meta"]["gt_det"].shape == (1, 40) and not s["meta"]["gt_det"].any()
