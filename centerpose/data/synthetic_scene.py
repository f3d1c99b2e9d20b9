"""The figure model behind the synthetic dataset: poses, people, layouts and one rendered scene.

A person is a skeleton of COCO joints with filled limbs (dark outlines, lighter face, eyes, nose, ears); a
scene is a textured background with a few such people, possibly overlapping or leaving the image. Everything
draws from the ``np.random.Generator`` passed in, so a scene is a pure function of it.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import cv2
import numpy as np

from centerpose.keypoints import COCO_PERSON, KeypointSpec

__all__ = ["FIGURE_JOINTS", "JOINT_ALIASES", "render_image"]

_EMPTY_IMAGE_PROB = 0.05
_PARTLY_OUTSIDE_PROB = 0.15
# A layout is redrawn when someone keeps less than this fraction of their figure (occluded or off-image).
_MIN_VISIBLE_FRACTION = 0.4
_LAYOUT_TRIES = 12
_HEIGHT_RANGE_AT_256 = (40.0, 200.0)
# BGR ends of the range of face/hand colours; always lighter than the dark hair around the face.
_SKIN_LIGHT = np.array([190.0, 212.0, 242.0])
_SKIN_DARK = np.array([95.0, 130.0, 175.0])

# The joints the figure model places; a KeypointSpec may annotate any subset of them, by name: COCO's 17,
# the neck (where the neck meets the shoulders' line) and the top of the head (CrowdPose's "head").
FIGURE_JOINTS: tuple[str, ...] = (*COCO_PERSON.names, "neck", "head_top")
# Other datasets' names for figure joints.
JOINT_ALIASES: dict[str, str] = {"head": "head_top", "top_head": "head_top"}

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
        shapes += [
            line(f"{side}_hip", f"{side}_knee", 0.08, leg),
            line(f"{side}_knee", f"{side}_ankle", 0.06, leg),
            circle(f"{side}_foot", 0.035, _tuple(shoes), low=2),
        ]
    torso = (pt["left_shoulder"], pt["right_shoulder"], pt["right_hip"], pt["left_hip"])
    shapes.append(_Shape("poly", torso, 0, _tuple(shirt)))
    for side in ("left", "right"):
        arm = _shade(shirt, side == "left")
        shapes += [
            line(f"{side}_shoulder", f"{side}_elbow", 0.055, arm),
            line(f"{side}_elbow", f"{side}_wrist", 0.045, arm),
            circle(f"{side}_hand", 0.032, _tuple(skin), low=2),
        ]
    shapes += [line("neck", "head", 0.045, _tuple(skin)), circle("head", 0.075, _tuple(hair), low=3)]
    # The lighter face disc and the features on it make the head joints findable.
    face = _Shape("circle", (pt["face"],), max(2, int(round(0.075 * h * 0.62))), _tuple(skin), outlined=False)
    shapes.append(face)
    for side in ("left", "right"):
        shapes.append(circle(f"{side}_ear", 0.075 * 0.2, _shade(skin, side == "left")))
        shapes.append(circle(f"{side}_eye", 0.075 * 0.13, (35.0, 30.0, 30.0), outlined=False))
    shapes.append(circle("nose", 0.075 * 0.15, (50.0, 60.0, 185.0), outlined=False))
    joints = {name: pt[name] for name in FIGURE_JOINTS if name in pt}
    # The head circle's top, along the neck-to-head direction; not a pose point, so layouts are unchanged.
    up = pose["head"] - pose["neck"]
    top = pose["head"] + up / max(float(np.hypot(*up)), 1e-6) * 0.075 * h + offset
    joints["head_top"] = (int(round(top[0])), int(round(top[1])))
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
            shape = _Shape(
                shape.kind,
                tuple((x + shift[0], y + shift[1]) for x, y in shape.points),
                shape.size,
                shape.colour,
                shape.outlined,
            )
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
        x, y = person.joints[JOINT_ALIASES.get(name, name)]
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


def render_image(
    rng: np.random.Generator, width: int, height: int, max_people: int, image_id: int, spec: KeypointSpec
) -> tuple[np.ndarray, list[dict]]:
    """Draw one scene and its COCO annotations (annotation id = image id * 100 + person index).

    Returns:
        The BGR uint8 (height, width, 3) image and its ``annotations`` entries for ``spec``'s joints.
    """
    img = _background(rng, width, height)
    count = 0 if max_people == 0 or rng.uniform() < _EMPTY_IMAGE_PROB else int(rng.integers(1, max_people + 1))
    people, label = _layout(rng, width, height, count)
    for person in people:
        _paint_image(img, person)
    return img, [_annotation(p, i, label, image_id, spec) for i, p in enumerate(people)]
