"""Time the pre-flight check on a generated COCO-sized split (64 K images, 150 K people by default).

    python scripts/bench_preflight.py --out /tmp/coco_sized

Writes ``person_keypoints_train2017.json`` (COCO's field layout: 17-joint keypoints, bbox, area, iscrowd,
a 16-vertex segmentation polygon per person) and one empty file per image (existence is what is checked),
then prints the file size, the time of a bare ``json.load`` of it and the time of
:func:`centerpose.data.preflight.check_split` side by side (the check's own cost is the difference).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from centerpose.data.preflight import check_split
from centerpose.keypoints import COCO_PERSON


def write_coco_sized(out: Path, num_images: int, num_people: int, seed: int = 0) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    image_dir, ann_dir = out / "train2017", out / "annotations"
    image_dir.mkdir(parents=True, exist_ok=True)
    ann_dir.mkdir(parents=True, exist_ok=True)
    images = [
        {
            "id": i + 1,
            "file_name": f"{i + 1:012d}.jpg",
            "width": 640,
            "height": 480,
            "license": 1,
            "date_captured": "2013-11-14 16:28:13",
        }
        for i in range(num_images)
    ]
    for img in images:
        (image_dir / img["file_name"]).touch()
    owners = rng.integers(1, num_images + 1, num_people)
    xy = rng.uniform(0, 400, (num_people, 2)).round(2)
    wh = rng.uniform(10, 200, (num_people, 2)).round(2)
    kps = rng.uniform(0, 600, (num_people, 17, 3)).round(1)
    kps[..., 2] = rng.integers(0, 3, (num_people, 17))
    poly = rng.uniform(0, 600, (num_people, 32)).round(2)
    anns = [
        {
            "segmentation": [poly[k].tolist()],
            "num_keypoints": int((kps[k, :, 2] > 0).sum()),
            "area": float(wh[k, 0] * wh[k, 1]),
            "iscrowd": 0,
            "keypoints": kps[k].reshape(-1).tolist(),
            "image_id": int(owners[k]),
            "bbox": [*xy[k].tolist(), *wh[k].tolist()],
            "category_id": 1,
            "id": 100000 + k,
        }
        for k in range(num_people)
    ]
    category = {
        "supercategory": "person",
        "id": 1,
        "name": "person",
        "keypoints": list(COCO_PERSON.names),
        "skeleton": [[a + 1, b + 1] for a, b in COCO_PERSON.skeleton],
    }
    ann_file = ann_dir / "person_keypoints_train2017.json"
    ann_file.write_text(
        json.dumps({"info": {}, "licenses": [], "images": images, "annotations": anns, "categories": [category]})
    )
    return ann_file, image_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/coco_sized"))
    parser.add_argument("--images", type=int, default=64_000)
    parser.add_argument("--people", type=int, default=150_000)
    args = parser.parse_args()
    ann_file, image_dir = args.out / "annotations" / "person_keypoints_train2017.json", args.out / "train2017"
    if not ann_file.is_file():
        start = time.perf_counter()
        write_coco_sized(args.out, args.images, args.people)
        print(f"generated in {time.perf_counter() - start:.1f} s")
    # CPU seconds beside wall seconds: on a shared machine the wall time mostly measures the other jobs.
    start, cpu = time.perf_counter(), time.process_time()
    with open(ann_file, "rb") as f:
        json.load(f)
    bare, bare_cpu = time.perf_counter() - start, time.process_time() - cpu
    cpu = time.process_time()
    report = check_split(ann_file, image_dir, COCO_PERSON.num_joints)
    check_cpu = time.process_time() - cpu
    print(
        f"{ann_file} ({ann_file.stat().st_size / 2**20:.0f} MiB): json.load {bare:.2f} s wall / {bare_cpu:.2f} s "
        f"CPU | pre-flight {report.seconds:.2f} s wall / {check_cpu:.2f} s CPU ({report.num_images} images, "
        f"{report.num_annotations} annotations, {len(report.problems)} problems)"
    )


if __name__ == "__main__":
    main()
