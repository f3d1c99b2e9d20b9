"""Photometrics as one per-pixel affine map, applied to a uint8 batch where it lands (on GPU or CPU).

The CornerNet colour augmentation (METHOD §1.3) and the normalisation are affine per pixel in the
colour channels: brightness x ← αx; contrast x ← αx + (1 − α)ḡ; saturation x ← αx + (1 − α)g with
g = w·x₀ the grey value of the *un-augmented* image and ḡ its image mean (both computed once, before
any op, QUIRK D14); PCA lighting x ← x + δ; then (x − mean) / std. Nothing clips. Composed with
x₀ = u / 255 they fold into one 3 × 4 matrix ``[M | o]`` per sample, so that the finished input is
``M @ u + o`` for the warped uint8 pixel u (BGR). ḡ = w · mean(u) / 255 follows from the uint8
image's channel means (the mean is linear), so the fold is exact up to float32 rounding (≈ 1e-6).

The worker ships the warped uint8 image and this (3, 4) matrix; :func:`finish_input` turns a collated
batch into the float input in one batched op (``LightningModule.on_after_batch_transfer``).
"""

from __future__ import annotations

from typing import Any, Sequence

import cv2
import numpy as np
import torch

from centerpose.data.transforms import EIG_VAL, EIG_VEC

# cv2.COLOR_BGR2GRAY weights in BGR order (0.114 B + 0.587 G + 0.299 R).
GREY_BGR = np.array([0.114, 0.587, 0.299], dtype=np.float64)

IMAGE_KEY = "image"  # (B, H, W, 3) uint8 warped BGR images of a batch in uint8 form
AFFINE_KEY = "input_affine"  # (B, 3, 4) float32 per-sample [M | o]


def channel_means(image: np.ndarray) -> np.ndarray:
    """(3,) float64 per-channel means of an (H, W, 3) uint8 image (cv2's SIMD reduction)."""
    return np.asarray(cv2.mean(image)[:3], dtype=np.float64)


def color_affine(
    ops: Sequence[str],
    alphas: Sequence[float],
    light: np.ndarray,
    grey_mean: float,
    eig_val: np.ndarray = EIG_VAL,
    eig_vec: np.ndarray = EIG_VEC,
) -> tuple[np.ndarray, np.ndarray]:
    """The drawn colour ops (:func:`centerpose.data.transforms.color_aug`) as ``x ↦ A x + b`` on BGR x in [0, 1].

    Args:
        ops, alphas: op names in application order and their factors α.
        light: (3,) lighting coefficients a.
        grey_mean: ḡ, the image mean of the grey image of the un-augmented x.

    Returns:
        A (3, 3) and b (3,), float64.
    """
    # Plain Python floats (float64, the same operations in the same order as numpy would do them):
    # a 3 x 3 fold per sample is cheaper without numpy's per-call overhead.
    grey = GREY_BGR.tolist()
    A = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    b = [0.0, 0.0, 0.0]
    for op, alpha in zip(ops, alphas):
        alpha = float(alpha)
        A = [[a * alpha for a in row] for row in A]
        b = [v * alpha for v in b]
        if op == "contrast":
            b = [v + (1.0 - alpha) * grey_mean for v in b]
        elif op == "saturation":  # every channel gets (1 − α) · g(x₀)
            A = [[a + (1.0 - alpha) * w for a, w in zip(row, grey)] for row in A]
        elif op != "brightness":
            raise ValueError(f"unknown colour op {op!r}")
    light_offset = np.dot(eig_vec.astype(np.float64), eig_val.astype(np.float64) * np.asarray(light, np.float64))
    return np.array(A), np.array(b) + light_offset


def input_affine(
    mean: np.ndarray, std: np.ndarray, *, channel_order: str = "bgr", color: tuple[np.ndarray, np.ndarray] | None = None
) -> np.ndarray:
    """(3, 4) float32 ``[M | o]`` taking a BGR uint8 pixel u to the network input ``M u + o``.

    Args:
        mean, std: (3,) normalisation statistics in ``channel_order``.
        channel_order: "bgr", or "rgb" (the colour ops work in BGR, then the channels are reversed).
        color: ``(A, b)`` of :func:`color_affine` (augmenting), or None.
    """
    if channel_order not in ("bgr", "rgb"):
        raise ValueError(f"channel_order must be 'bgr' or 'rgb', got {channel_order!r}")
    # Python floats: the same float64 operations, elementwise, as numpy's on these (3, 3) and (3,) arrays,
    # without a dozen numpy calls per sample.
    if color is None:
        A, b = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], [0.0, 0.0, 0.0]
    else:
        A, b = np.asarray(color[0], np.float64).tolist(), np.asarray(color[1], np.float64).tolist()
    A = [[a / 255.0 for a in row] for row in A]
    if channel_order == "rgb":
        A, b = A[::-1], b[::-1]
    mean = np.asarray(mean, np.float64).tolist()
    std = np.asarray(std, np.float64).tolist()
    rows = [[a / sd for a in row] + [(v - m) / sd] for row, v, m, sd in zip(A, b, mean, std)]
    return np.array(rows, dtype=np.float32)


def apply_input_affine(images: torch.Tensor, affine: torch.Tensor) -> torch.Tensor:
    """The batched per-pixel affine map: uint8 images to the float network input.

    On CUDA (or any non-CPU device) one set of elementwise torch ops for the whole batch; on the CPU
    cv2's SIMD kernels, which write each output plane in one pass (several times less CPU time than
    the torch ops there). Both compute in float32 without matmuls, so TF32/bf16 matmul settings cannot
    touch the result; they agree within 1e-6.

    Args:
        images: (B, H, W, 3) uint8 (or (H, W, 3)).
        affine: (B, 3, 4) or (3, 4) float32 ``[M | o]``.

    Returns:
        (B, 3, H, W) float32 contiguous on ``images.device`` (or (3, H, W) for a single image).
    """
    single = images.dim() == 3
    if single:
        images = images[None]
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected (B, H, W, 3) uint8 images, got {tuple(images.shape)} {images.dtype}")
    affine = affine.to(images.device, torch.float32)
    if affine.dim() == 2:
        affine = affine.expand(images.shape[0], 3, 4)
    out = _affine_cv2(images, affine) if images.device.type == "cpu" else _affine_torch(images, affine)
    return out[0] if single else out


def _affine_torch(images: torch.Tensor, affine: torch.Tensor) -> torch.Tensor:
    """(B, H, W, 3) uint8, (B, 3, 4) → (B, 3, H, W) float32 with batched elementwise torch ops."""
    x = images.permute(0, 3, 1, 2).contiguous()  # (B, 3, H, W) uint8 planes for the channel loop
    m = affine[:, :, :3, None, None]  # (B, 3 out, 3 in, 1, 1)
    out = torch.mul(x[:, 0:1], m[:, :, 0])  # uint8 × float32 promotes to float32 without a copy
    out.addcmul_(x[:, 1:2], m[:, :, 1])
    out.addcmul_(x[:, 2:3], m[:, :, 2])
    return out.add_(affine[:, :, 3, None, None])


def _affine_cv2(images: torch.Tensor, affine: torch.Tensor) -> torch.Tensor:
    """CPU version of :func:`_affine_torch`: per sample, the uint8 pixels converted once into a reused
    float32 (H, W, 3) buffer, then per output plane one ``cv2.transform`` with that plane's row
    ``[M[c] | o[c]]`` written straight into the (B, 3, H, W) output (no interleaved intermediate, no
    split; ~1.6x less CPU time than one addWeighted + scaleAdd pair per plane). The output is allocated by
    numpy: torch's CPU allocator hands out fresh pages for a block this size on every call (measured: ~700
    page faults per 512² sample, costing 1-2x the kernels' time), numpy's comes from the reused heap."""
    b, h, w, _ = images.shape
    out = torch.from_numpy(np.empty((b, 3, h, w), np.float32))
    dst = out.numpy()[..., None]  # (B, 3, H, W, 1): each plane as a one-channel cv2 image
    src = images.contiguous().numpy()
    coef = affine.detach().numpy().astype(np.float64)
    pixels = np.empty((h, w, 3), np.float32)
    for i in range(b):
        np.copyto(pixels, src[i])
        for c in range(3):
            cv2.transform(pixels, coef[i, c : c + 1], dst=dst[i, c])
    return out


def finish_input(batch: dict[str, Any]) -> dict[str, Any]:
    """Replace a batch's uint8 ``image`` + ``input_affine`` by the finished float ``input`` (in place).

    Batches that already carry a float ``input`` (datasets with user transforms, the CPU float path)
    pass through unchanged.
    """
    if IMAGE_KEY in batch and AFFINE_KEY in batch:
        batch["input"] = apply_input_affine(batch.pop(IMAGE_KEY), batch.pop(AFFINE_KEY))
    return batch


def sample_input(sample: dict[str, Any]) -> np.ndarray:
    """(3, R, R) float32 network input of one dataset sample, in either form (float or uint8 + affine)."""
    if "input" in sample:
        return np.asarray(sample["input"])
    out = apply_input_affine(torch.as_tensor(sample[IMAGE_KEY]), torch.as_tensor(sample[AFFINE_KEY]))
    return out.numpy()
