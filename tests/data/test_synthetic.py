"""The embedded synthetic COCO person-keypoints dataset: layout, COCO conventions, determinism, idempotence."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from centerpose.data.synthetic import MARKER_NAME, ensure_synthetic_coco, main, write_synthetic_coco
from centerpose.keypoints import COCO_PERSON, KeypointSpec

SPLITS = ("train", "val")


def _load(root: Path, split: str) -> dict:
    return json.loads((root / "annotations" / f"person_keypoints_{split}2017.json").read_text())


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return write_synthetic_coco(tmp_path_factory.mktemp("synthetic"), num_train=24, num_val=8, seed=0)


@pytest.fixture(scope="module")
def annotations(dataset) -> dict[str, dict]:
    return {split: _load(dataset, split) for split in SPLITS}


def test_layout_and_images(dataset, annotations):
    for split in SPLITS:
        data = annotations[split]
        assert len(data["images"]) == {"train": 24, "val": 8}[split]
        jpgs = sorted(p.name for p in (dataset / f"{split}2017").glob("*.jpg"))
        assert jpgs == sorted(im["file_name"] for im in data["images"])
        for im in data["images"]:
            assert im["file_name"] == f"{im['id']:012d}.jpg"
            img = cv2.imread(str(dataset / f"{split}2017" / im["file_name"]))
            assert img.shape == (im["height"], im["width"], 3) == (256, 256, 3)
    assert (dataset / MARKER_NAME).is_file()


def test_pycocotools_loads_it(dataset):
    for split in SPLITS:
        coco = COCO(str(dataset / "annotations" / f"person_keypoints_{split}2017.json"))
        assert coco.getCatIds() == [1]
        cat = coco.loadCats(1)[0]
        assert cat["name"] == "person"
        assert tuple(cat["keypoints"]) == COCO_PERSON.names
        assert [tuple(e) for e in cat["skeleton"]] == [(a + 1, b + 1) for a, b in COCO_PERSON.skeleton]
        assert len(coco.getAnnIds(catIds=[1])) == len(coco.dataset["annotations"]) > 0
        # COCOeval-style loading of the annotations as results works too (keypoint area/bbox derivation).
        res = coco.loadRes([dict(a, score=1.0) for a in coco.dataset["annotations"]][:5])
        assert len(res.getAnnIds()) == 5


def test_ids_unique_across_splits(annotations):
    image_ids = [im["id"] for s in SPLITS for im in annotations[s]["images"]]
    ann_ids = [a["id"] for s in SPLITS for a in annotations[s]["annotations"]]
    assert len(set(image_ids)) == len(image_ids)
    assert len(set(ann_ids)) == len(ann_ids)
    for s in SPLITS:
        known = {im["id"] for im in annotations[s]["images"]}
        assert all(a["image_id"] in known for a in annotations[s]["annotations"])


def test_annotation_fields_follow_coco(annotations):
    j = COCO_PERSON.num_joints
    for s in SPLITS:
        sizes = {im["id"]: (im["width"], im["height"]) for im in annotations[s]["images"]}
        for a in annotations[s]["annotations"]:
            w, h = sizes[a["image_id"]]
            assert a["iscrowd"] == 0 and a["category_id"] == 1
            kp = np.asarray(a["keypoints"]).reshape(j, 3)
            assert kp.dtype.kind == "i" and set(np.unique(kp[:, 2])) <= {0, 1, 2}
            assert a["num_keypoints"] == int((kp[:, 2] > 0).sum())
            labelled = kp[kp[:, 2] > 0]
            assert ((labelled[:, 0] >= 0) & (labelled[:, 0] < w) & (labelled[:, 1] >= 0) & (labelled[:, 1] < h)).all()
            assert (kp[kp[:, 2] == 0, :2] == 0).all()
            x, y, bw, bh = a["bbox"]
            assert 0 <= x and 0 <= y and bw > 0 and bh > 0 and x + bw <= w and y + bh <= h
            visible = kp[kp[:, 2] == 2]
            assert ((visible[:, 0] >= x) & (visible[:, 0] < x + bw)).all()
            assert ((visible[:, 1] >= y) & (visible[:, 1] < y + bh)).all()
            assert 0 < a["area"] <= bw * bh
            assert a["segmentation"] and all(len(poly) >= 6 for poly in a["segmentation"])


def test_variety_occlusion_crowding_and_sizes(annotations):
    anns = [a for s in SPLITS for a in annotations[s]["annotations"]]
    v = np.concatenate([np.asarray(a["keypoints"])[2::3] for a in anns])
    assert (v == 1).sum() > 0, "no joint is covered by another person"
    assert (v == 0).sum() > 0, "no joint falls outside the image"
    assert (v == 2).mean() > 0.7, "most joints should be visible"
    per_image = Counter(a["image_id"] for a in anns)
    assert max(per_image.values()) >= 2 and min(per_image.values()) == 1
    heights = [a["bbox"][3] for a in anns]
    assert min(heights) < 70 and max(heights) > 140


def test_single_person_images_have_no_occluded_joints(annotations):
    for s in SPLITS:
        per_image = Counter(a["image_id"] for a in annotations[s]["annotations"])
        for a in annotations[s]["annotations"]:
            if per_image[a["image_id"]] == 1:
                assert 1 not in a["keypoints"][2::3], f"annotation {a['id']} is alone yet has an occluded joint"


def test_figures_stand_out_from_the_background(dataset, annotations):
    """The saturated figures must be more colourful than the muted background (a learnability proxy)."""
    im = next(
        im
        for im in annotations["train"]["images"]
        if any(a["image_id"] == im["id"] for a in annotations["train"]["annotations"])
    )
    img = cv2.imread(str(dataset / "train2017" / im["file_name"]))
    sat = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)[..., 1].astype(float)
    inside = np.zeros(sat.shape, bool)
    for a in annotations["train"]["annotations"]:
        if a["image_id"] == im["id"]:
            x, y, w, h = (int(v) for v in a["bbox"])
            inside[y : y + h, x : x + w] = True
    assert np.percentile(sat[inside], 90) > np.percentile(sat[~inside], 90) + 40


def test_deterministic_by_seed(tmp_path):
    a = write_synthetic_coco(tmp_path / "a", num_train=6, num_val=3, seed=5)
    b = write_synthetic_coco(tmp_path / "b", num_train=6, num_val=3, seed=5)
    c = write_synthetic_coco(tmp_path / "c", num_train=6, num_val=3, seed=6)
    ha, hb, hc = _hashes(a), _hashes(b), _hashes(c)
    assert ha == hb
    assert ha.keys() == hc.keys()
    assert ha["annotations/person_keypoints_train2017.json"] != hc["annotations/person_keypoints_train2017.json"]
    assert sum(ha[k] != hc[k] for k in ha if k.endswith(".jpg")) == 9
    # Each image depends only on (seed, split, index): a shorter run reproduces the first images exactly.
    d = write_synthetic_coco(tmp_path / "d", num_train=2, num_val=3, seed=5)
    hd = _hashes(d)
    assert all(hd[k] == ha[k] for k in hd if k.endswith(".jpg"))
    assert hd["annotations/person_keypoints_val2017.json"] == ha["annotations/person_keypoints_val2017.json"]


def test_ensure_is_idempotent_and_regenerates_on_new_config(tmp_path, monkeypatch):
    root = tmp_path / "syn"
    ensure_synthetic_coco(root, num_train=4, num_val=2, seed=1)
    before = _hashes(root)
    import centerpose.data.synthetic as synthetic

    def fail(*args, **kwargs):
        raise AssertionError("rewrote an up-to-date dataset")

    with monkeypatch.context() as m:
        m.setattr(synthetic, "write_synthetic_coco", fail)
        ensure_synthetic_coco(root, num_train=4, num_val=2, seed=1)
    assert _hashes(root) == before
    ensure_synthetic_coco(root, num_train=2, num_val=2, seed=1)
    assert len(list((root / "train2017").glob("*.jpg"))) == 2  # stale images of the old config are gone
    assert json.loads((root / MARKER_NAME).read_text())["num_train"] == 2


def test_refuses_to_overwrite_a_foreign_dataset(tmp_path):
    ann = tmp_path / "annotations" / "person_keypoints_train2017.json"
    ann.parent.mkdir(parents=True)
    ann.write_text("{}")
    with pytest.raises(FileExistsError, match="refusing"):
        ensure_synthetic_coco(tmp_path, num_train=1, num_val=1)
    assert ann.read_text() == "{}"


def test_subset_keypoint_spec(tmp_path):
    spec = KeypointSpec(
        names=("nose", "left_eye", "right_eye", "left_ankle", "right_ankle"),
        flip_pairs=((1, 2), (3, 4)),
        skeleton=((0, 1), (0, 2), (3, 4)),
    )
    full = _load(write_synthetic_coco(tmp_path / "full", num_train=3, num_val=0, seed=2), "train")
    sub = _load(write_synthetic_coco(tmp_path / "sub", num_train=3, num_val=0, seed=2, keypoints=spec), "train")
    assert sub["categories"][0]["keypoints"] == list(spec.names)
    assert sub["categories"][0]["skeleton"] == [[1, 2], [1, 3], [4, 5]]
    cols = [COCO_PERSON.names.index(n) for n in spec.names]
    assert len(sub["annotations"]) == len(full["annotations"]) > 0
    for a, b in zip(full["annotations"], sub["annotations"]):
        assert np.array_equal(np.reshape(a["keypoints"], (-1, 3))[cols], np.reshape(b["keypoints"], (-1, 3)))
        assert a["bbox"] == b["bbox"]


def test_bad_arguments_raise_clear_errors(tmp_path):
    odd = KeypointSpec(names=("nose", "tail"), flip_pairs=())
    with pytest.raises(ValueError, match="tail"):
        write_synthetic_coco(tmp_path, keypoints=odd)
    with pytest.raises(ValueError, match="max_people"):
        write_synthetic_coco(tmp_path, max_people=100)
    with pytest.raises(ValueError, match="image_size"):
        write_synthetic_coco(tmp_path, image_size=(16, 16))
    assert not (tmp_path / "annotations").exists()


def test_cli(tmp_path, capsys):
    main(["--root", str(tmp_path), "--num-train", "2", "--num-val", "1", "--size", "128", "96", "--seed", "3"])
    assert "2 train + 1 val" in capsys.readouterr().out
    data = _load(tmp_path, "val")
    assert [(im["width"], im["height"]) for im in data["images"]] == [(128, 96)]
    assert cv2.imread(str(tmp_path / "val2017" / data["images"][0]["file_name"])).shape == (96, 128, 3)


@pytest.mark.skipif(
    importlib.util.find_spec("centerpose.data.coco") is None,
    reason="centerpose.data.coco (CocoPoseDataset) not available",
)
def test_coco_pose_dataset_reads_it(dataset, annotations):
    from centerpose.data.coco import CocoPoseDataset

    image_dir, ann_file = dataset / "val2017", dataset / "annotations" / "person_keypoints_val2017.json"
    val = CocoPoseDataset(image_dir, ann_file, train=False, augment=False, input_size=256, keypoints=COCO_PERSON)
    assert len(val) == len(annotations["val"]["images"])
    assert val[0]["input"].shape[0] == 3
    image_dir, ann_file = dataset / "train2017", dataset / "annotations" / "person_keypoints_train2017.json"
    train = CocoPoseDataset(image_dir, ann_file, train=True, augment=False, input_size=256, keypoints=COCO_PERSON)
    with_people = {a["image_id"] for a in annotations["train"]["annotations"]}
    assert len(train) == len(with_people)
    sample = train[0]
    assert sample["input"].shape == (3, 256, 256)
    assert sample["hm"].max() == 1.0 and sample["reg_mask"].sum() >= 1  # at least one person centre
