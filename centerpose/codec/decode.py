"""Decoding head outputs into detections (METHOD.md §3.2, ``multi_pose_decode``).

Batched over images and vectorised over detections, joints and candidates; runs on any device. Inputs
``hm`` and ``hm_hp`` are **probabilities** (after a sigmoid): use :func:`sigmoid_outputs` on raw network
outputs. Output rows (output-map coordinates, float):

    [x1 y1 x2 y2 | score | x0 y0 x1 y1 ... x(J-1) y(J-1) | class]    (5 + 2J + 1 columns; 40 for COCO)
"""

from __future__ import annotations

from typing import Literal, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from centerpose.codec.ops import clamped_sigmoid, gather_feat, joint_offset_map

__all__ = ["sigmoid_outputs", "heatmap_nms", "topk_detections", "topk_per_channel", "decode"]

TieBreak = Literal["topk", "stable"]
SnapMode = Literal["nearest", "nearest_valid", "weighted"]
SNAP_MODES: tuple[str, ...] = ("nearest", "nearest_valid", "weighted")
# "weighted" snapping: a candidate's proximity weight falls as a Gaussian of its distance from the regressed
# joint, this fraction of the person's longer box side (the hard limit stays 0.3 of it).
_SNAP_PROXIMITY = 0.25


def sigmoid_outputs(outputs: Mapping[str, Tensor], clamp: bool = False) -> dict[str, Tensor]:
    """Turn the logits of ``hm`` and ``hm_hp`` into probabilities, out of place.

    Args:
        outputs: raw head outputs of one stack.
        clamp: ``False`` = the detector's plain sigmoid (test.py path); ``True`` = the loss's
            ``clamp(σ, 1e-4, 1 − 1e-4)`` that the trainer path decodes (QUIRK E1).

    Returns:
        A new dict; other heads are passed through unchanged.
    """
    act = clamped_sigmoid if clamp else torch.sigmoid
    return {k: act(v) if k in ("hm", "hm_hp") else v for k, v in outputs.items()}


def heatmap_nms(heat: Tensor, kernel: int = 3) -> Tensor:
    """Keep only local maxima: ``heat · [maxpool(heat) == heat]`` (plateaus survive whole).

    Args:
        heat: (B, C, H, W).
    """
    hmax = F.max_pool2d(heat, kernel, stride=1, padding=(kernel - 1) // 2)
    return heat * (hmax == heat).to(heat.dtype)


def _mod(inds: Tensor, n: int) -> Tensor:
    """``inds % n`` for non-negative integer ``inds``, written as ``inds - (inds // n) * n``: the same
    integers, and it exports to ONNX with a symbolic ``n`` (a dynamic-size map), which ``%`` does not."""
    return inds - torch.div(inds, n, rounding_mode="floor") * n


def _ranked(values: Tensor, k: int, tie_break: TieBreak) -> tuple[Tensor, Tensor]:
    """Top-k along the last dim: torch.topk (original tie order) or a stable descending sort."""
    if k > values.shape[-1]:
        raise ValueError(f"decode: K={k} exceeds the {values.shape[-1]} cells available")
    if tie_break == "topk":
        return torch.topk(values, k)
    if tie_break == "stable":
        # Equal scores keep ascending index order (QUIRK E10 "improved").
        vals, idx = torch.sort(values, dim=-1, descending=True, stable=True)
        return vals[..., :k], idx[..., :k]
    raise ValueError(f"decode: tie_break must be 'topk' or 'stable', got {tie_break!r}")


def topk_detections(heat: Tensor, k: int, tie_break: TieBreak = "topk"
                    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """The original's two-stage top-K over classes and cells (``_topk``).

    Stage (a) ranks each class's H·W cells; stage (b) re-ranks the C·K survivors. The two calls keep the
    original's tensor shapes so that equal scores come out in the same order (QUIRK E10).

    Args:
        heat: (B, C, H, W) scores (after NMS).
        k: number of detections.
        tie_break: ``"topk"`` (parity) or ``"stable"`` (equal scores by ascending cell index).

    Returns:
        ``scores`` (B, K), ``inds`` (B, K) int64 flat cell index, ``classes`` (B, K) int64,
        ``ys`` (B, K) and ``xs`` (B, K) integer cell coordinates as ``heat.dtype``.
    """
    b, c, h, w = heat.shape
    cell_scores, cell_inds = _ranked(heat.reshape(b, c, h * w), k, tie_break)  # (B, C, K)
    cell_inds = _mod(cell_inds, h * w)
    scores, pos = _ranked(cell_scores.reshape(b, c * k), k, tie_break)  # (B, K)
    classes = torch.div(pos, k, rounding_mode="floor")
    inds = cell_inds.reshape(b, c * k).gather(1, pos)
    ys = torch.div(inds, w, rounding_mode="floor").to(heat.dtype)  # floor == the original's trunc (E7)
    xs = _mod(inds, w).to(heat.dtype)
    return scores, inds, classes, ys, xs


def topk_per_channel(heat: Tensor, k: int, tie_break: TieBreak = "topk"
                     ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Top-K cells of every channel separately (``_topk_channel``).

    Args:
        heat: (B, C, H, W).

    Returns:
        ``scores``, ``inds`` (int64), ``ys``, ``xs``, each (B, C, K).
    """
    b, c, h, w = heat.shape
    scores, inds = _ranked(heat.reshape(b, c, h * w), k, tie_break)
    inds = _mod(inds, h * w)
    ys = torch.div(inds, w, rounding_mode="floor").to(heat.dtype)
    xs = _mod(inds, w).to(heat.dtype)
    return scores, inds, ys, xs


def _snap(kps: Tensor, bboxes: Tensor, hm_hp: Tensor, hp_offset: Tensor | None, k: int,
          thresh: float, tie_break: TieBreak, snap: SnapMode) -> Tensor:
    """Move regressed joints onto nearby keypoint-heatmap peaks (§3.2 step 6, QUIRK E9).

    Args:
        kps: (B, K, J, 2) regressed joints. bboxes: (B, K, 4). hm_hp: (B, J, H, W) probabilities.
        hp_offset: (B, 2, H, W) shared or (B, 2J, H, W) per-joint offsets, or None.

    Returns:
        (B, K, J, 2) final joints.
    """
    b, j = hm_hp.shape[:2]
    cand_score, cand_ind, cand_y, cand_x = topk_per_channel(heatmap_nms(hm_hp), k, tie_break)  # (B, J, Kc)
    if hp_offset is not None:
        joint = torch.arange(j * k, device=cand_ind.device) // k  # candidates are joint-major
        off = gather_feat(*joint_offset_map(hp_offset, cand_ind.reshape(b, j * k), joint)).reshape(b, j, k, 2)
        cand_x = cand_x + off[..., 0]
        cand_y = cand_y + off[..., 1]
    else:
        cand_x = cand_x + 0.5
        cand_y = cand_y + 0.5
    # Weak candidates are pushed 10^4 cells away; strict '>' means exactly 0.1 is weak.
    strong = cand_score > thresh
    cand_score = torch.where(strong, cand_score, torch.full_like(cand_score, -1.0))
    far = torch.full_like(cand_x, -10000.0)
    cand = torch.stack([torch.where(strong, cand_x, far), torch.where(strong, cand_y, far)], dim=-1)  # (B,J,Kc,2)

    reg = kps.permute(0, 2, 1, 3)  # (B, J, Kd, 2)
    # All detection x candidate pairs; dx² + dy² then sqrt rounds exactly like the original's
    # ((r − c) ** 2).sum(-1) ** 0.5, with half the temporaries.
    dx = reg[..., 0].unsqueeze(3) - cand[..., 0].unsqueeze(2)
    dy = reg[..., 1].unsqueeze(3) - cand[..., 1].unsqueeze(2)
    dist = (dx * dx + dy * dy).sqrt()  # (B, J, Kd, Kc)

    left, top, right, bottom = (bboxes[..., i].reshape(b, 1, k, 1) for i in range(4))  # (B, 1, Kd, 1)
    side = torch.max(bottom - top, right - left)  # (B, 1, Kd, 1)
    limit = side * 0.3
    if snap not in SNAP_MODES:
        raise ValueError(f"decode: snap must be one of {SNAP_MODES}, got {snap!r}")
    rank = dist  # the candidate with the lowest rank is tested
    if snap != "nearest":
        # Improved E9: only candidates that pass every test compete, not just the nearest one.
        cx, cy = cand[..., 0].unsqueeze(2), cand[..., 1].unsqueeze(2)  # (B, J, 1, Kc)
        valid = ((cx >= left) & (cx <= right) & (cy >= top) & (cy <= bottom)
                 & (cand_score.unsqueeze(2) >= thresh) & (dist <= limit))
        if snap == "weighted":
            # A poorly regressed joint often lies nearer a wrong weak peak than the strong right one:
            # rank by heat x proximity instead of distance alone.
            rank = -cand_score.unsqueeze(2) * torch.exp(-0.5 * (dist / (side * _SNAP_PROXIMITY)) ** 2)
        rank = torch.where(valid, rank, torch.full_like(rank, float("inf")))
    min_ind = rank.min(dim=3).indices  # first index on ties, like the original
    min_dist = dist.gather(3, min_ind.unsqueeze(3)).squeeze(3)
    best_score = cand_score.gather(2, min_ind)  # (B, J, Kd)
    best = cand.gather(2, min_ind.unsqueeze(-1).expand(-1, -1, -1, 2))  # (B, J, Kd, 2)

    bx, by = best[..., 0], best[..., 1]
    left, top, right, bottom, limit = (t.squeeze(-1) for t in (left, top, right, bottom, limit))
    reject = ((bx < left) | (bx > right) | (by < top) | (by > bottom)
              | (best_score < thresh) | (min_dist > limit))
    out = torch.where(reject.unsqueeze(-1), reg, best)
    return out.permute(0, 2, 1, 3)


def _heat_at(hm_hp: Tensor, kps: Tensor) -> Tensor:
    """hm_hp (B, J, H, W) sampled at the cell holding each joint of kps (B, K, J, 2) → (B, K, J)."""
    b, j, h, w = hm_hp.shape
    x = kps[..., 0].floor().clamp(0, w - 1).long()
    y = kps[..., 1].floor().clamp(0, h - 1).long()
    flat = (y * w + x).permute(0, 2, 1)  # (B, J, K)
    return hm_hp.reshape(b, j, h * w).gather(2, flat).permute(0, 2, 1)


@torch.no_grad()
def decode(outputs: Mapping[str, Tensor], K: int = 100, *, hm_hp_thresh: float = 0.1,
           tie_break: TieBreak = "topk", snap: SnapMode = "nearest", rescore: bool = False,
           return_kp_scores: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """Decode one stack's head outputs into K detections per image (``multi_pose_decode``).

    Heads used: ``hm`` (B, C, H, W) and ``hm_hp`` (B, J, H, W) as **probabilities**; ``hps`` (B, 2J, H, W),
    ``wh`` (B, 2, H, W); optional ``reg`` (B, 2, H, W) (absent: centre = cell + 0.5), ``hm_hp`` (absent: no
    snapping) and ``hp_offset`` (B, 2, H, W), or (B, 2J, H, W) per joint (absent: candidates at cell + 0.5).
    Boxes and joints are not clipped (QUIRK E8).

    Args:
        outputs: head dict of one stack (e.g. ``sigmoid_outputs(model(x)[-1])``).
        K: detections per image; also the number of heatmap candidates per joint.
        hm_hp_thresh: candidate threshold of the snapping step (0.1 in the original, hard-coded).
        tie_break: ``"topk"`` reproduces the original's torch.topk order on CPU (QUIRK E10);
            ``"stable"`` orders equal scores by ascending cell index, deterministically on every device.
        snap: ``"nearest"`` (original: only the nearest candidate is tested, QUIRK E9),
            ``"nearest_valid"`` (the nearest candidate that passes the box, score and distance tests) or
            ``"weighted"`` (of those, the one with the highest heat x Gaussian proximity).
        rescore: a person's score becomes the geometric mean of its centre score and the mean of its joint
            scores (below), and the K people are re-sorted by it (off = the original: the centre heatmap alone
            ranks people, so a confident centre with scattered joints outranks a well-found person for
            keypoint AP). The geometric mean keeps a probability's scale, so score thresholds (drawing,
            ``predict``'s 0.3) keep their meaning.
        return_kp_scores: also return per-joint scores (B, K, J): the ``hm_hp`` probability at the cell
            that holds the final joint (floor, clamped into the map), so snapped and regressed joints are
            scored alike; without ``hm_hp``, the detection score repeated.

    Returns:
        ``dets`` (B, K, 5 + 2J + 1) sorted by descending score, or ``(dets, kp_scores)``.
    """
    heat = outputs["hm"]
    hps = outputs["hps"]
    if heat.dim() != 4 or hps.dim() != 4 or hps.shape[1] % 2:
        raise ValueError(f"decode: expected hm (B,C,H,W) and hps (B,2J,H,W), got {tuple(heat.shape)} "
                         f"and {tuple(hps.shape)}")
    b = heat.shape[0]
    j = hps.shape[1] // 2

    scores, inds, classes, ys, xs = topk_detections(heatmap_nms(heat), K, tie_break)
    # Regressed joints are offsets from the integer centre cell (the targets are pt − ct_int).
    kps = gather_feat(hps, inds).reshape(b, K, j, 2)
    kps = kps + torch.stack([xs, ys], dim=-1).unsqueeze(2)

    reg = outputs.get("reg")
    if reg is not None:
        off = gather_feat(reg, inds)
        cx = xs.unsqueeze(2) + off[..., 0:1]
        cy = ys.unsqueeze(2) + off[..., 1:2]
    else:
        cx = xs.unsqueeze(2) + 0.5
        cy = ys.unsqueeze(2) + 0.5
    wh = gather_feat(outputs["wh"], inds)
    half_w, half_h = wh[..., 0:1] / 2, wh[..., 1:2] / 2
    bboxes = torch.cat([cx - half_w, cy - half_h, cx + half_w, cy + half_h], dim=2)

    hm_hp = outputs.get("hm_hp")
    if hm_hp is not None:
        kps = _snap(kps, bboxes, hm_hp, outputs.get("hp_offset"), K, hm_hp_thresh, tie_break, snap)

    dets = torch.cat([bboxes, scores.unsqueeze(2), kps.reshape(b, K, 2 * j),
                      classes.unsqueeze(2).to(heat.dtype)], dim=2)
    if not (return_kp_scores or rescore):
        return dets
    kp_scores = _heat_at(hm_hp, kps) if hm_hp is not None else scores.unsqueeze(2).expand(b, K, j)
    if rescore:
        dets[..., 4] = (scores * kp_scores.mean(dim=2)).sqrt()
        # re-ranked with the decode's own top-K (exports as ONNX TopK; a stable sort does not)
        _, order = _ranked(dets[..., 4], K, tie_break)  # (B, K)
        dets = dets.gather(1, order.unsqueeze(2).expand_as(dets))
        kp_scores = kp_scores.gather(1, order.unsqueeze(2).expand_as(kp_scores))
    return (dets, kp_scores) if return_kp_scores else dets
