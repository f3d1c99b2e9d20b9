"""Learning on real images: the whole COCO loop memorises a handful of real coco-mini images (slow, CPU minutes)."""

from __future__ import annotations

import sys

import pytest
from conftest import REPO

# recipe -> the keypoint AP the final 20-minute validation must reach. Measured on the 2-core CPU (README,
# "Learning on real images"): the original's targets and decode 0.78-0.82 (AP50 1.0 from minute 6); with
# issue 10's switches 0.99 (>= 0.95 from minute 11). A broken flip pair, target or decode stays far below.
MIN_AP = {"original": 0.7, "improved": 0.9}


@pytest.mark.slow
@pytest.mark.parametrize("recipe", list(MIN_AP))
def test_memorises_eight_real_images(recipe, coco_mini, tmp_path):
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import bench_learning
    finally:
        sys.path.remove(str(REPO / "scripts"))
    # trained and evaluated on the same 8 images: keypoint AP climbs towards 1 if augmentation, encoding, loss,
    # decoding and evaluation agree
    ap = bench_learning.main(
        ["--coco-mini", str(coco_mini), "--out", str(tmp_path), "--images", "8", "--minutes", "20", "--recipe", recipe]
    )
    assert ap >= MIN_AP[recipe]
