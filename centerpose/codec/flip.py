"""Flip-test merge (METHOD.md §3.3, ``MultiPoseDetector.process`` with ``--flip_test``).

The network sees a batch ``[images, mirrored images]`` (first half originals, second half their mirrors
along W); :func:`flip_merge` folds the mirrored half back onto the originals. Batched over all pairs.
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import Tensor

from centerpose.keypoints import COCO_PERSON, KeypointSpec

__all__ = ["flip_merge"]


def flip_merge(
    outputs: Mapping[str, Tensor],
    keypoints: KeypointSpec = COCO_PERSON,
    *,
    fix_offset: bool = False,
    down_ratio: int = 4,
) -> dict[str, Tensor]:
    """Average each image's outputs with the un-mirrored outputs of its mirror.

    Args:
        outputs: one stack's heads with batch 2B: rows ``0..B-1`` the images, rows ``B..2B-1`` their mirrors.
            ``hm``/``hm_hp`` must already be probabilities (the detector averages probabilities, after a
            plain sigmoid). Heads: ``hm`` (2B, C, H, W), ``wh`` (2B, 2, H, W), ``hps`` (2B, 2J, H, W),
            optional ``hm_hp`` (2B, J, H, W); ``reg`` and ``hp_offset`` are taken from the first half only.
        keypoints: skeleton whose ``flip_index`` swaps left/right joints.
        fix_offset: ``False`` (parity) negates the mirrored x offsets of ``hps`` (QUIRK E11: a −(1 − 1/R)/2
            cell bias of regressed joints); ``True`` uses the exact mirror ``dx = (1 − 1/R) − dx'``.
        down_ratio: R, input pixels per output cell (used by ``fix_offset`` only).

    Returns:
        Merged heads with batch B (a new dict; inputs untouched).
    """
    hm = outputs["hm"]
    if hm.shape[0] % 2:
        raise ValueError(f"flip_merge: batch must be 2B (images then mirrors), got {hm.shape[0]}")
    n = hm.shape[0] // 2
    perm = torch.as_tensor(keypoints.flip_index, device=hm.device)
    j = keypoints.num_joints

    def mirrored(x: Tensor) -> Tensor:
        return x[n:].flip(3)

    merged: dict[str, Tensor] = {}
    for name in ("hm", "wh"):
        merged[name] = (outputs[name][:n] + mirrored(outputs[name])) / 2

    hps = outputs["hps"]
    if hps.shape[1] != 2 * j:
        raise ValueError(f"flip_merge: hps has {hps.shape[1]} channels, keypoint spec has {j} joints")
    back = mirrored(hps).reshape(n, j, 2, *hps.shape[2:])
    dx = back[:, :, 0]
    dx = (1 - 1 / down_ratio) - dx if fix_offset else -dx
    back = torch.stack([dx, back[:, :, 1]], dim=2)[:, perm].reshape(n, 2 * j, *hps.shape[2:])
    merged["hps"] = (hps[:n] + back) / 2

    if "hm_hp" in outputs:
        hm_hp = outputs["hm_hp"]
        merged["hm_hp"] = (hm_hp[:n] + mirrored(hm_hp)[:, perm]) / 2
    for name in ("reg", "hp_offset"):
        if name in outputs:
            merged[name] = outputs[name][:n]
    for name, value in outputs.items():  # any extra head: keep the unflipped pass
        merged.setdefault(name, value[:n])
    return merged
