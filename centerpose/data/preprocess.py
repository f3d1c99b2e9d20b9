"""Test-time input geometry (METHOD.md §1.5, the detector's ``pre_process``).

Two modes, as the original:

- ``keep_res`` (the zoo's test protocol): the image keeps its resolution and is centred, by a pure
  integer translation, on a canvas of ``(n | pad) + 1`` pixels per side (pad 31, or 127 for Hourglass).
  QUIRK D16: a side that is already a multiple of 32 still grows by 32 (512 -> 544); ``canvas="ceil"``
  is the improved 32 * ceil(n / 32).
- fix_res (``keep_res=False``): the image is letterboxed into ``input_size`` x ``input_size``.

Normalisation is ``((uint8 / 255.) - mean) / std`` in float64, then float32 (QUIRK D17); with
``normalize=False`` the warped uint8 canvas is returned instead, to be normalised on the device by
:func:`centerpose.data.photometric.apply_input_affine` (as the training batches; equal within 1e-6).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from centerpose.data.augment import get_affine_transform
from centerpose.data.transforms import COCO_MEAN_BGR as BGR_MEAN, COCO_STD_BGR as BGR_STD


@dataclass
class TestInput:
    """One pre-processed image.

    Attributes:
        image: (3, h, w) float32 network input (BGR, normalised), or with ``normalize=False`` the
            (h, w, 3) uint8 warped BGR canvas.
        c: (2,) float32 affine centre; s: affine scale (float or (2,) for keep_res).
        output_size: (h // down_ratio, w // down_ratio) of the output maps.
        scale: the test scale.
    """

    image: np.ndarray
    c: np.ndarray
    s: np.ndarray
    output_size: tuple[int, int]
    scale: float


def canvas_side(n: int, pad: int, canvas: Literal["original", "ceil"] = "original") -> int:
    """Side of the keep_res canvas for an image side ``n`` (pad = multiple - 1)."""
    if canvas == "ceil":
        return -(-n // (pad + 1)) * (pad + 1)
    return (n | pad) + 1


def preprocess(
    image_bgr: np.ndarray,
    scale: float = 1.0,
    *,
    keep_res: bool = True,
    pad: int = 31,
    input_size: int = 512,
    down_ratio: int = 4,
    mean: np.ndarray = BGR_MEAN,
    std: np.ndarray = BGR_STD,
    canvas: Literal["original", "ceil"] = "original",
    normalize: bool = True,
) -> TestInput:
    """The detector's pre-process of one BGR uint8 image (H, W, 3) at one test scale."""
    if image_bgr.ndim != 3 or image_bgr.shape[2] != 3 or image_bgr.dtype != np.uint8:
        raise ValueError(f"preprocess: expected an (H, W, 3) uint8 BGR image, got {image_bgr.shape} {image_bgr.dtype}")
    height, width = image_bgr.shape[:2]
    new_h, new_w = int(height * scale), int(width * scale)
    resized = cv2.resize(image_bgr, (new_w, new_h))
    if keep_res:
        inp_h, inp_w = canvas_side(new_h, pad, canvas), canvas_side(new_w, pad, canvas)
        c = np.array([new_w // 2, new_h // 2], dtype=np.float32)
        s = np.array([inp_w, inp_h], dtype=np.float32)
    else:
        inp_h = inp_w = input_size
        c = np.array([new_w / 2.0, new_h / 2.0], dtype=np.float32)
        s = np.float64(max(height, width) * 1.0)
    trans = get_affine_transform(c, s, 0, [inp_w, inp_h])
    warped = cv2.warpAffine(resized, trans, (inp_w, inp_h), flags=cv2.INTER_LINEAR)
    output_size = (inp_h // down_ratio, inp_w // down_ratio)
    if not normalize:
        return TestInput(image=warped, c=c, s=np.asarray(s), output_size=output_size, scale=scale)
    normalised = ((warped / 255.0 - mean) / std).astype(np.float32)
    return TestInput(
        image=normalised.transpose(2, 0, 1).copy(), c=c, s=np.asarray(s), output_size=output_size, scale=scale
    )
