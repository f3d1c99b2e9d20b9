"""Detections from output-map to image coordinates (METHOD.md §3.4, ``multi_pose_post_process``).

For the un-rotated affine of the test path the inverse transform is the closed form
``x_img = (x − w/2)·s/w + c_x``, ``y_img = (y − h/2)·s/w + c_y`` (both axes scale by s/w), evaluated in
float64 and rounded to float32 like the original's ``transform_preds``. No clipping (QUIRK E8).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

__all__ = ["to_image_coords", "split_results"]


def to_image_coords(dets: Tensor, c: Tensor, s: Tensor, output_size: Sequence[int] | int, scale: float = 1.0) -> Tensor:
    """Map decoded detections back to the original image and drop the class column.

    Args:
        dets: (B, K, 5 + 2J + 1) rows ``[box 4, score, joints 2J, class]`` in output-map cells.
        c: (B, 2) affine centre (x, y) in image pixels.
        s: (B,) affine scale in image pixels, or (B, 2) (keep_res: only ``s[:, 0]`` is used, as the original).
        output_size: (h, w) of the output map, or one int for a square map.
        scale: test scale; coordinates (not the score) are divided by it after the float32 rounding.

    Returns:
        (B, K, 4 + 1 + 2J) float32: ``[x1 y1 x2 y2, score, x0 y0 ... ]`` in image pixels.
    """
    if dets.dim() != 3 or dets.shape[2] < 6 or (dets.shape[2] - 6) % 2:
        raise ValueError(f"to_image_coords: dets must be (B, K, 5 + 2J + 1), got {tuple(dets.shape)}")
    h, w = (output_size, output_size) if isinstance(output_size, int) else (int(v) for v in output_size)
    dev = dets.device
    c = torch.as_tensor(c, device=dev).to(torch.float64).reshape(-1, 2)
    s = torch.as_tensor(s, device=dev).to(torch.float64)
    s0 = s[:, 0] if s.dim() == 2 else s.reshape(-1)
    if c.shape[0] != dets.shape[0] or s0.shape[0] != dets.shape[0]:
        raise ValueError(f"to_image_coords: {dets.shape[0]} images but c {tuple(c.shape)}, s {tuple(s.shape)}")
    ratio = (s0 / w).reshape(-1, 1, 1)

    rows = dets[..., :-1].to(torch.float64)  # class column dropped
    pts = torch.cat([rows[..., 0:4], rows[..., 5:]], dim=2)
    xy = pts.reshape(*pts.shape[:2], -1, 2)
    half = torch.tensor([w / 2, h / 2], dtype=torch.float64, device=dev)
    img = (xy - half) * ratio.unsqueeze(-1) + c.reshape(-1, 1, 1, 2)
    img = img.to(torch.float32).reshape(pts.shape)
    if scale != 1.0:
        img = img / scale
    return torch.cat([img[..., 0:4], dets[..., 4:5].to(torch.float32), img[..., 4:]], dim=2)


def split_results(results: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Split post-processed rows into their parts (see :class:`~centerpose.codec.poses.Poses`).

    Args:
        results: (B, K, 4 + 1 + 2J) from :func:`to_image_coords`.

    Returns:
        ``boxes`` (B, K, 4) x1 y1 x2 y2, ``scores`` (B, K), ``keypoints`` (B, K, J, 2).
    """
    from centerpose.codec.poses import Poses

    if results.dim() != 3:
        raise ValueError(f"split_results: results must be (B, K, 5 + 2J), got {tuple(results.shape)}")
    poses = Poses.from_rows(results)
    return poses.boxes, poses.scores, poses.joints
