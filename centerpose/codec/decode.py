"""Decoding head outputs into detections (METHOD.md §3.2, ``multi_pose_decode``).

The one decode of the package: the codec (validation, evaluation, the predictor, the image logger), the exported
graph and the onnxruntime predictor all run :func:`decode`. One batched tensor pass with a fixed K and no Python
loop over images or people, so it exports as it is; it runs on any device. Inputs ``hm`` and ``hm_hp`` are
**probabilities** (after a sigmoid): use :func:`sigmoid_outputs` on raw network outputs. Output rows
(output-map coordinates, float):

    [x1 y1 x2 y2 | score | x0 y0 x1 y1 ... x(J-1) y(J-1) | class]    (5 + 2J + 1 columns; 40 for COCO)

Speed without changing a result (the golden tests compare with the original at 1e-5): the max-pool NMS is two
1-D running maxima (the same maxima; ONNX keeps MaxPool), maps are read at their K cells without a transposed
copy, joints stay in a (B, J, K) layout, the (B, J, K, K) joint-to-peak distances are made in two buffers, and
in eager mode the peak axis is cut after the last peak above the threshold (every later peak is a weak one at
the same far point, so the nearest-peak index cannot change).
"""

from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from centerpose.codec.ops import clamped_sigmoid, gather_cells, joint_offsets_at
from centerpose.codec.options import SNAP_MODES, SnapMode, TieBreak

__all__ = [
    "SNAP_MODES",
    "SnapMode",
    "TieBreak",
    "decode",
    "heatmap_nms",
    "is_exporting",
    "sigmoid_outputs",
    "topk_detections",
    "topk_per_channel",
]

# "weighted" snapping: a candidate's proximity weight falls as a Gaussian of its distance from the regressed
# joint, this fraction of the person's longer box side (the hard limit stays 0.3 of it).
_SNAP_PROXIMITY = 0.25
# The original moves weak candidates here (and scores them -1), so they never pass the snapping tests.
_FAR = -10000.0


def is_exporting() -> bool:
    """Being traced (torch.jit.trace) or exported (torch.export / the ONNX dynamo exporter)."""
    return torch.jit.is_tracing() or torch.compiler.is_compiling()


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


def _running_max(x: Tensor, dim: int, radius: int) -> Tensor:
    """``out[i] = max(x[i - radius .. i + radius])`` along ``dim``, the window cut at the borders (a 1-D
    max-pool with −inf padding), written into one new buffer."""
    n = x.shape[dim]
    if radius == 1 and n >= 3:
        # pairwise maxima p[i] = max(x[i], x[i+1]), then out[i] = max(p[i-1], p[i]): two passes, no clone
        pair = torch.maximum(x.narrow(dim, 1, n - 1), x.narrow(dim, 0, n - 1))
        out = torch.empty_like(x)
        torch.maximum(pair.narrow(dim, 0, n - 2), pair.narrow(dim, 1, n - 2), out=out.narrow(dim, 1, n - 2))
        out.narrow(dim, 0, 1).copy_(pair.narrow(dim, 0, 1))
        out.narrow(dim, n - 1, 1).copy_(pair.narrow(dim, n - 2, 1))
        return out
    out = x.clone()
    for shift in range(1, min(radius, n - 1) + 1):
        tail, head = out.narrow(dim, shift, n - shift), out.narrow(dim, 0, n - shift)
        torch.maximum(tail, x.narrow(dim, 0, n - shift), out=tail)
        torch.maximum(head, x.narrow(dim, shift, n - shift), out=head)
    return out


def heatmap_nms(heat: Tensor, kernel: int = 3) -> Tensor:
    """Keep only local maxima: ``heat · [maxpool(heat) == heat]`` (plateaus survive whole).

    The k × k max-pool is separable: a running maximum along W, then along H, gives the same maxima in a
    fraction of the time of ``max_pool2d`` on CPU; traced or exported graphs keep ``max_pool2d`` (ONNX MaxPool).

    Args:
        heat: (B, C, H, W).
        kernel: odd window side (3, the original's).
    """
    pad = (kernel - 1) // 2
    if is_exporting():
        hmax = F.max_pool2d(heat, kernel, stride=1, padding=pad)
        return heat * (hmax == heat).to(heat.dtype)
    hmax = _running_max(_running_max(heat, 3, pad), 2, pad)
    return hmax.eq_(heat).mul_(heat)  # [hmax == heat] · heat, the original's product, in hmax's buffer


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
        if is_exporting():  # ONNX TopK orders equal values by ascending index: the stable order
            return torch.topk(values, k)
        # Equal scores keep ascending index order (QUIRK E10 "improved").
        vals, idx = torch.sort(values, dim=-1, descending=True, stable=True)
        return vals[..., :k], idx[..., :k]
    raise ValueError(f"decode: tie_break must be 'topk' or 'stable', got {tie_break!r}")


def topk_detections(
    heat: Tensor, k: int, tie_break: TieBreak = "topk"
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


def topk_per_channel(heat: Tensor, k: int, tie_break: TieBreak = "topk") -> tuple[Tensor, Tensor, Tensor, Tensor]:
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


def _window_max_at(heat: Tensor, inds: Tensor, radius: int) -> Tensor:
    """The max of the (2r + 1)² window around each of some cells: what ``max_pool2d`` gives there.

    Args:
        heat: (B, C, H, W). inds: (B, C, M) int64 flat cell indices of each channel.

    Returns:
        (B, C, M). Windows are cut at the borders: a clamped neighbour is a cell of the window anyway.
    """
    b, c, h, w = heat.shape
    y, x = torch.div(inds, w, rounding_mode="floor"), _mod(inds, w)
    steps = torch.arange(-radius, radius + 1, device=inds.device)
    ny = (y.unsqueeze(-1) + steps).clamp_(0, h - 1)  # (B, C, M, 2r+1)
    nx = (x.unsqueeze(-1) + steps).clamp_(0, w - 1)
    window = (ny.unsqueeze(-1) * w + nx.unsqueeze(-2)).reshape(b, c, -1)  # (B, C, M·(2r+1)²)
    return heat.reshape(b, c, h * w).gather(2, window).reshape(*inds.shape, -1).amax(dim=-1)


def _strong_peaks_by_scan(
    heat: Tensor, k: int, thresh: float, tie_break: TieBreak, nms_kernel: int
) -> tuple[Tensor, Tensor]:
    """:func:`topk_per_channel` of ``heatmap_nms(heat)`` for the peaks above ``thresh``, from a wider top-k
    of the raw map instead of the NMS of every cell (eager only: the channels it cannot settle are redone).

    Every peak above the k'-th raw value is among the raw top-k' (k' = 2k), so testing those cells alone
    finds all peaks above it. A channel is settled when that covers every peak above ``thresh`` or holds k
    of them, and no two of its first k + 1 found peaks have equal scores: the top-k of the NMS map is then the
    one order of distinct values, whatever the tie rule. Other channels (ties, NaN, crowded maps) take the
    full NMS and top-k.

    Returns:
        ``scores`` and ``inds`` (B, C, k): every entry above ``thresh`` is that of ``topk_per_channel``; the
        other entries hold a score <= ``thresh`` (their cells are no candidates, so which they are is moot).
    """
    b, c, h, w = heat.shape
    flat = heat.reshape(b, c, h * w)
    wide = min(h * w, k + k // 4 + 1)  # a quarter more than k: random maps hold ~k peaks among them
    raw_score, raw_ind = torch.topk(flat, wide)  # (B, C, k')
    peak = (raw_score == _window_max_at(heat, raw_ind, (nms_kernel - 1) // 2)) & (raw_score > thresh)
    # found peaks first, in descending score (a stable sort keeps the raw top-k' order)
    order = torch.sort((~peak).to(torch.uint8), dim=2, stable=True).indices[..., : k + 1]
    found = peak.gather(2, order)  # (B, C, k+1): True, then False
    scores = torch.where(found, raw_score.gather(2, order), torch.full_like(raw_score[..., :1], -1.0))
    inds = raw_ind.gather(2, order)
    if wide == h * w:
        settled = torch.ones_like(found[..., 0])
    else:
        edge = raw_score[..., -1:]  # the k'-th raw value: every peak above it was tested
        settled = (edge[..., 0] <= thresh) | ((found & (scores > edge)).sum(dim=2) >= k)
    tied = (found[..., 1:] & (scores[..., 1:] == scores[..., :-1])).any(dim=2)
    redo = ~settled | tied | raw_score[..., 0].isnan()
    scores, inds = scores[..., :k].contiguous(), inds[..., :k].contiguous()
    if bool(redo.any()):
        bi, ci = redo.nonzero(as_tuple=True)
        sub = heatmap_nms(heat[bi, ci].unsqueeze(0), nms_kernel).reshape(1, bi.numel(), h * w)
        sub_score, sub_ind = _ranked(sub, k, tie_break)
        scores[bi, ci], inds[bi, ci] = sub_score[0], sub_ind[0]
    return scores, inds


def _snap(
    jx: Tensor,
    jy: Tensor,
    bboxes: Tensor,
    hm_hp: Tensor,
    hp_offset: Tensor | None,
    k: int,
    thresh: float,
    tie_break: TieBreak,
    snap: SnapMode,
    nms_kernel: int,
) -> tuple[Tensor, Tensor]:
    """Move regressed joints onto nearby keypoint-heatmap peaks (§3.2 step 6, QUIRK E9).

    Args:
        jx, jy: (B, J, Kd) regressed joints. bboxes: (B, Kd, 4). hm_hp: (B, J, H, W) probabilities.
        hp_offset: (B, 2, H, W) shared or (B, 2J, H, W) per-joint offsets, or None.

    Returns:
        Final joints ``x``, ``y``, each (B, J, Kd).
    """
    if snap not in SNAP_MODES:
        raise ValueError(f"decode: snap must be one of {SNAP_MODES}, got {snap!r}")
    w = hm_hp.shape[3]
    if is_exporting():  # a fixed K: the NMS of every cell, then the top-K peaks of each joint
        cand_score, cand_ind, cand_y, cand_x = topk_per_channel(heatmap_nms(hm_hp, nms_kernel), k, tie_break)
        strong = cand_score > thresh  # strict: exactly the threshold is weak
    else:
        cand_score, cand_ind = _strong_peaks_by_scan(hm_hp, k, thresh, tie_break, nms_kernel)  # (B, J, Kc)
        strong = cand_score > thresh
        # Peaks come sorted by score, so the strong ones lead; keep them and the first weak one. Every weak
        # peak sits at the same far point with score -1: the first keeps its index as the nearest, the later
        # ones could only tie with it.
        last = int((strong * torch.arange(1, k + 1, device=strong.device)).amax())
        keep = min(k, last + 1)
        if keep < k:
            cand_score, cand_ind, strong = (t[..., :keep] for t in (cand_score, cand_ind, strong))
        cand_y = torch.div(cand_ind, w, rounding_mode="floor").to(hm_hp.dtype)
        cand_x = _mod(cand_ind, w).to(hm_hp.dtype)
    if hp_offset is not None:
        off = joint_offsets_at(hp_offset, cand_ind)  # (B, J, 2, Kc)
        cand_x = cand_x + off[:, :, 0]
        cand_y = cand_y + off[:, :, 1]
    else:
        cand_x = cand_x + 0.5
        cand_y = cand_y + 0.5
    cand_score = torch.where(strong, cand_score, torch.full_like(cand_score, -1.0))
    cand_x = torch.where(strong, cand_x, torch.full_like(cand_x, _FAR))
    cand_y = torch.where(strong, cand_y, torch.full_like(cand_y, _FAR))

    # Every joint x peak pair, (B, J, Kd, Kc), in two buffers: dx² + dy² then sqrt rounds exactly like the
    # original's ((r − c) ** 2).sum(-1) ** 0.5.
    dx = jx.unsqueeze(3) - cand_x.unsqueeze(2)
    dy = jy.unsqueeze(3) - cand_y.unsqueeze(2)
    dist = dx.mul_(dx).add_(dy.mul_(dy)).sqrt_()

    b = bboxes.shape[0]
    left, top, right, bottom = (bboxes[..., i].reshape(b, 1, -1) for i in range(4))  # (B, 1, Kd)
    limit = torch.max(bottom - top, right - left) * 0.3
    if snap == "nearest":
        min_dist, min_ind = dist.min(dim=3)  # first index on ties, like the original
    else:
        # Improved E9: only candidates that pass every test compete, not just the nearest one.
        cx, cy, cs = cand_x.unsqueeze(2), cand_y.unsqueeze(2), cand_score.unsqueeze(2)  # (B, J, 1, Kc)
        l4, t4, r4, b4, lim4 = (v.unsqueeze(3) for v in (left, top, right, bottom, limit))  # (B, 1, Kd, 1)
        valid = (cx >= l4) & (cx <= r4) & (cy >= t4) & (cy <= b4) & (cs >= thresh) & (dist <= lim4)
        rank = dist
        if snap == "weighted":
            # A poorly regressed joint often lies nearer a wrong weak peak than the strong right one:
            # rank by heat x proximity instead of distance alone.
            side = torch.max(b4 - t4, r4 - l4)
            rank = -cs * torch.exp(-0.5 * (dist / (side * _SNAP_PROXIMITY)) ** 2)
        rank = torch.where(valid, rank, torch.full_like(rank, float("inf")))
        min_ind = rank.min(dim=3).indices
        min_dist = dist.gather(3, min_ind.unsqueeze(3)).squeeze(3)
    bx, by = cand_x.gather(2, min_ind), cand_y.gather(2, min_ind)  # (B, J, Kd)
    best_score = cand_score.gather(2, min_ind)
    reject = (bx < left) | (bx > right) | (by < top) | (by > bottom) | (best_score < thresh) | (min_dist > limit)
    return torch.where(reject, jx, bx), torch.where(reject, jy, by)


def _heat_at(hm_hp: Tensor, jx: Tensor, jy: Tensor) -> Tensor:
    """hm_hp (B, J, H, W) sampled at the cell holding each joint (B, J, K) → (B, K, J)."""
    b, j, h, w = hm_hp.shape
    x = jx.floor().clamp(0, w - 1).long()
    y = jy.floor().clamp(0, h - 1).long()
    return hm_hp.reshape(b, j, h * w).gather(2, y * w + x).transpose(1, 2)


@torch.no_grad()
def decode(
    outputs: Mapping[str, Tensor],
    K: int = 100,
    *,
    hm_hp_thresh: float = 0.1,
    tie_break: TieBreak = "topk",
    snap: SnapMode = "nearest",
    rescore: bool = False,
    return_kp_scores: bool = False,
    nms_kernel: int = 3,
) -> Tensor | tuple[Tensor, Tensor]:
    """Decode one stack's head outputs into K detections per image (``multi_pose_decode``).

    Heads used: ``hm`` (B, C, H, W) and ``hm_hp`` (B, J, H, W) as **probabilities**; ``hps`` (B, 2J, H, W),
    ``wh`` (B, 2, H, W); optional ``reg`` (B, 2, H, W) (absent: centre = cell + 0.5), ``hm_hp`` (absent: no
    snapping) and ``hp_offset`` (B, 2, H, W), or (B, 2J, H, W) per joint (absent: candidates at cell + 0.5).
    Boxes and joints are not clipped (QUIRK E8). The keyword arguments are those of
    :class:`~centerpose.codec.options.DecodeOptions` (``options.decode_kwargs()``).

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
        nms_kernel: window side of the heatmap NMS (3, the original's).

    Returns:
        ``dets`` (B, K, 5 + 2J + 1) sorted by descending score, or ``(dets, kp_scores)``.
    """
    heat = outputs["hm"]
    hps = outputs["hps"]
    if heat.dim() != 4 or hps.dim() != 4 or hps.shape[1] % 2:
        raise ValueError(
            f"decode: expected hm (B,C,H,W) and hps (B,2J,H,W), got {tuple(heat.shape)} and {tuple(hps.shape)}"
        )
    b = heat.shape[0]
    j = hps.shape[1] // 2

    scores, inds, classes, ys, xs = topk_detections(heatmap_nms(heat, nms_kernel), K, tie_break)
    # Regressed joints are offsets from the integer centre cell (the targets are pt − ct_int); (B, J, K).
    offsets = gather_cells(hps, inds).reshape(b, j, 2, K)
    jx = offsets[:, :, 0] + xs.unsqueeze(1)
    jy = offsets[:, :, 1] + ys.unsqueeze(1)

    reg = outputs.get("reg")
    if reg is not None:
        off = gather_cells(reg, inds)  # (B, 2, K)
        cx, cy = xs + off[:, 0], ys + off[:, 1]
    else:
        cx, cy = xs + 0.5, ys + 0.5
    wh = gather_cells(outputs["wh"], inds)
    half_w, half_h = wh[:, 0] / 2, wh[:, 1] / 2
    bboxes = torch.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], dim=2)  # (B, K, 4)

    hm_hp = outputs.get("hm_hp")
    if hm_hp is not None:
        jx, jy = _snap(jx, jy, bboxes, hm_hp, outputs.get("hp_offset"), K, hm_hp_thresh, tie_break, snap, nms_kernel)

    kps = torch.stack([jx, jy], dim=3).transpose(1, 2).reshape(b, K, 2 * j)
    dets = torch.cat([bboxes, scores.unsqueeze(2), kps, classes.unsqueeze(2).to(heat.dtype)], dim=2)
    if not (return_kp_scores or rescore):
        return dets
    kp_scores = _heat_at(hm_hp, jx, jy) if hm_hp is not None else scores.unsqueeze(2).expand(b, K, j)
    if rescore:
        dets[..., 4] = (scores * kp_scores.mean(dim=2)).sqrt()
        # re-ranked with the decode's own top-K (exports as ONNX TopK; a stable sort does not)
        _, order = _ranked(dets[..., 4], K, tie_break)  # (B, K)
        dets = dets.gather(1, order.unsqueeze(2).expand_as(dets))
        kp_scores = kp_scores.gather(1, order.unsqueeze(2).expand_as(kp_scores))
    return (dets, kp_scores) if return_kp_scores else dets
