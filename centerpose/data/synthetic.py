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
import colorsys
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from centerpose.keypoints import COCO_PERSON, KeypointSpec

__all__ = ["MARKER_NAME", "ensure_synthetic_coco", "main", "synthetic_config", "write_synthetic_coco"]

MARKER_NAME = ".centerpose_synthetic.json"
_FORMAT_VERSION = 1
_SPLITS = ("train", "val")
# Image ids: train 1.., val 900001.. so ids are unique across splits and stable when the other split's size changes.
_VAL_ID_OFFSET = 900_000
# Annotation id = image id * 100 + person index, unique across the whole dataset.
_MAX_PEOPLE = 99
_EMPTY_IMAGE_PROB = 0.05
_PARTLY_OUTSIDE_PROB = 0.15
# A layout is redrawn when someone keeps less than this fraction of their figure (occluded or off-image).
_MIN_VISIBLE_FRACTION = 0.4
_LAYOUT_TRIES = 12
_HEIGHT_RANGE_AT_256 = (40.0, 200.0)
_JPEG_QUALITY = 95
# BGR ends of the range of face/hand colours; always lighter than the dark hair around the face.
_SKIN_LIGHT = np.array([190.0, 212.0, 242.0])
_SKIN_DARK = np.array([95.0, 130.0, 175.0])

# The joints the figure model places; a KeypointSpec may annotate any subset of them, by name.
FIGURE_JOINTS: tuple[str, ...] = COCO_PERSON.names

Point = tuple[int, int]
Colour = tuple[float, float, float]


@dataclass(frozen=True)
class _Shape:
    """One filled drawing primitive of a figure, drawn with an optional dark outline."""

    kind: str  # "line" | "circle" | "poly"
    points: tuple[Point, ...]
    size: int  # line thickness or circle radius; unused for polygons
    colour: Colour
    outlined: bool = True


@dataclass(frozen=True)
class _Person:
    joints: dict[str, Point]
    shapes: tuple[_Shape, ...]
    outline: int
    outline_colour: Colour
    height: float


# --------------------------------------------------------------------------------------------------- colours


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return np.array([b, g, r]) * 255.0


def _shade(colour: np.ndarray, left: bool) -> Colour:
    # Left limbs darker, right limbs lighter: a cue that tells the two sides apart besides their position.
    c = colour * 0.72 if left else colour + (255.0 - colour) * 0.22
    return tuple(float(x) for x in c)


def _tuple(colour: np.ndarray) -> Colour:
    return tuple(float(x) for x in colour)


# --------------------------------------------------------------------------------------------------- backgrounds


def _muted(rng: np.random.Generator) -> np.ndarray:
    # Low saturation keeps the saturated figures the most colourful things in the image.
    return _hsv(rng.uniform(), rng.uniform(0.0, 0.35), rng.uniform(0.3, 0.85))


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A muted textured background: (height, width, 3) uint8 BGR."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    c1 = _muted(rng).astype(np.float32)
    kind = int(rng.integers(4))
    if kind == 0:  # low-frequency colour noise
        gh, gw = (int(n) for n in rng.integers(3, 12, size=2))
        grid = rng.uniform(-1.0, 1.0, size=(gh, gw, 3)).astype(np.float32)
        img = c1 + cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC) * rng.uniform(15, 45)
    elif kind == 1:  # stripes at a random angle and period
        phi, period = rng.uniform(0, math.pi), rng.uniform(8, 48)
        t = 0.5 + 0.5 * np.sin(2 * math.pi * (xx * math.cos(phi) + yy * math.sin(phi)) / period + rng.uniform(0, 6.3))
        c2 = c1 + rng.uniform(-55, 55, size=3).astype(np.float32)
        img = c1 + t[..., None] * (c2 - c1)
    elif kind == 2:  # linear gradient between two muted colours
        phi = rng.uniform(0, 2 * math.pi)
        ramp = xx * math.cos(phi) + yy * math.sin(phi)
        t = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1.0)
        img = c1 + t[..., None] * (_muted(rng).astype(np.float32) - c1)
    else:  # random blobs, softened
        img = np.empty((height, width, 3), np.float32)
        img[:] = c1
        scale = min(width, height)
        for _ in range(int(rng.integers(6, 25))):
            centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
            axes = (int(rng.integers(3, scale // 4)), int(rng.integers(3, scale // 4)))
            cv2.ellipse(img, centre, axes, float(rng.uniform(0, 180)), 0, 360, _tuple(_muted(rng)), -1, cv2.LINE_AA)
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 2.5))
    img = img + rng.normal(0.0, rng.uniform(2, 8), size=img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------------- figures


def _unit(angle: float) -> np.ndarray:
    return np.array([math.cos(angle), math.sin(angle)])


def _sample_pose(rng: np.random.Generator, h: float) -> dict[str, np.ndarray]:
    """Joint and helper points of one figure of height ``h``, pelvis at the origin (image axes, y down)."""
    lean = float(np.clip(rng.normal(0.0, 0.12), -0.4, 0.4))
    side = _unit(lean)  # image-right when upright: the left side of a person facing the camera
    up = np.array([side[1], -side[0]])
    facing = rng.uniform(0.55, 1.0)  # < 1: the body is turned, shoulders and hips look narrower
    p: dict[str, np.ndarray] = {"pelvis": np.zeros(2)}
    p["neck"] = up * 0.30 * h
    for name, s in (("left", 1.0), ("right", -1.0)):
        p[f"{name}_shoulder"] = p["neck"] + s * side * 0.11 * h * facing
        p[f"{name}_hip"] = s * side * 0.075 * h * facing

        def limb(a: float, s: float = s) -> np.ndarray:
            # Angle from "straight down" towards this side's outside.
            return math.cos(a) * -up + math.sin(a) * s * side

        a1 = rng.uniform(-0.35, 2.8)
        p[f"{name}_elbow"] = p[f"{name}_shoulder"] + limb(a1) * 0.165 * h
        a2 = a1 + rng.uniform(-0.7, 2.4)
        p[f"{name}_wrist"] = p[f"{name}_elbow"] + limb(a2) * 0.15 * h
        p[f"{name}_hand"] = p[f"{name}_wrist"] + limb(a2) * 0.015 * h
        a1 = rng.uniform(0.6, 1.4) if rng.uniform() < 0.15 else rng.uniform(-0.15, 0.6)
        p[f"{name}_knee"] = p[f"{name}_hip"] + limb(a1) * 0.245 * h
        a2 = a1 + (rng.uniform(-1.6, 1.0) if rng.uniform() < 0.2 else rng.uniform(-0.6, 0.25))
        p[f"{name}_ankle"] = p[f"{name}_knee"] + limb(a2) * 0.235 * h
        p[f"{name}_foot"] = p[f"{name}_ankle"] + limb(a2) * 0.02 * h
    tilt = float(np.clip(rng.normal(0.0, 0.15), -0.4, 0.4))
    head_side = _unit(lean + tilt)
    head_up = np.array([head_side[1], -head_side[0]])
    r = 0.075 * h
    p["head"] = p["neck"] + head_up * (0.035 * h + r)
    face = p["head"] + head_side * rng.uniform(-0.3, 0.3) * 0.5 * r - head_up * 0.22 * r
    p["face"] = face
    p["nose"] = face - head_up * 0.18 * r
    for name, s in (("left", 1.0), ("right", -1.0)):
        p[f"{name}_eye"] = face + head_up * 0.2 * r + s * head_side * 0.3 * r
        p[f"{name}_ear"] = p["head"] + s * head_side * 0.95 * r - head_up * 0.1 * r
    return p


def _build_person(rng: np.random.Generator, h: float, pose: dict[str, np.ndarray], offset: np.ndarray) -> _Person:
    """Round the pose to pixels at ``offset`` and list the shapes that draw it, back to front."""
    pt = {k: (int(round(v[0] + offset[0])), int(round(v[1] + offset[1]))) for k, v in pose.items()}
    hue = rng.uniform()
    shirt = _hsv(hue, rng.uniform(0.6, 1.0), rng.uniform(0.75, 1.0))
    pants = _hsv(hue + rng.uniform(0.25, 0.75), rng.uniform(0.5, 1.0), rng.uniform(0.45, 0.9))
    hair = _hsv(rng.uniform(0.03, 0.12), rng.uniform(0.3, 0.8), rng.uniform(0.08, 0.4))
    skin = _SKIN_LIGHT + rng.uniform(0.0, 0.55) * (_SKIN_DARK - _SKIN_LIGHT)
    shoes = _hsv(rng.uniform(), rng.uniform(0.0, 0.5), rng.uniform(0.1, 0.3))

    def thick(frac: float, low: int = 2) -> int:
        return max(low, int(round(frac * h)))

    def line(a: str, b: str, frac: float, colour: Colour) -> _Shape:
        return _Shape("line", (pt[a], pt[b]), thick(frac), colour)

    def circle(c: str, frac: float, colour: Colour, low: int = 1, outlined: bool = True) -> _Shape:
        return _Shape("circle", (pt[c],), thick(frac, low), colour, outlined)

    shapes: list[_Shape] = []
    for side in ("left", "right"):
        leg = _shade(pants, side == "left")
        shapes += [line(f"{side}_hip", f"{side}_knee", 0.08, leg), line(f"{side}_knee", f"{side}_ankle", 0.06, leg),
                   circle(f"{side}_foot", 0.035, _tuple(shoes), low=2)]
    torso = (pt["left_shoulder"], pt["right_shoulder"], pt["right_hip"], pt["left_hip"])
    shapes.append(_Shape("poly", torso, 0, _tuple(shirt)))
    for side in ("left", "right"):
        arm = _shade(shirt, side == "left")
        shapes += [line(f"{side}_shoulder", f"{side}_elbow", 0.055, arm),
                   line(f"{side}_elbow", f"{side}_wrist", 0.045, arm),
                   circle(f"{side}_hand", 0.032, _tuple(skin), low=2)]
    shapes += [line("neck", "head", 0.045, _tuple(skin)), circle("head", 0.075, _tuple(hair), low=3)]
    # The lighter face disc and the features on it make the head joints findable.
    face = _Shape("circle", (pt["face"],), max(2, int(round(0.075 * h * 0.62))), _tuple(skin), outlined=False)
    shapes.append(face)
    for side in ("left", "right"):
        shapes.append(circle(f"{side}_ear", 0.075 * 0.2, _shade(skin, side == "left")))
        shapes.append(circle(f"{side}_eye", 0.075 * 0.13, (35.0, 30.0, 30.0), outlined=False))
    shapes.append(circle("nose", 0.075 * 0.15, (50.0, 60.0, 185.0), outlined=False))
    joints = {name: pt[name] for name in FIGURE_JOINTS}
    return _Person(joints, tuple(shapes), max(1, int(round(0.012 * h))), _tuple(shirt * 0.18), h)


def _draw_shape(img: np.ndarray, shape: _Shape, colour: Colour | int, grow: int, line_type: int) -> None:
    if shape.kind == "line":
        cv2.line(img, shape.points[0], shape.points[1], colour, shape.size + 2 * grow, line_type)
    elif shape.kind == "circle":
        cv2.circle(img, shape.points[0], shape.size + grow, colour, -1, line_type)
    else:
        pts = np.array(shape.points, np.int32).reshape(-1, 1, 2)
        cv2.fillPoly(img, [pts], colour, line_type)
        if grow:
            cv2.polylines(img, [pts], True, colour, 2 * grow, line_type)


def _paint_label(label: np.ndarray, person: _Person, value: int, shift: Point = (0, 0)) -> None:
    """Rasterise ``person``'s silhouette (outlines included) into ``label`` with ``value``."""
    for shape in person.shapes:
        if shift != (0, 0):
            shape = _Shape(shape.kind, tuple((x + shift[0], y + shift[1]) for x, y in shape.points), shape.size,
                           shape.colour, shape.outlined)
        _draw_shape(label, shape, value, person.outline if shape.outlined else 0, cv2.LINE_8)


def _paint_image(img: np.ndarray, person: _Person) -> None:
    for shape in person.shapes:
        if shape.outlined:
            _draw_shape(img, shape, person.outline_colour, person.outline, cv2.LINE_AA)
        _draw_shape(img, shape, shape.colour, 0, cv2.LINE_AA)


def _full_area(person: _Person) -> int:
    """Pixel area of the whole figure, wherever it lies relative to the image."""
    xs = [x for s in person.shapes for x, _ in s.points]
    ys = [y for s in person.shapes for _, y in s.points]
    margin = int(0.2 * person.height) + 8
    x0, y0 = min(xs) - margin, min(ys) - margin
    canvas = np.zeros((max(ys) - y0 + margin, max(xs) - x0 + margin), np.uint8)
    _paint_label(canvas, person, 1, shift=(-x0, -y0))
    return int(np.count_nonzero(canvas))


def _place(rng: np.random.Generator, pose: dict[str, np.ndarray], h: float, width: int, height: int) -> np.ndarray:
    """Offset that puts the figure inside the image, or (sometimes) partly across one edge."""
    pts = np.stack(list(pose.values()))
    lo, hi = pts.min(0) - 0.06 * h, pts.max(0) + 0.06 * h
    size = hi - lo
    offset = np.empty(2)
    for axis, extent in enumerate((width, height)):
        a, b = -lo[axis], extent - hi[axis]
        offset[axis] = rng.uniform(min(a, b), max(a, b))
    if rng.uniform() < _PARTLY_OUTSIDE_PROB:
        axis, far = int(rng.integers(2)), bool(rng.integers(2))
        out = rng.uniform(0.15, 0.45) * size[axis]
        extent = (width, height)[axis]
        offset[axis] = extent - hi[axis] + out if far else -lo[axis] - out
    return offset


def _layout(rng: np.random.Generator, width: int, height: int, count: int) -> tuple[list[_Person], np.ndarray]:
    """Sample ``count`` people whose visible parts are large enough; drop people when no layout works.

    Returns:
        The people in drawing order (far/small first) and the (height, width) uint8 label map where pixel value
        ``i + 1`` belongs to person ``i`` and later people cover earlier ones.
    """
    scale = min(width, height) / 256.0
    lo, hi = (math.log(v * scale) for v in _HEIGHT_RANGE_AT_256)
    while count > 0:
        for _ in range(_LAYOUT_TRIES):
            people = []
            for _ in range(count):
                h = math.exp(rng.uniform(lo, hi))
                pose = _sample_pose(rng, h)
                people.append(_build_person(rng, h, pose, _place(rng, pose, h, width, height)))
            people.sort(key=lambda p: p.height)  # the nearer (larger) person is drawn on top
            label = np.zeros((height, width), np.uint8)
            for i, person in enumerate(people):
                _paint_label(label, person, i + 1)
            visible = np.bincount(label.ravel(), minlength=count + 1)[1:]
            if all(v >= _MIN_VISIBLE_FRACTION * _full_area(p) for v, p in zip(visible, people)):
                return people, label
        count -= 1
    return [], np.zeros((height, width), np.uint8)


# --------------------------------------------------------------------------------------------------- annotations


def _annotation(person: _Person, index: int, label: np.ndarray, image_id: int, spec: KeypointSpec) -> dict:
    mask = label == index + 1
    ys, xs = np.nonzero(mask)
    height, width = label.shape
    kpts: list[int] = []
    for name in spec.names:
        x, y = person.joints[name]
        if 0 <= x < width and 0 <= y < height:
            kpts += [x, y, 2 if mask[y, x] else 1]
        else:
            kpts += [0, 0, 0]
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    segmentation = [[float(v) for v in c.reshape(-1)] for c in contours if len(c) >= 3]
    x0, y0 = int(xs.min()), int(ys.min())
    return {
        "segmentation": segmentation,
        "num_keypoints": int(sum(v > 0 for v in kpts[2::3])),
        "area": float(mask.sum()),
        "iscrowd": 0,
        "keypoints": kpts,
        "image_id": image_id,
        "bbox": [float(x0), float(y0), float(xs.max() - x0 + 1), float(ys.max() - y0 + 1)],
        "category_id": 1,
        "id": image_id * 100 + index,
    }


def _render_image(rng: np.random.Generator, width: int, height: int, max_people: int,
                  image_id: int, spec: KeypointSpec) -> tuple[np.ndarray, list[dict]]:
    img = _background(rng, width, height)
    count = 0 if max_people == 0 or rng.uniform() < _EMPTY_IMAGE_PROB else int(rng.integers(1, max_people + 1))
    people, label = _layout(rng, width, height, count)
    for person in people:
        _paint_image(img, person)
    return img, [_annotation(p, i, label, image_id, spec) for i, p in enumerate(people)]


def _check_spec(keypoints: KeypointSpec) -> None:
    unknown = [n for n in keypoints.names if n not in FIGURE_JOINTS]
    if unknown:
        raise ValueError(f"synthetic COCO: the drawn figures have no joint(s) {unknown}; a KeypointSpec for this "
                         f"dataset may only use the COCO person joint names {list(FIGURE_JOINTS)}")


def _normalise_size(image_size: int | Sequence[int]) -> tuple[int, int]:
    size = (int(image_size), int(image_size)) if np.isscalar(image_size) else tuple(int(s) for s in image_size)
    if len(size) != 2 or min(size) < 32:
        raise ValueError(f"synthetic COCO: image_size must be (width, height) with both >= 32, got {image_size!r}")
    return size  # type: ignore[return-value]


def synthetic_config(num_train: int = 64, num_val: int = 16, image_size: int | Sequence[int] = (256, 256),
                     max_people: int = 3, seed: int = 0, keypoints: KeypointSpec = COCO_PERSON) -> dict:
    """The JSON-able description of one dataset, as recorded in the marker file (validates the arguments)."""
    width, height = _normalise_size(image_size)
    if not 0 <= num_train < _VAL_ID_OFFSET or not 0 <= num_val < _VAL_ID_OFFSET:
        raise ValueError(f"synthetic COCO: num_train/num_val must be in [0, {_VAL_ID_OFFSET}), "
                         f"got {num_train}/{num_val}")
    if not 0 <= max_people <= _MAX_PEOPLE:
        raise ValueError(f"synthetic COCO: max_people must be in [0, {_MAX_PEOPLE}], got {max_people}")
    _check_spec(keypoints)
    return {"version": _FORMAT_VERSION, "num_train": int(num_train), "num_val": int(num_val),
            "image_size": [width, height], "max_people": int(max_people), "seed": int(seed),
            "keypoints": list(keypoints.names)}


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
        img, anns = _render_image(rng, width, height, config["max_people"], image_id, keypoints)
        if not cv2.imwrite(str(image_dir / file_name), img, [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY]):
            raise OSError(f"synthetic COCO: could not write {image_dir / file_name}")
        images.append({"id": image_id, "file_name": file_name, "width": width, "height": height})
        annotations += anns
    category = {"supercategory": keypoints.category_name, "id": 1, "name": keypoints.category_name,
                "keypoints": list(keypoints.names), "skeleton": [[a + 1, b + 1] for a, b in keypoints.skeleton]}
    info = {"description": f"centerpose synthetic people ({split}, seed {config['seed']})",
            "version": str(_FORMAT_VERSION), "year": 2017, "contributor": "centerpose.data.synthetic"}
    return {"info": info, "licenses": [], "images": images, "annotations": annotations, "categories": [category]}


def write_synthetic_coco(root: str | Path, num_train: int = 64, num_val: int = 16,
                         image_size: int | Sequence[int] = (256, 256), max_people: int = 3, seed: int = 0,
                         keypoints: KeypointSpec = COCO_PERSON) -> Path:
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
        raise FileExistsError(f"synthetic COCO: {ann_dir} already holds annotations not written by this generator "
                              f"(no {MARKER_NAME}); refusing to overwrite them")
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
    parser.add_argument("--size", type=int, nargs="+", default=[256], metavar="PX",
                        help="image size: one value for square images or WIDTH HEIGHT")
    parser.add_argument("--max-people", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="rewrite even when an identical dataset exists")
    args = parser.parse_args(argv)
    size = args.size[0] if len(args.size) == 1 else args.size
    kwargs = dict(num_train=args.num_train, num_val=args.num_val, image_size=size, max_people=args.max_people,
                  seed=args.seed)
    root = write_synthetic_coco(args.root, **kwargs) if args.force else ensure_synthetic_coco(args.root, **kwargs)
    print(f"synthetic COCO person keypoints: {args.num_train} train + {args.num_val} val images in {root}")


if __name__ == "__main__":
    main()
