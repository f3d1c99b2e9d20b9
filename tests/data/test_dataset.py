"""CocoPoseDataset: split filter, augmentation determinism, flip, photometric stage and errors."""

from __future__ import annotations

import json
import random

import albumentations as A
import cv2
import numpy as np
import pytest

from centerpose.data.augment import SampleRngs
from centerpose.data.coco import CocoPoseDataset
from centerpose.data.transforms import COCO_MEAN_BGR, COCO_STD_BGR, EIG_VAL, EIG_VEC, CornerNetColorAug, color_aug
from centerpose.keypoints import COCO_PERSON

J = COCO_PERSON.num_joints


def _ann(ann_id, img_id, bbox, joints=None, **extra):
    kp = [0] * (3 * J)
    for j, (x, y) in (joints or {}).items():
        kp[3 * j : 3 * j + 3] = [x, y, 2]
    return {
        "id": ann_id,
        "image_id": img_id,
        "category_id": 1,
        "bbox": bbox,
        "keypoints": kp,
        "num_keypoints": len(joints or {}),
        "iscrowd": 0,
        "area": bbox[2] * bbox[3],
        **extra,
    }


def make_coco(tmp_path, anns=None, images=None, write_images=True):
    """A tiny COCO keypoint set: two 320×240 images (id 1 with a person, id 2 empty)."""
    img_dir = tmp_path / "images"
    img_dir.mkdir(exist_ok=True)
    images = images or [
        {"id": 1, "file_name": "a.jpg", "width": 320, "height": 240},
        {"id": 2, "file_name": "b.jpg", "width": 320, "height": 240},
    ]
    rng = np.random.default_rng(0)
    if write_images:
        for im in images:
            cv2.imwrite(str(img_dir / im["file_name"]), rng.integers(0, 255, (240, 320, 3), dtype=np.uint8))
    anns = anns if anns is not None else [_ann(10, 1, [100, 40, 60, 150], {0: (130, 50), 5: (115, 90), 6: (145, 90)})]
    cat = {"id": 1, "name": "person", "keypoints": list(COCO_PERSON.names), "skeleton": []}
    ann_file = tmp_path / "ann.json"
    ann_file.write_text(json.dumps({"images": images, "annotations": anns, "categories": [cat]}))
    return img_dir, ann_file


# -- splits and shapes ---------------------------------------------------------------------------------
def test_train_split_filter_on_coco_mini(coco_mini):
    ann = coco_mini / "annotations" / "person_keypoints_train2017.json"
    ds = CocoPoseDataset(coco_mini / "train2017", ann, train=True, augment=True)
    assert len(ds) == 36
    order = [im["id"] for im in json.loads(ann.read_text())["images"]]
    assert ds.ids == [i for i in order if i in set(ds.ids)]  # json order kept
    assert len(CocoPoseDataset(coco_mini / "train2017", ann, train=False, augment=False)) == 80


def test_augmented_sample_shapes_and_dtypes(tmp_path):
    img_dir, ann = make_coco(tmp_path)
    ds = CocoPoseDataset(img_dir, ann, train=True, augment=True, rng="per_sample", seed=1)
    assert len(ds) == 1
    s = ds[0]
    expect = {
        "input": ((3, 512, 512), np.float32),
        "hm": ((1, 128, 128), np.float32),
        "wh": ((32, 2), np.float32),
        "reg": ((32, 2), np.float32),
        "ind": ((32,), np.int64),
        "reg_mask": ((32,), np.uint8),
        "hps": ((32, 34), np.float32),
        "hps_mask": ((32, 34), np.uint8),
        "hm_hp": ((17, 128, 128), np.float32),
        "hp_offset": ((544, 2), np.float32),
        "hp_ind": ((544,), np.int64),
        "hp_mask": ((544,), np.int64),
    }
    for key, (shape, dtype) in expect.items():
        assert s[key].shape == shape and s[key].dtype == dtype, key
    assert s["meta"]["img_id"] == 1 and s["meta"]["c"].dtype == np.float32 and isinstance(s["meta"]["s"], float)
    assert "gt_det" not in s["meta"]
    from torch.utils.data import default_collate

    batch = default_collate([s, ds[0]])
    assert tuple(batch["hm"].shape) == (2, 1, 128, 128) and tuple(batch["meta"]["c"].shape) == (2, 2)
    d = CocoPoseDataset(img_dir, ann, train=True, augment=True, dense_hp=True, input_size=384)[0]
    assert d["dense_hps"].shape == (34, 96, 96) and "hps" not in d and d["input"].shape == (3, 384, 384)


def test_unaugmented_train_sample_is_pure(tmp_path):
    img_dir, ann = make_coco(tmp_path)
    ds = CocoPoseDataset(img_dir, ann, train=True, augment=False)
    np.random.seed(0)
    a = ds[0]
    np.random.seed(1)
    random.seed(5)
    b = ds[0]
    for key in a:
        if key != "meta":
            np.testing.assert_array_equal(a[key], b[key])
    np.testing.assert_array_equal(a["meta"]["c"], [160, 120])
    assert a["meta"]["s"] == 320.0


# -- RNG plumbing --------------------------------------------------------------------------------------
def _same(a, b):
    return all(np.array_equal(a[k], b[k]) for k in a if k != "meta") and np.array_equal(a["meta"]["c"], b["meta"]["c"])


def test_per_sample_rng_is_deterministic_and_epoch_dependent(tmp_path):
    img_dir, ann = make_coco(tmp_path)
    kw = dict(train=True, augment=True, rng="per_sample", seed=7)
    a, b = CocoPoseDataset(img_dir, ann, **kw), CocoPoseDataset(img_dir, ann, **kw)
    s0 = a[0]
    np.random.seed(123)  # the global RNGs play no part
    random.seed(9)
    assert _same(s0, b[0]) and _same(s0, a[0])
    epochs = []
    for e in range(4):
        a.set_epoch(e)
        epochs.append(a[0])
    assert _same(epochs[0], s0)
    assert not all(_same(epochs[0], x) for x in epochs[1:])


def test_original_rng_plumbing_consumes_draws_in_order(tmp_path):
    img_dir, ann = make_coco(tmp_path)
    np.random.seed(3)
    random.seed(3)
    ds = CocoPoseDataset(img_dir, ann, train=True, augment=True)
    first = ds[0]
    # geometry: choice, randint ×2 (random crop; borders 128 and 64 for 320 × 240), random (rot),
    # random (flip), all from numpy's global RNG
    ref = np.random.RandomState(3)
    scale = ref.choice(np.arange(0.6, 1.4, 0.1))
    cx, cy = ref.randint(128, 320 - 128), ref.randint(64, 240 - 64)
    ref.random()
    flipped = ref.random() < 0.5
    assert first["meta"]["s"] == 320 * scale
    assert first["meta"]["c"].tolist() == [320 - 1 - cx if flipped else cx, cy]
    assert np.random.random() == ref.random()
    # colour: 3 uniform + normal(3) from the dataset's own RandomState(123), never reseeded (QUIRK D14)
    col = np.random.RandomState(123)
    [col.uniform(-0.4, 0.4) for _ in range(3)], col.normal(0, 0.1, 3)
    assert ds.data_rng.random() == col.random()
    # replaying the same seeds on a fresh dataset reproduces the sample bit for bit
    np.random.seed(3)
    random.seed(3)
    assert _same(CocoPoseDataset(img_dir, ann, train=True, augment=True)[0], first)
    # explicit injectable generators give the same result as the same seeds in the original plumbing
    ds2 = CocoPoseDataset(img_dir, ann, train=True, augment=True)
    rngs = SampleRngs(geometry=np.random.RandomState(3), shuffle=random.Random(3), color=np.random.RandomState(123))
    assert _same(ds2.get_sample(0, rngs), first)


# -- flip ----------------------------------------------------------------------------------------------
def test_flip_mirrors_about_crop_centre_and_swaps_joints(coco_mini):
    kw = dict(train=True, augment=True, rand_crop=False, shift=0.0, scale=0.0, color_aug=False, rng="per_sample")
    ann = coco_mini / "annotations" / "person_keypoints_val2017.json"
    plain = CocoPoseDataset(coco_mini / "val2017", ann, flip=0.0, **kw)[0]
    flipped = CocoPoseDataset(coco_mini / "val2017", ann, flip=1.0, **kw)[0]
    # QUIRK D12: flipped input column u is the unflipped column 512 − u (not 511 − u)
    np.testing.assert_array_equal(flipped["input"][:, :, 1:], plain["input"][:, :, :0:-1])
    assert flipped["meta"]["c"][0] == 640 - 1 - plain["meta"]["c"][0]
    fi = COCO_PERSON.flip_index
    pm, fm = plain["hp_mask"].reshape(32, J), flipped["hp_mask"].reshape(32, J)
    both = (pm[:, fi] == 1) & (fm == 1)
    assert both.sum() > 10
    px = (plain["hp_ind"] % 128 + plain["hp_offset"][:, 0]).reshape(32, J)
    fx = (flipped["hp_ind"] % 128 + flipped["hp_offset"][:, 0]).reshape(32, J)
    np.testing.assert_allclose(fx[both], 128 - px[:, fi][both], atol=1e-3)
    np.testing.assert_array_equal(flipped["reg_mask"], plain["reg_mask"])


# -- photometric stage ---------------------------------------------------------------------------------
def test_color_aug_matches_written_formula():
    rng = np.random.default_rng(0)
    img = rng.random((8, 9, 3), dtype=np.float32)
    grey = img[..., 0].astype(np.float64) * 0.114 + img[..., 1] * 0.587 + img[..., 2] * 0.299
    a = np.array([1.2, 0.7, 1.1])
    light = np.array([0.05, -0.1, 0.02])
    out = color_aug(img.copy(), ["saturation", "contrast", "brightness"], a, light)
    ref = img.astype(np.float64)
    ref = a[0] * ref + (1 - a[0]) * grey[..., None]
    ref = a[1] * ref + (1 - a[1]) * grey.mean()  # grey computed once, before any op (QUIRK D14)
    ref = a[2] * ref + (EIG_VEC.astype(np.float64) @ (EIG_VAL * light))
    np.testing.assert_allclose(out, ref, atol=2e-5)
    t = CornerNetColorAug(shuffle_rng=random.Random(0), color_rng=np.random.RandomState(0))
    p1 = t.get_params()
    t.bind_rngs(random.Random(0), np.random.RandomState(0))
    p2 = t.get_params()
    assert (
        p1["ops"] == p2["ops"]
        and p1["alphas"] == p2["alphas"]
        and sorted(p1["ops"]) == ["brightness", "contrast", "saturation"]
    )


def test_extra_transform_is_applied_and_spatial_rejected(tmp_path):
    img_dir, ann = make_coco(tmp_path)
    kw = dict(train=True, augment=True, rng="per_sample", color_aug=False)
    plain = CocoPoseDataset(img_dir, ann, **kw)[0]["input"]
    inverted = CocoPoseDataset(img_dir, ann, extra_transforms=[A.InvertImg(p=1.0)], **kw)[0]["input"]
    mean, std = COCO_MEAN_BGR.reshape(3, 1, 1), COCO_STD_BGR.reshape(3, 1, 1)
    np.testing.assert_allclose(inverted * std + mean, 1 - (plain * std + mean), atol=1e-5)
    with pytest.raises(TypeError, match="spatial"):
        CocoPoseDataset(img_dir, ann, extra_transforms=[A.HorizontalFlip(p=1.0)])


def test_rgb_channel_order(tmp_path):
    img_dir, ann = make_coco(tmp_path)
    bgr = CocoPoseDataset(img_dir, ann, train=False, augment=False)[0]["input"]
    rgb = CocoPoseDataset(img_dir, ann, train=False, augment=False, channel_order="rgb")[0]["input"]
    np.testing.assert_array_equal(rgb, bgr[::-1])


# -- errors --------------------------------------------------------------------------------------------
def test_missing_annotation_file_names_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.json"):
        CocoPoseDataset(tmp_path, tmp_path / "nope.json")


def test_missing_and_corrupt_images_name_the_file(tmp_path):
    img_dir, ann = make_coco(tmp_path)
    (img_dir / "a.jpg").unlink()
    ds = CocoPoseDataset(img_dir, ann, train=False, augment=False)
    with pytest.raises(FileNotFoundError, match=r"image 1: .*a\.jpg"):
        ds[0]
    (img_dir / "b.jpg").write_bytes(b"this is not a jpeg")
    with pytest.raises(ValueError, match=r"image 2: cannot decode .*b\.jpg"):
        ds[1]


@pytest.mark.parametrize(
    "bad,match",
    [
        ({"bbox": [1, 2, 3]}, "'bbox' must be 4 numbers"),
        ({"bbox": [1, 2, -3, 4]}, "w, h >= 0"),
        ({"keypoints": [1, 2, 2]}, "'keypoints' must hold 51"),
        ({"category_id": 3}, "category_id 3"),
    ],
)
def test_malformed_annotation_names_file_image_and_annotation(tmp_path, bad, match):
    a = _ann(77, 1, [10, 10, 50, 50], {0: (20, 20)})
    a.update(bad)
    img_dir, ann = make_coco(tmp_path, anns=[a])
    ds = CocoPoseDataset(img_dir, ann, train=True, augment=False)
    with pytest.raises(ValueError, match=match) as e:
        ds[0]
    assert "ann.json" in str(e.value) and "image 1" in str(e.value) and "annotation 77" in str(e.value)


def test_unreadable_annotation_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        CocoPoseDataset(tmp_path, bad)


# -- one warp: flip and DCT-scaled decode folded into the affine map ------------------------------------
def test_folded_flip_warp_equals_mirrored_copy_bit_for_bit(coco_mini):
    from centerpose.data.augment import Geometry, draw_train_geometry, sample_transforms, warp_image

    rng = np.random.RandomState(0)
    for path in sorted((coco_mini / "train2017").glob("*.jpg"))[:6]:
        img = cv2.imread(str(path))
        h, w = img.shape[:2]
        for rot in (0.0, 12.5, -30.0):
            geo = draw_train_geometry(w, h, rng, flip=1.0)
            geo = Geometry(c=geo.c, s=geo.s, rot=rot, flipped=True)
            trans_input = sample_transforms(geo, 512, 128)[0]
            want = cv2.warpAffine(cv2.flip(img, 1), trans_input, (512, 512), flags=cv2.INTER_LINEAR)
            np.testing.assert_array_equal(warp_image(img, geo, trans_input, 512), want)  # rotated: the copy


def test_jpeg_size_reads_the_frame_header(coco_mini, tmp_path):
    from centerpose.data.image_io import jpeg_size

    for path in sorted((coco_mini / "val2017").glob("*.jpg"))[:10]:
        assert jpeg_size(path.read_bytes()) == cv2.imread(str(path)).shape[:2]
    png = cv2.imencode(".png", np.zeros((5, 7, 3), np.uint8))[1].tobytes()
    assert jpeg_size(png) is None and jpeg_size(b"\xff\xd8garbage") is None
    # An Exif segment (its orientation may turn the decoded image): no header size, a full decode.
    jpg = cv2.imencode(".jpg", np.zeros((5, 7, 3), np.uint8))[1].tobytes()
    exif = b"\xff\xe1" + (2 + 6 + 8).to_bytes(2, "big") + b"Exif\0\0" + b"II*\0\x08\0\0\0"
    assert jpeg_size(jpg) == (5, 7) and jpeg_size(jpg[:2] + exif + jpg[2:]) is None


def test_reduction_factor():
    from centerpose.data.augment import reduction_factor

    assert [reduction_factor(s, 512) for s in (832, 1023, 1024, 2100, 4096, 9000)] == [1, 1, 2, 4, 8, 8]


def test_decode_reduction_auto_is_identical_where_the_crop_never_shrinks_2x(coco_mini):
    # coco-mini images are <= 640 px: at input 512 the crop shrinks at most 1.625x, so "auto" decodes in full.
    ann = coco_mini / "annotations" / "person_keypoints_train2017.json"
    kw = dict(input_format="uint8", joint_heatmaps="sparse")
    off = CocoPoseDataset(coco_mini / "train2017", ann, **kw)
    auto = CocoPoseDataset(coco_mini / "train2017", ann, decode_reduction="auto", **kw)
    for i in range(6):
        a, b = off.get_sample(i, SampleRngs.seeded(i)), auto.get_sample(i, SampleRngs.seeded(i))
        assert a.keys() == b.keys()
        for k in a:
            if k != "meta":
                np.testing.assert_array_equal(a[k], b[k])


def test_decode_reduction_auto_is_close_to_the_full_decode_when_it_shrinks(coco_mini):
    from centerpose.data.augment import reduction_factor

    ann = coco_mini / "annotations" / "person_keypoints_train2017.json"
    kw = dict(input_size=128, input_format="uint8", joint_heatmaps="sparse", color_aug=False)
    off = CocoPoseDataset(coco_mini / "train2017", ann, **kw)
    auto = CocoPoseDataset(coco_mini / "train2017", ann, decode_reduction="auto", **kw)
    reduced = 0
    for i in range(8):
        a, b = off.get_sample(i, SampleRngs.seeded(i)), auto.get_sample(i, SampleRngs.seeded(i))
        reduced += reduction_factor(a["meta"]["s"], 128) > 1
        for k in a:  # the targets and the colour map do not depend on the decode
            if k not in ("meta", "image"):
                np.testing.assert_array_equal(a[k], b[k])
        # Full-resolution bilinear at 2-8x shrink aliases, the DCT-scaled decode averages: they differ pixel by
        # pixel (mean |diff| 5-10 here) but not in place: smoothed, they agree, and best with no shift.
        smooth = [cv2.GaussianBlur(s["image"].astype(np.float32), (0, 0), 2)[8:-8, 8:-8] for s in (a, b)]
        diff = np.abs(smooth[0] - smooth[1]).mean()
        shifted = np.abs(smooth[0][1:, 1:] - smooth[1][:-1, :-1]).mean()
        assert diff < 4.0 and diff < shifted, (diff, shifted)
    assert reduced >= 4


def test_decode_reduction_auto_still_names_bad_files(tmp_path):
    img_dir, ann = make_coco(tmp_path)
    data = (img_dir / "a.jpg").read_bytes()
    (img_dir / "a.jpg").write_bytes(data[: len(data) // 2])
    ds = CocoPoseDataset(img_dir, ann, input_size=64, decode_reduction="auto")
    with pytest.raises(ValueError, match=r"image 1: truncated JPEG .*a\.jpg"):
        ds.get_sample(0)
    with pytest.raises(ValueError, match="decode_reduction"):
        CocoPoseDataset(img_dir, ann, decode_reduction="yes")
