"""Photometric stage: the CornerNet colour augmentation as an albumentations transform (METHOD §1.3).

The stage runs on the warped float32 image in [0, 1] (BGR unless the dataset converts to RGB),
before normalisation, as an ``albumentations.Compose`` built from a list, so users can append
their own image-only transforms.
"""

from __future__ import annotations

import random
from typing import Any, Sequence

import albumentations as A
import cv2
import numpy as np

# BGR statistics of the original's COCO loader (QUIRK D15: the network sees BGR).
COCO_MEAN_BGR = np.array([0.40789654, 0.44719302, 0.47026115], dtype=np.float32)
COCO_STD_BGR = np.array([0.28863828, 0.27408164, 0.27809835], dtype=np.float32)
# PCA lighting basis; eigenvector rows are indexed by BGR channel, as in the original.
EIG_VAL = np.array([0.2141788, 0.01817699, 0.00341571], dtype=np.float32)
EIG_VEC = np.array(
    [
        [-0.58752847, -0.69563484, 0.41340352],
        [-0.5832747, 0.00994535, -0.81221408],
        [-0.56089297, 0.71832671, 0.41158938],
    ],
    dtype=np.float32,
)

_OPS = ("brightness", "contrast", "saturation")


class CornerNetColorAug(A.ImageOnlyTransform):
    """Brightness, contrast and saturation in random order, then PCA lighting (CornerNet style).

    Draw order per call, as the original: ``shuffle_rng.shuffle`` of the three ops, then
    ``color_rng.uniform(-var, var)`` per op in the shuffled order, then
    ``color_rng.normal(0, alphastd, 3)``. The grey image and its mean are computed once, before
    any op (QUIRK D14), and all arithmetic is float32 except the float64 lighting offset.

    Args:
        var: magnitude of the three α = 1 + U(−var, var) factors.
        alphastd: σ of the lighting coefficients.
        eig_val: (3,) PCA eigenvalues; eig_vec: (3, 3) eigenvectors, rows = channels.
        shuffle_rng: ``random.Random``-like for the op order (default: Python's global ``random``).
        color_rng: RandomState-like for the magnitudes (default: ``RandomState(123)``).
        p: probability of applying (the original always applies it).

    The generators can be swapped per sample with :meth:`bind_rngs`.
    """

    def __init__(
        self,
        var: float = 0.4,
        alphastd: float = 0.1,
        eig_val: np.ndarray = EIG_VAL,
        eig_vec: np.ndarray = EIG_VEC,
        shuffle_rng: Any = None,
        color_rng: Any = None,
        p: float = 1.0,
    ):
        super().__init__(p=p)
        self.var = float(var)
        self.alphastd = float(alphastd)
        self.eig_val = np.asarray(eig_val, dtype=np.float32)
        self.eig_vec = np.asarray(eig_vec, dtype=np.float32)
        # None stands for Python's global ``random`` (a module cannot be pickled into spawned workers).
        self.shuffle_rng = None if shuffle_rng is random else shuffle_rng
        self.color_rng = color_rng if color_rng is not None else np.random.RandomState(123)

    def bind_rngs(self, shuffle_rng: Any, color_rng: Any) -> None:
        """Use these generators for the following calls."""
        self.shuffle_rng = None if shuffle_rng is random else shuffle_rng
        self.color_rng = color_rng

    def get_params(self) -> dict[str, Any]:
        ops = list(_OPS)
        (self.shuffle_rng if self.shuffle_rng is not None else random).shuffle(ops)
        # one call for the three: the same three doubles from the stream as three scalar calls
        alphas = [1.0 + u for u in self.color_rng.uniform(low=-self.var, high=self.var, size=len(ops)).tolist()]
        light = self.color_rng.normal(scale=self.alphastd, size=(3,))
        return {"ops": tuple(ops), "alphas": tuple(alphas), "light": light}

    def apply(
        self,
        img: np.ndarray,
        ops: Sequence[str] = (),
        alphas: Sequence[float] = (),
        light: np.ndarray | None = None,
        **params: Any,
    ) -> np.ndarray:
        """Args: img: (H, W, 3) float32 in [0, 1]. Returns a new (H, W, 3) float32 image (no clipping)."""
        if img.dtype != np.float32 or img.ndim != 3 or img.shape[2] != 3:
            raise TypeError(f"CornerNetColorAug expects an (H, W, 3) float32 image, got {img.shape} {img.dtype}")
        return color_aug(img.copy(), ops, alphas, light, self.eig_val, self.eig_vec)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("var", "alphastd")


def color_aug(
    image: np.ndarray,
    ops: Sequence[str],
    alphas: Sequence[float],
    light: np.ndarray,
    eig_val: np.ndarray = EIG_VAL,
    eig_vec: np.ndarray = EIG_VEC,
) -> np.ndarray:
    """Apply drawn colour ops to a float32 BGR image in place (§1.3 steps 2–4).

    Args:
        image: (H, W, 3) float32, modified in place.
        ops: op names in application order; alphas: their factors α.
        light: (3,) lighting coefficients a.

    Returns:
        ``image``.
    """
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)  # once, before any op (QUIRK D14)
    grey_mean = grey.mean()
    for op, alpha in zip(ops, alphas):
        image *= alpha
        if op == "contrast":
            image += np.float32(grey_mean) * np.float32(1 - alpha)
        elif op == "saturation":
            image += (grey * np.float32(1 - alpha))[:, :, None]
        elif op != "brightness":
            raise ValueError(f"unknown colour op {op!r}")
    image += np.dot(eig_vec, eig_val * light)  # float64 offset added to float32, as the original
    return image


class BgrToRgb(A.ImageOnlyTransform):
    """Reverse the channel axis (BGR ↔ RGB); deterministic."""

    def __init__(self, p: float = 1.0):
        super().__init__(p=p)

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        return np.ascontiguousarray(img[..., ::-1])

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ()


def build_photometric(
    color: bool, extra: Sequence[Any] | None = None, to_rgb: bool = False, **color_kwargs: Any
) -> tuple[A.Compose | None, CornerNetColorAug | None]:
    """The photometric pipeline: [CornerNet colour aug (BGR)] + [BGR → RGB] + user transforms.

    Args:
        color: include :class:`CornerNetColorAug` first (it works on BGR, like the original).
        extra: albumentations image-only transforms (or composes) applied last, in the output
            channel order.
        to_rgb: convert to RGB after the colour augmentation.
        **color_kwargs: forwarded to :class:`CornerNetColorAug`.

    Returns:
        (the ``A.Compose``, or None when it would do nothing; the colour transform or None).

    Raises:
        TypeError: an extra transform is spatial (it would move pixels without moving labels).
    """
    transforms: list[Any] = []
    color_t = CornerNetColorAug(**color_kwargs) if color else None
    if color_t is not None:
        transforms.append(color_t)
    if to_rgb:
        transforms.append(BgrToRgb())
    for t in extra or ():
        if isinstance(t, A.DualTransform):
            raise TypeError(
                f"extra transform {t!r} is spatial; only image-only transforms are supported "
                "(the dataset moves pixels and labels together)"
            )
        transforms.append(t)
    return (A.Compose(transforms) if transforms else None), color_t


def normalize(image: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(H, W, 3) float32 → (3, H, W) float32 ``(image − mean) / std``, in float32 as the original."""
    out = (image - mean.reshape(1, 1, 3)) / std.reshape(1, 1, 3)
    return np.ascontiguousarray(out.transpose(2, 0, 1))
