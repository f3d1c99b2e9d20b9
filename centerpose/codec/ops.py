"""Tensor helpers shared by the decoder and the loss: reading maps at cell indices and the clamped sigmoid."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["clamped_sigmoid", "gather_feat"]


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
