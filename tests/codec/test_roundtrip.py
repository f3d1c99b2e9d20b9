"""Encode → oracle outputs → decode → post-process round trip on coco-mini val (METHOD §1.4, §3.2–3.7)."""

from __future__ import annotations

import numpy as np
import pytest
from torch.utils.data import default_collate

from centerpose.codec.decode import decode
from centerpose.codec.oracle import oracle_outputs
from centerpose.codec.postprocess import split_results, to_image_coords
from centerpose.data.coco import CocoPoseDataset
from centerpose.evaluation.coco import evaluate_coco, to_coco_results

OUT = 128


@pytest.fixture(scope="module")
def val(coco_mini):
    ds = CocoPoseDataset(coco_mini / "val2017", coco_mini / "annotations" / "person_keypoints_val2017.json",
                         train=False, augment=False)
    return ds, default_collate([ds[i] for i in range(len(ds))])


def _decoded(batch, variant):
    dets = decode(oracle_outputs(batch, variant), K=100)
    return to_image_coords(dets, batch["meta"]["c"], batch["meta"]["s"], OUT)


@pytest.mark.parametrize("variant, bound_cells", [
    ({"hm", "kps"}, 1e-3),  # regressed joints are exact offsets from the integer centre
    ({"hm", "kps", "hm_hp"}, 0.5),  # snapped to the cell centre of the truncated joint
    ({"hm", "kps", "hm_hp", "hp_offset"}, 1.0),  # within one output cell (4 input pixels)
])
def test_keypoints_come_back(val, variant, bound_cells):
    ds, batch = val
    boxes, scores, kps = split_results(_decoded(batch, variant))
    errors = []
    for i, img_id in enumerate(batch["meta"]["img_id"].tolist()):
        cell_px = float(batch["meta"]["s"][i]) / OUT  # image pixels per output cell
        found = kps[i][scores[i] == 1.0].numpy()  # one row per encoded centre
        anns = ds.coco.loadAnns(ds.coco.getAnnIds(imgIds=img_id))[: ds.max_objs]
        for k, ann in enumerate(anns):
            if not batch["reg_mask"][i, k]:
                continue
            gt = np.asarray(ann["keypoints"], np.float32).reshape(-1, 3)
            lab = gt[:, 2] > 0
            err = np.abs(found[:, lab] - gt[None, lab, :2]).max(axis=(1, 2)).min() / cell_px
            errors.append(err)
    assert len(errors) == int(batch["reg_mask"].sum()) > 50
    assert max(errors) <= bound_cells + 1e-5


def test_oracle_ap_through_our_encoder(val):
    """§3.7 'all' row, with targets from our dataset instead of the golden dump."""
    ds, batch = val
    res = _decoded(batch, {"hm", "kps", "hm_hp", "hp_offset"}).numpy()
    ids = batch["meta"]["img_id"].tolist()
    stats = evaluate_coco(ds.coco, to_coco_results({img_id: res[n] for n, img_id in enumerate(ids)}))
    assert (stats["AP"], stats["AR"], stats["bbox_AP"]) == pytest.approx((0.9778, 0.9794, 0.9673), abs=5e-5)
