"""Raw head outputs → people, the one path every consumer runs: the codec (validation, evaluation, the
predictor, the image logger), the exported decode graph and the onnxruntime predictor.

Each step takes one :class:`~centerpose.codec.options.DecodeOptions`: :func:`head_probabilities` (float32,
sigmoid, flip merge), :func:`decode_probabilities` (:func:`~centerpose.codec.decode.decode`, output cells),
then :func:`~centerpose.codec.postprocess.to_image_coords` (image pixels) where the caller has the affine.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import Tensor

from centerpose.codec.decode import decode, is_exporting, sigmoid_outputs
from centerpose.codec.flip import flip_merge
from centerpose.codec.options import DecodeOptions
from centerpose.keypoints import KeypointSpec

__all__ = ["decode_heads", "decode_probabilities", "head_probabilities", "stack_with_mirrors"]


def head_probabilities(
    heads: Mapping[str, Tensor], options: DecodeOptions, keypoints: KeypointSpec, down_ratio: int = 4
) -> dict[str, Tensor]:
    """Raw logits of one stack (batch N; N = 2B ``[images; mirrors]`` with ``options.flip_test``) → float32
    heads with ``hm``/``hm_hp`` as probabilities, batch B: the sigmoid (``options.sigmoid``; a flip merge always
    uses the plain one, as the original's detector) and the flip merge (§3.3, ``fix_flip_offset`` needs
    ``down_ratio``)."""
    heads = {k: v.float() for k, v in heads.items()}  # half-precision forwards decode in float32
    if options.flip_test:
        return flip_merge(sigmoid_outputs(heads), keypoints, fix_offset=options.fix_flip_offset, down_ratio=down_ratio)
    return sigmoid_outputs(heads, clamp=options.sigmoid == "clamp")


def decode_probabilities(probs: Mapping[str, Tensor], options: DecodeOptions) -> tuple[Tensor, Tensor]:
    """:func:`~centerpose.codec.decode.decode` with ``options`` (K capped at the map's cells in eager mode).

    Returns:
        ``dets`` (B, K, 5 + 2J + 1) in output cells and ``kp_scores`` (B, K, J).
    """
    kwargs = options.decode_kwargs()
    if not is_exporting():  # a traced graph keeps its fixed K (export checks the geometry)
        h, w = probs["hm"].shape[2:]
        kwargs["K"] = min(kwargs["K"], h * w)
    return decode(probs, return_kp_scores=True, **kwargs)


def decode_heads(
    heads: Mapping[str, Tensor], options: DecodeOptions, keypoints: KeypointSpec, down_ratio: int = 4
) -> tuple[Tensor, Tensor]:
    """Raw logits of one stack → ``dets`` (B, K, 5 + 2J + 1) in output cells and ``kp_scores`` (B, K, J):
    :func:`head_probabilities` then :func:`decode_probabilities`."""
    return decode_probabilities(head_probabilities(heads, options, keypoints, down_ratio), options)


def stack_with_mirrors(
    outputs: Sequence[Mapping[str, Tensor]], mirrored: Sequence[Mapping[str, Tensor]]
) -> dict[str, Tensor]:
    """Last stack of the images' and of their mirrors' outputs as one ``[images; mirrors]`` batch."""
    return {k: torch.cat([outputs[-1][k], mirrored[-1][k]]) for k in outputs[-1]}
