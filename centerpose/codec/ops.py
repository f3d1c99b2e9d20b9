"""Tensor helpers shared by the decoder and the loss: reading maps at cell indices and the clamped sigmoid."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["JOINT_OFFSETS", "clamped_sigmoid", "gather_cells", "gather_feat", "joint_offset_map", "joint_offsets_at"]

#: ``hp_offset`` layouts: ``shared``, one sub-cell offset pair for every joint (B, 2, H, W), the original;
#: ``per_joint``, one pair per joint (B, 2J, H, W) (QUIRK E16).
JOINT_OFFSETS = ("shared", "per_joint")


def clamped_sigmoid(x: Tensor, eps: float = 1e-4) -> Tensor:
    """``clamp(sigmoid(x), eps, 1 - eps)``, out of place (QUIRK E1, same values and gradients).

    Args:
        x: logits of any shape.

    Returns:
        Probabilities of the same shape, kept away from 0 and 1 so that the focal loss's logs stay finite.
    """
    return torch.clamp(torch.sigmoid(x), min=eps, max=1 - eps)


def gather_feat(feat: Tensor, ind: Tensor) -> Tensor:
    """Read a dense map at flat cell indices.

    Args:
        feat: (B, C, H, W) map.
        ind: (B, M) int64 flat indices ``y * W + x``.

    Returns:
        (B, M, C): ``out[b, m] = feat[b, :, ind[b, m] // W, ind[b, m] % W]``.
    """
    b, c = feat.shape[:2]
    flat = feat.permute(0, 2, 3, 1).reshape(b, -1, c)
    return flat.gather(1, ind.long().unsqueeze(2).expand(-1, -1, c))


def joint_offset_map(hp_offset: Tensor, ind: Tensor, joint: Tensor) -> tuple[Tensor, Tensor]:
    """The map and flat indices at which :func:`gather_feat` reads each slot's joint offset.

    A shared ``hp_offset`` head (B, 2, H, W) (the original) is returned as it is. A per-joint head
    (B, 2J, H, W) (``pose_heads(joint_offsets="per_joint")``) becomes one (B, 2, J·H, W) map, joint j's
    rows stacked below joint j−1's, and slot m reads it at ``ind[:, m] + joint[m]·H·W``.

    Args:
        hp_offset: (B, 2, H, W) or (B, 2J, H, W) joint offsets.
        ind: (B, M) int64 flat cell indices ``y * W + x``.
        joint: (M,) int64 joint of each slot.

    Returns:
        ``(map, ind)`` for ``gather_feat(map, ind)`` -> (B, M, 2).
    """
    b, c, h, w = hp_offset.shape
    if c == 2:
        return hp_offset, ind
    stacked = hp_offset.reshape(b, c // 2, 2, h, w).transpose(1, 2).reshape(b, 2, c // 2 * h, w)
    return stacked, ind + joint.to(ind.device).unsqueeze(0) * (h * w)


def gather_cells(feat: Tensor, ind: Tensor) -> Tensor:
    """Read a dense map at flat cell indices, channels first: no copy of the map (the decode's reads).

    Args:
        feat: (B, C, H, W) map.
        ind: (B, M) int64 flat indices ``y * W + x``.

    Returns:
        (B, C, M): ``out[b, :, m] = feat[b, :, ind[b, m] // W, ind[b, m] % W]`` (the values of
        :func:`gather_feat`, transposed).
    """
    b, c = feat.shape[:2]
    return feat.reshape(b, c, -1).gather(2, ind.unsqueeze(1).expand(-1, c, -1))


def joint_offsets_at(hp_offset: Tensor, ind: Tensor) -> Tensor:
    """Each joint's sub-cell offset at its own cells, for both ``hp_offset`` layouts (:data:`JOINT_OFFSETS`).

    Args:
        hp_offset: (B, 2, H, W) shared or (B, 2J, H, W) per-joint offsets.
        ind: (B, J, M) int64 flat cell indices ``y * W + x`` per joint.

    Returns:
        (B, J, 2, M): ``(dx, dy)`` of joint j at ``ind[:, j]`` (the shared map for every joint, or joint j's pair).
    """
    b, c = hp_offset.shape[:2]
    j, m = ind.shape[1:]
    if c == 2:
        return gather_cells(hp_offset, ind.reshape(b, j * m)).reshape(b, 2, j, m).transpose(1, 2)
    return hp_offset.reshape(b, c // 2, 2, -1).gather(3, ind.unsqueeze(2).expand(-1, -1, 2, -1))
