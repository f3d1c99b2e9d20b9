"""Training-sample geometry: affine transforms, random crop / shift-scale, rotation, flip (METHOD §1.2).

Every random draw goes through injectable generators (:class:`SampleRngs`) consumed in the
original's order, so a sample can be reproduced bit for bit from seeded generators:
geometry (crop: choice, randint x, randint y | shift/scale: randn ×3) → random (rot) [→ randn]
→ random (flip); the colour stage then draws shuffle → 3 × uniform → normal(3) (§1.3).
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass
from typing import Any, Sequence

import cv2
import numpy as np

from centerpose.codec.encode import affine_transform  # noqa: F401  (re-exported: one implementation)

# The crop-scale set of the original, float error included (QUIRK D13): 0.6, 0.7, …, 1.3.
CROP_SCALES = np.arange(0.6, 1.4, 0.1)


def get_affine_transform(
    center, scale, rot: float, output_size: Sequence[int], shift=(0.0, 0.0), inv: bool = False
) -> np.ndarray:
    """The original's crop-and-resize affine map (§1.2.6), solved by ``cv2.getAffineTransform``.

    The three source points are built and rounded in float32 exactly as the original does, so
    the matrix agrees with it bit for bit (the closed form is off by up to 1.6e-4 input px).

    Args:
        center: (2,) crop centre (x, y) in source pixels.
        scale: crop side in source pixels (a scalar becomes float32 (s, s); a 2-vector is used
            as given, its first entry sets the uniform scale).
        rot: rotation in degrees; positive turns the content counter-clockwise on screen.
        output_size: (w_o, h_o) of the destination.
        shift: crop-centre shift as a fraction of ``scale`` (unused by training).
        inv: True gives the destination → source map.

    Returns:
        (2, 3) float64 affine matrix.
    """
    if not isinstance(scale, (np.ndarray, list)):
        if shift is None or (not isinstance(shift, np.ndarray) and tuple(shift) == (0.0, 0.0)):
            return _affine_unshifted(center, scale, rot, output_size, inv)
        scale = np.array([scale, scale], dtype=np.float32)
    scale = np.asarray(scale)
    center = np.asarray(center, dtype=np.float32)
    shift = np.asarray(shift, dtype=np.float32)
    src_w = scale[0]
    dst_w, dst_h = output_size[0], output_size[1]

    rot_rad = np.pi * rot / 180
    sn, cs = np.sin(rot_rad), np.cos(rot_rad)
    half = src_w * -0.5
    src_dir = np.array([0 * cs - half * sn, 0 * sn + half * cs], dtype=np.float64)
    dst_dir = np.array([0, dst_w * -0.5], np.float32)

    src = np.zeros((3, 2), dtype=np.float32)
    dst = np.zeros((3, 2), dtype=np.float32)
    src[0, :] = center + scale * shift
    src[1, :] = center + src_dir + scale * shift
    dst[0, :] = [dst_w * 0.5, dst_h * 0.5]
    dst[1, :] = np.array([dst_w * 0.5, dst_h * 0.5], np.float32) + dst_dir
    src[2, :] = _third_point(src[0], src[1])
    dst[2, :] = _third_point(dst[0], dst[1])
    if inv:
        return cv2.getAffineTransform(dst, src)
    return cv2.getAffineTransform(src, dst)


_F32 = struct.Struct("f")


def _f32(x: float) -> float:
    """x rounded to float32 (round to nearest), as a Python float."""
    return _F32.unpack(_F32.pack(x))[0]


def _affine_unshifted(center, scale, rot: float, output_size: Sequence[int], inv: bool) -> np.ndarray:
    """:func:`get_affine_transform` for a scalar ``scale`` and no shift, the three point pairs built from Python
    floats: every float32 operation of the general path is one float64 operation on float32 values rounded
    back to float32 (the same number: float64 has more than twice float32's precision), so the points, and
    the matrix cv2 solves from them, are the same bit for bit, without a dozen numpy calls on 2-vectors."""
    cx, cy = np.asarray(center, dtype=np.float32).tolist()
    src_w = _f32(float(scale))
    dst_w, dst_h = output_size[0], output_size[1]
    if rot == 0:
        sn, cs = 0.0, 1.0  # np.sin(0.0), np.cos(0.0)
    else:
        rot_rad = np.pi * rot / 180
        sn, cs = float(np.sin(rot_rad)), float(np.cos(rot_rad))
    half = _f32(src_w * -0.5)
    # src[0] = center + 0; src[1] = center + src_dir (float64, rounded on storing); the shift terms are + 0.0
    s0x, s0y = cx + 0.0, cy + 0.0
    s1x, s1y = _f32(cx + (0 * cs - half * sn) + 0.0), _f32(cy + (0 * sn + half * cs) + 0.0)
    d0x, d0y = dst_w * 0.5, dst_h * 0.5
    d1x, d1y = _f32(d0x + 0.0), _f32(d0y + _f32(dst_w * -0.5))
    src = np.array([[s0x, s0y], [s1x, s1y], _third_xy(s0x, s0y, s1x, s1y)], dtype=np.float32)
    dst = np.array([[d0x, d0y], [d1x, d1y], _third_xy(d0x, d0y, d1x, d1y)], dtype=np.float32)
    return cv2.getAffineTransform(dst, src) if inv else cv2.getAffineTransform(src, dst)


def _third_xy(ax: float, ay: float, bx: float, by: float) -> list[float]:
    """:func:`_third_point` of float32 values held as Python floats."""
    dx, dy = _f32(ax - bx), _f32(ay - by)
    return [_f32(bx - dy), _f32(by + dx)]


def _third_point(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """b + ⊥(a − b) with ⊥(x, y) = (−y, x), in float32."""
    d = a - b
    return b + np.array([-d[1], d[0]], dtype=np.float32)


def get_border(border: int, size: int) -> int:
    """Largest b in {border, border/2, …, 1, 0} with size > 2b: how far a crop centre stays from the edge."""
    i = 1
    while size - border // i <= border // i:
        i *= 2
    return border // i


@dataclass
class Geometry:
    """Where a sample's crop comes from.

    Attributes:
        c: (2,) float32 crop centre (x, y) in image pixels, after the flip.
        s: crop side in image pixels (only fl32(s) enters the transforms).
        rot: rotation in degrees.
        flipped: whether the image is mirrored (x ↦ W − 1 − x).
    """

    c: np.ndarray
    s: float
    rot: float = 0.0
    flipped: bool = False


def center_geometry(width: int, height: int) -> Geometry:
    """The un-augmented geometry (val and ``augment=False``): image centre, longest side, no flip."""
    return Geometry(c=np.array([width / 2.0, height / 2.0], dtype=np.float32), s=max(height, width) * 1.0)


def draw_train_geometry(
    width: int,
    height: int,
    rng,
    *,
    rand_crop: bool = True,
    shift: float = 0.1,
    scale: float = 0.4,
    rotate: float = 0.0,
    aug_rot: float = 0.0,
    flip: float = 0.5,
) -> Geometry:
    """Draw a training crop exactly as the original (§1.2 steps 2–5, QUIRKs D4, D12, D13).

    Args:
        width, height: image size in pixels.
        rng: RandomState-like geometry generator (``choice``, ``randint``, ``randn``, ``random``):
            ``np.random`` (the original's global RNG) or a ``np.random.RandomState``.
        rand_crop: random crop with the scale set {0.6 … 1.3} and the border rule (default);
            False uses shift/scale jitter instead.
        shift, scale: jitter magnitudes for ``rand_crop=False``.
        rotate: rotation magnitude in degrees; ``aug_rot`` the probability of rotating.
        flip: probability of a horizontal flip.

    Returns:
        The drawn :class:`Geometry`. The rotation and flip draws are consumed even when their
        probabilities are 0, as in the original.
    """
    geo = center_geometry(width, height)
    c, s = geo.c, geo.s
    if rand_crop:
        # RandomState.choice(a) is a[randint(0, len(a))]: the same draw and value at a third of the cost
        s = s * CROP_SCALES[rng.randint(0, len(CROP_SCALES))]
        w_border, h_border = get_border(128, width), get_border(128, height)
        c[0] = rng.randint(low=w_border, high=width - w_border)
        c[1] = rng.randint(low=h_border, high=height - h_border)
    else:
        c[0] += s * np.clip(rng.randn() * shift, -2 * shift, 2 * shift)
        c[1] += s * np.clip(rng.randn() * shift, -2 * shift, 2 * shift)
        s = s * np.clip(rng.randn() * scale + 1, 1 - scale, 1 + scale)
    rot = 0
    if rng.random() < aug_rot:
        rot = np.clip(rng.randn() * rotate, -rotate * 2, rotate * 2)
    flipped = False
    if rng.random() < flip:
        flipped = True
        c[0] = width - c[0] - 1
    return Geometry(c=c, s=s, rot=rot, flipped=flipped)


def sample_transforms(geo: Geometry, input_size: int, output_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three per-sample maps: image → input, image → output (rotated), image → output (unrotated).

    Returns:
        ``trans_input`` (2, 3), ``trans_output_rot`` (2, 3) for keypoints and ``trans_output``
        (2, 3) for boxes (boxes ignore rotation, QUIRK D4).
    """
    trans_input = get_affine_transform(geo.c, geo.s, geo.rot, [input_size, input_size])
    trans_output = get_affine_transform(geo.c, geo.s, 0, [output_size, output_size])
    # Without rotation both output maps are the same solve (the default recipe never rotates).
    trans_output_rot = (
        trans_output.copy() if geo.rot == 0 else get_affine_transform(geo.c, geo.s, geo.rot, [output_size, output_size])
    )
    return trans_input, trans_output_rot, trans_output


#: ``decode_reduction`` modes: "off" decodes every image in full (the original's pixels); "auto" decodes a JPEG
#: 2, 4 or 8 times smaller (libjpeg-turbo's DCT scaling) when the crop shrinks it at least that much.
DECODE_REDUCTIONS = ("off", "auto")


def reduction_factor(crop_side: float, input_size: int) -> int:
    """The largest f in {1, 2, 4, 8} with crop side / input side >= f: how much smaller the JPEG may be decoded
    while the warp still samples it at (at least) one decoded pixel per input pixel."""
    shrink = float(crop_side) / float(input_size)
    for f in (8, 4, 2):
        if shrink >= f:
            return f
    return 1


def image_warp_matrix(trans_input: np.ndarray, geo: Geometry, width: int, factor: int = 1) -> np.ndarray:
    """(2, 3) map from the decoded image's pixels to the input: ``trans_input`` after the flip and the reduction.

    The flip x ↦ W − 1 − x of the raw image (QUIRK D12) is folded into the map instead of copying a mirrored
    image; without rotation cv2's fixed-point warp then samples the same source pixels with the same weights
    (equal bit for bit, tests/data/test_dataset.py; rotated, ~1e-4 of the pixels round the other way, so
    :func:`warp_image` mirrors a copy there). A decode ``factor`` f times smaller puts its pixel i at
    the full-resolution centre f·i + (f − 1)/2 (libjpeg's scaled IDCT averages the f × f block).

    Args:
        trans_input: (2, 3) full-resolution (flipped, when ``geo.flipped``) image → input map.
        geo: the sample's geometry (only ``flipped`` is read).
        width: W of the full-resolution image.
        factor: the decode's reduction f (1: full resolution).
    """
    m = np.asarray(trans_input, np.float64)
    if geo.flipped:  # trans_input @ [[-1, 0, W-1], [0, 1, 0], [0, 0, 1]]
        m = np.stack([-m[:, 0], m[:, 1], m[:, 0] * (width - 1) + m[:, 2]], axis=1)
    if factor != 1:  # m @ [[f, 0, (f-1)/2], [0, f, (f-1)/2], [0, 0, 1]]
        half = (factor - 1) / 2.0
        m = np.stack([m[:, 0] * factor, m[:, 1] * factor, m[:, 2] + (m[:, 0] + m[:, 1]) * half], axis=1)
    return m


def warp_image(
    img: np.ndarray,
    geo: Geometry,
    trans_input: np.ndarray,
    input_size: int,
    *,
    width: int | None = None,
    factor: int = 1,
) -> np.ndarray:
    """Warp the (possibly reduced) decoded image with bilinear cv2 into (R, R, 3) uint8, mirrored if flipped.

    The flip mirrors the *raw* image (QUIRK D12); it is not a flip of the warped tensor. It and the reduction are
    folded into the one warp (:func:`image_warp_matrix`): no mirrored copy of the raw image is made (except for
    a rotated full-resolution sample, where the copy keeps the original's pixels).

    Args:
        img: (h, w, 3) uint8 decoded image (``factor`` times smaller than the full one).
        width: W of the full-resolution image (default: ``img``'s width, for ``factor`` 1).
        factor: the decode's reduction.
    """
    if width is None:
        if factor != 1:
            raise ValueError("warp_image: a reduced image needs the full-resolution width")
        width = img.shape[1]
    if geo.flipped and geo.rot != 0 and factor == 1:
        # Rotated, cv2's fixed-point rounding of the mirrored map differs in ~1e-4 of the pixels: keep the copy.
        img = cv2.flip(img, 1)  # the same copy as img[:, ::-1], ~15x faster than numpy's strided copy
        return cv2.warpAffine(img, trans_input, (input_size, input_size), flags=cv2.INTER_LINEAR)
    matrix = image_warp_matrix(trans_input, geo, width, factor)
    return cv2.warpAffine(img, matrix, (input_size, input_size), flags=cv2.INTER_LINEAR)


@dataclass
class SampleRngs:
    """The three random sources of one sample (§1.3 "RNG sources").

    Attributes:
        geometry: RandomState-like, for crop, shift/scale, rotation and flip.
        shuffle: ``random.Random``-like (``shuffle``), for the colour-op order.
        color: RandomState-like (``uniform``, ``normal``), for colour magnitudes.
    """

    geometry: Any
    shuffle: Any
    color: Any

    @classmethod
    def original(cls, data_rng: np.random.RandomState) -> "SampleRngs":
        """The original's plumbing: numpy's global RNG, Python's global ``random``, and the
        dataset's own ``RandomState(123)`` that no DataLoader reseeds (QUIRK D14)."""
        return cls(geometry=np.random, shuffle=random, color=data_rng)

    @classmethod
    def seeded(cls, seed: int) -> "SampleRngs":
        """Three independently seeded generators (for parity checks against seeded runs)."""
        return cls(geometry=np.random.RandomState(seed), shuffle=random.Random(seed), color=np.random.RandomState(seed))

    @classmethod
    def per_sample(cls, seed: int, epoch: int, index: int) -> "SampleRngs":
        """One generator per sample from (seed, epoch, index) for all three roles (QUIRK D14
        improved): distinct across workers and epochs, reproducible regardless of worker count."""
        ss = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(epoch), int(index)])
        main, aux = ss.spawn(2)
        gen = np.random.RandomState(np.random.MT19937(main))
        shuffle_seed = int.from_bytes(aux.generate_state(4, np.uint32).tobytes(), "little")
        return cls(geometry=gen, shuffle=random.Random(shuffle_seed), color=gen)
