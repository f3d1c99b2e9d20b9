"""Raw head outputs → people in image pixels: the one path shared by validation, the predictor and drawing."""

from __future__ import annotations

from typing import Literal, Mapping, Sequence

import torch
from torch import Tensor

from centerpose.codec.decode import SnapMode, TieBreak, decode, sigmoid_outputs
from centerpose.codec.flip import flip_merge
from centerpose.codec.postprocess import to_image_coords
from centerpose.keypoints import COCO_PERSON, KeypointSpec


def decode_to_image(heads: Mapping[str, Tensor], c: Tensor, s: Tensor, *, keypoints: KeypointSpec = COCO_PERSON,
                    K: int = 100, flip: bool = False, sigmoid: Literal["plain", "clamp"] = "plain",
                    fix_flip_offset: bool = False, tie_break: TieBreak = "topk",
                    scale: float = 1.0, snap: SnapMode = "nearest", rescore: bool = False,
                    down_ratio: int = 4) -> tuple[Tensor, Tensor]:
    """Sigmoid, optional flip merge, decode and inverse affine of one stack's raw outputs.

    Args:
        heads: raw logits of one stack, ``{head: (N, C, h, w)}``; with ``flip`` the batch is ``[images;
            their mirrors]`` (N = 2B), merged as the detector's flip test (§3.3, probabilities averaged).
        c: (B, 2) affine centres; s: (B,) or (B, 2) affine scales (the sample's or pre-process's meta).
        keypoints: skeleton (flip pairs).
        K: detections per image (capped at the number of output cells).
        sigmoid: ``plain`` = the detector; ``clamp`` = the trainer path's clamped sigmoid (QUIRK E1). A flip
            merge always uses the plain sigmoid, as the original's detector.
        fix_flip_offset: exact mirror of x offsets in the flip merge (off = the original, QUIRK E11).
        tie_break: ``topk`` (the original's order on CPU) or ``stable``.
        scale: test scale; coordinates are divided by it.
        snap: ``nearest`` (the original), ``nearest_valid`` or ``weighted`` joint snapping (see :func:`decode`).
        rescore: rank people by centre and mean joint score (see :func:`decode`; off = the original).
        down_ratio: input pixels per output cell (the exact flip mirror of ``fix_flip_offset`` uses it).

    Returns:
        ``rows`` (B, K, 4 + 1 + 2J) ``[x1 y1 x2 y2, score, x0 y0 ...]`` in image pixels (float32), and
        ``kp_scores`` (B, K, J), the joint heatmap probability at each final joint.
    """
    probs = head_probabilities(heads, keypoints=keypoints, flip=flip, sigmoid=sigmoid,
                               fix_flip_offset=fix_flip_offset, down_ratio=down_ratio)
    return probabilities_to_image(probs, c, s, K=K, tie_break=tie_break, snap=snap, rescore=rescore, scale=scale)


def head_probabilities(heads: Mapping[str, Tensor], *, keypoints: KeypointSpec = COCO_PERSON, flip: bool = False,
                       sigmoid: Literal["plain", "clamp"] = "plain", fix_flip_offset: bool = False,
                       down_ratio: int = 4) -> dict[str, Tensor]:
    """The first half of :func:`decode_to_image`: float32 heads, sigmoid, optional flip merge.

    Returns:
        One stack's heads with ``hm``/``hm_hp`` as probabilities, batch B (2B in with ``flip``).
    """
    heads = {k: v.float() for k, v in heads.items()}  # half-precision forwards decode in float32
    if flip:
        return flip_merge(sigmoid_outputs(heads), keypoints, fix_offset=fix_flip_offset, down_ratio=down_ratio)
    return sigmoid_outputs(heads, clamp=sigmoid == "clamp")


def probabilities_to_image(probs: Mapping[str, Tensor], c: Tensor, s: Tensor, *, K: int = 100,
                           tie_break: TieBreak = "topk", snap: SnapMode = "nearest", rescore: bool = False,
                           scale: float = 1.0) -> tuple[Tensor, Tensor]:
    """The second half of :func:`decode_to_image`: decode probabilities (network or oracle heads) and map
    the people to image pixels. Returns ``rows`` (B, K, 5 + 2J) and ``kp_scores`` (B, K, J)."""
    h, w = probs["hm"].shape[2:]
    dets, kp_scores = decode(probs, K=min(int(K), h * w), tie_break=tie_break, snap=snap, rescore=rescore,
                             return_kp_scores=True)
    c = torch.as_tensor(c, device=dets.device)
    s = torch.as_tensor(s, device=dets.device)
    return to_image_coords(dets, c, s, (h, w), scale=scale), kp_scores


def stack_with_mirrors(outputs: Sequence[Mapping[str, Tensor]], mirrored: Sequence[Mapping[str, Tensor]]
                       ) -> dict[str, Tensor]:
    """Last stack of the images' and of their mirrors' outputs as one ``[images; mirrors]`` batch."""
    return {k: torch.cat([outputs[-1][k], mirrored[-1][k]]) for k in outputs[-1]}
