"""A small COCO-format person-keypoints dataset of drawn figures: the package's built-in default data.

Each image holds a few stylised people (filled limbs with dark outlines, a dark head with a lighter face, eyes,
nose and ears) on a muted textured background (noise, stripes, gradients or blobs). Figures vary in pose, lean,
turn and size (40-200 px tall at 256 x 256), overlap each other and sometimes leave the image. Annotations follow
COCO's ``person_keypoints_*.json`` exactly: ``v = 2`` visible, ``v = 1`` covered by a person drawn on top,
``v = 0`` (with ``x = y = 0``) outside the image. Everyone faces the camera, so the person's left side is on the
image's right; left limbs are also drawn a shade darker than right ones. The output is a pure function of the
arguments: the same seed gives byte-identical JSON and identical pixels.

Layout written under ``root``::

    annotations/person_keypoints_train2017.json
    annotations/person_keypoints_val2017.json
    train2017/000000000001.jpg ...
    val2017/000000900001.jpg ...
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from centerpose.data.synthetic_scene import FIGURE_JOINTS, JOINT_ALIASES, render_image
from centerpose.keypoints import COCO_PERSON, CROWDPOSE, KeypointSpec

__all__ = ["MARKER_NAME", "ensure_synthetic_coco", "main", "synthetic_config", "write_synthetic_coco"]

MARKER_NAME = ".centerpose_synthetic.json"
_FORMAT_VERSION = 1
_SPLITS = ("train", "val")
# Image ids: train 1.., val 900001.. so ids are unique across splits and stable when the other split's size changes.
_VAL_ID_OFFSET = 900_000
# Annotation id = image id * 100 + person index, unique across the whole dataset.
_MAX_PEOPLE = 99
_JPEG_QUALITY = 95


def _check_spec(keypoints: KeypointSpec) -> None:
    unknown = [n for n in keypoints.names if JOINT_ALIASES.get(n, n) not in FIGURE_JOINTS]
    if unknown:
        raise ValueError(
            f"synthetic COCO: the drawn figures have no joint(s) {unknown}; a KeypointSpec for this "
            f"dataset may only use the joint names {list(FIGURE_JOINTS) + list(JOINT_ALIASES)} "
            "(e.g. keypoints=coco_person or keypoints=crowdpose)"
        )


def _normalise_size(image_size: int | Sequence[int]) -> tuple[int, int]:
    size = (int(image_size), int(image_size)) if np.isscalar(image_size) else tuple(int(s) for s in image_size)
    if len(size) != 2 or min(size) < 32:
        raise ValueError(f"synthetic COCO: image_size must be (width, height) with both >= 32, got {image_size!r}")
    return size  # type: ignore[return-value]


def synthetic_config(
    num_train: int = 64,
    num_val: int = 16,
    image_size: int | Sequence[int] = (256, 256),
    max_people: int = 3,
    seed: int = 0,
    keypoints: KeypointSpec = COCO_PERSON,
) -> dict:
    """The JSON-able description of one dataset, as recorded in the marker file (validates the arguments)."""
    width, height = _normalise_size(image_size)
    if not 0 <= num_train < _VAL_ID_OFFSET or not 0 <= num_val < _VAL_ID_OFFSET:
        raise ValueError(
            f"synthetic COCO: num_train/num_val must be in [0, {_VAL_ID_OFFSET}), got {num_train}/{num_val}"
        )
    if not 0 <= max_people <= _MAX_PEOPLE:
        raise ValueError(f"synthetic COCO: max_people must be in [0, {_MAX_PEOPLE}], got {max_people}")
    _check_spec(keypoints)
    return {
        "version": _FORMAT_VERSION,
        "num_train": int(num_train),
        "num_val": int(num_val),
        "image_size": [width, height],
        "max_people": int(max_people),
        "seed": int(seed),
        "keypoints": list(keypoints.names),
    }


def _split_json(split: str, config: dict, keypoints: KeypointSpec, image_dir: Path) -> dict:
    width, height = config["image_size"]
    split_code = _SPLITS.index(split)
    id_offset = _VAL_ID_OFFSET if split == "val" else 0
    images, annotations = [], []
    for i in range(config[f"num_{split}"]):
        # One generator per image: an image depends only on (seed, split, index), not on the other images.
        rng = np.random.default_rng([config["seed"], split_code, i])
        image_id = id_offset + i + 1
        file_name = f"{image_id:012d}.jpg"
        img, anns = render_image(rng, width, height, config["max_people"], image_id, keypoints)
        if not cv2.imwrite(str(image_dir / file_name), img, [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY]):
            raise OSError(f"synthetic COCO: could not write {image_dir / file_name}")
        images.append({"id": image_id, "file_name": file_name, "width": width, "height": height})
        annotations += anns
    category = {
        "supercategory": keypoints.category_name,
        "id": 1,
        "name": keypoints.category_name,
        "keypoints": list(keypoints.names),
        "skeleton": [[a + 1, b + 1] for a, b in keypoints.skeleton],
    }
    info = {
        "description": f"centerpose synthetic people ({split}, seed {config['seed']})",
        "version": str(_FORMAT_VERSION),
        "year": 2017,
        "contributor": "centerpose.data.synthetic",
    }
    return {"info": info, "licenses": [], "images": images, "annotations": annotations, "categories": [category]}


def write_synthetic_coco(
    root: str | Path,
    num_train: int = 64,
    num_val: int = 16,
    image_size: int | Sequence[int] = (256, 256),
    max_people: int = 3,
    seed: int = 0,
    keypoints: KeypointSpec = COCO_PERSON,
) -> Path:
    """Write a synthetic COCO person-keypoints dataset under ``root`` (always; see :func:`ensure_synthetic_coco`).

    Args:
        root: dataset folder; receives ``annotations/``, ``train2017/``, ``val2017/`` and a marker file.
        num_train: number of training images.
        num_val: number of validation images.
        image_size: (width, height) of every image, or one int for square images.
        max_people: at most this many people per image (a few images have none).
        seed: everything is a pure function of the arguments; the same seed gives identical files.
        keypoints: joints to annotate, in this order; their names must be COCO person joint names.

    Returns:
        ``root`` as a Path.

    Raises:
        FileExistsError: ``root`` holds annotations that this module did not write (no marker file).
    """
    config = synthetic_config(num_train, num_val, image_size, max_people, seed, keypoints)
    root = Path(root)
    marker = root / MARKER_NAME
    ann_dir = root / "annotations"
    existing = [ann_dir / f"person_keypoints_{s}2017.json" for s in _SPLITS]
    if not marker.is_file() and any(p.exists() for p in existing):
        raise FileExistsError(
            f"synthetic COCO: {ann_dir} already holds annotations not written by this generator "
            f"(no {MARKER_NAME}); refusing to overwrite them"
        )
    marker.unlink(missing_ok=True)  # an interrupted write must not look complete
    ann_dir.mkdir(parents=True, exist_ok=True)
    for split in _SPLITS:
        image_dir = root / f"{split}2017"
        image_dir.mkdir(parents=True, exist_ok=True)
        for old in image_dir.glob("[0-9]*.jpg"):  # images of an earlier, possibly larger, synthetic config
            old.unlink()
        data = _split_json(split, config, keypoints, image_dir)
        path = ann_dir / f"person_keypoints_{split}2017.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, separators=(",", ":")))
        tmp.replace(path)
    marker.write_text(json.dumps(config, indent=1))
    return root


def ensure_synthetic_coco(root: str | Path, **kwargs) -> Path:
    """Write the dataset only when ``root`` lacks it or holds one made with different arguments.

    Args:
        root: dataset folder.
        **kwargs: the keyword arguments of :func:`write_synthetic_coco`.

    Returns:
        ``root`` as a Path.
    """
    root = Path(root)
    config = synthetic_config(**kwargs)
    marker = root / MARKER_NAME
    complete = all((root / "annotations" / f"person_keypoints_{s}2017.json").is_file() for s in _SPLITS)
    if complete and marker.is_file():
        try:
            if json.loads(marker.read_text()) == config:
                return root
        except json.JSONDecodeError:
            pass  # a damaged marker: regenerate
    return write_synthetic_coco(root, **kwargs)


def main(argv: Sequence[str] | None = None) -> None:
    """CLI: ``python -m centerpose.data.synthetic --root DIR [--num-train N --num-val N --size 256 --seed 0]``."""
    parser = argparse.ArgumentParser(description="Write a small synthetic COCO person-keypoints dataset.")
    parser.add_argument("--root", required=True, type=Path, help="dataset folder to write")
    parser.add_argument("--num-train", type=int, default=64)
    parser.add_argument("--num-val", type=int, default=16)
    parser.add_argument(
        "--size",
        type=int,
        nargs="+",
        default=[256],
        metavar="PX",
        help="image size: one value for square images or WIDTH HEIGHT",
    )
    parser.add_argument("--max-people", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--skeleton",
        choices=("coco", "crowdpose"),
        default="coco",
        help="joints to annotate: COCO's 17 or CrowdPose's 14",
    )
    parser.add_argument("--force", action="store_true", help="rewrite even when an identical dataset exists")
    args = parser.parse_args(argv)
    size = args.size[0] if len(args.size) == 1 else args.size
    kwargs = dict(
        num_train=args.num_train,
        num_val=args.num_val,
        image_size=size,
        max_people=args.max_people,
        seed=args.seed,
        keypoints=CROWDPOSE if args.skeleton == "crowdpose" else COCO_PERSON,
    )
    root = write_synthetic_coco(args.root, **kwargs) if args.force else ensure_synthetic_coco(args.root, **kwargs)
    print(f"synthetic COCO person keypoints: {args.num_train} train + {args.num_val} val images in {root}")


if __name__ == "__main__":
    main()
