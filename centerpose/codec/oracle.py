"""Oracle outputs: network-like heads built from ground-truth targets (METHOD.md §3.7).

Decoding oracle outputs measures how much AP the encoding/decoding itself loses (QUIRK E14 notes which
of the original's flags matter). :func:`gen_oracle_map` is the original's ``oracle_utils.gen_oracle_map``
done as a level-synchronous breadth-first fill in numpy, with the same queue order and therefore the same
values as the original's one-cell-at-a-time queue.
"""

from __future__ import annotations

from typing import AbstractSet, Mapping

import numpy as np
import torch
from torch import Tensor

from centerpose.codec.ops import JOINT_OFFSETS

__all__ = ["ORACLE_HEADS", "gen_oracle_map", "oracle_outputs"]

#: Heads :func:`oracle_outputs` can replace by ground truth ("kps" = the ``hps`` head).
ORACLE_HEADS = frozenset({"hm", "hm_hp", "kps", "hp_offset", "wh", "reg"})

# Neighbour order of the original's fill: (x, y+1), (x, y-1), (x+1, y), (x-1, y).
_DX = np.array([0, 0, 1, -1])
_DY = np.array([1, -1, 0, 0])


def _fill_sources(ind: np.ndarray, w: int, h: int) -> np.ndarray:
    """For every cell of every image, the slot whose value the fill gives it.

    Args:
        ind: (B, M) int flat cell indices; slots with ind <= 0 are not seeds.

    Returns:
        (B, h·w) int64 slot index per cell, −1 where no seed exists in the image.
    """
    b, m = ind.shape
    hw = h * w
    src = np.full(b * hw, -1, dtype=np.int64)
    visited = np.zeros(b * hw, dtype=bool)
    img, slot = np.nonzero(ind > 0)  # row-major: image, then slot order = the original's queue order
    if ind[img, slot].max(initial=0) >= hw:
        raise ValueError(f"gen_oracle_map: index {ind.max()} outside a {h}x{w} map")
    cells = img * hw + ind[img, slot]
    slots = img * m + slot
    # A later slot at the same cell overwrites the cell, but every seed stays in the queue.
    src[cells] = slots
    visited[cells] = True
    while cells.size:
        local = cells % hw
        x = (local % w)[:, None] + _DX
        y = (local // w)[:, None] + _DY
        ok = (x >= 0) & (x < w) & (y >= 0) & (y < h)
        cand = ((cells - local)[:, None] + y * w + x)[ok]  # queue order, then neighbour order
        cand_src = np.broadcast_to(slots[:, None], ok.shape)[ok]
        fresh = ~visited[cand]
        cand, cand_src = cand[fresh], cand_src[fresh]
        # First reach wins; the next level is queued in order of first reach.
        _, first = np.unique(cand, return_index=True)
        first.sort()
        cells, slots = cand[first], cand_src[first]
        src[cells] = slots
        visited[cells] = True
    src = src.reshape(b, hw)
    return np.where(src >= 0, src % m, -1)


def gen_oracle_map(feat: Tensor | np.ndarray, ind: Tensor | np.ndarray, w: int, h: int) -> Tensor | np.ndarray:
    """Spread per-slot values over the whole map, each cell taking its BFS-nearest seed's value.

    Args:
        feat: (B, M, D) per-slot values (e.g. ``wh``, ``reg``, ``hps``, ``hp_offset`` targets).
        ind: (B, M) flat indices ``y * w + x``; slots with ``ind == 0`` are skipped (QUIRK E14), also
            a real centre at cell 0.
        w, h: map width and height.

    Returns:
        (B, D, h, w) float32, a torch tensor on ``feat``'s device if ``feat`` is a tensor, else numpy.
        Images without any seed stay 0.
    """
    as_torch = isinstance(feat, Tensor)
    f = feat.detach().cpu().numpy() if as_torch else np.asarray(feat)
    i = ind.detach().cpu().numpy() if isinstance(ind, Tensor) else np.asarray(ind)
    if f.ndim != 3 or i.shape != f.shape[:2]:
        raise ValueError(f"gen_oracle_map: feat must be (B, M, D) and ind (B, M), got {f.shape} and {i.shape}")
    b, _, d = f.shape
    src = _fill_sources(i.astype(np.int64), w, h)  # (B, h*w)
    vals = np.take_along_axis(f.astype(np.float32), np.maximum(src, 0)[:, :, None], axis=1)  # (B, hw, D)
    vals[src < 0] = 0.0
    out = np.ascontiguousarray(vals.transpose(0, 2, 1).reshape(b, d, h, w))
    return torch.from_numpy(out).to(feat.device) if as_torch else out


def oracle_outputs(
    batch: Mapping[str, Tensor],
    variant: AbstractSet[str],
    base: Mapping[str, Tensor] | None = None,
    joint_offsets: str = "shared",
) -> dict[str, Tensor]:
    """Build one stack's head dict (probabilities for ``hm``/``hm_hp``) from a batch of targets.

    Args:
        batch: dataset targets (§1.4.1): ``hm`` (B, 1, H, W), ``hm_hp`` (B, J, H, W), ``ind`` (B, N),
            ``wh``/``reg`` (B, N, 2), ``hps`` (B, N, 2J) or ``dense_hps`` (B, 2J, H, W), ``hp_offset``
            (B, N·J, 2), ``hp_ind`` (B, N·J).
        variant: heads replaced by ground truth, a subset of :data:`ORACLE_HEADS`: ``hm`` and ``hm_hp``
            take the target heatmaps as is (exact 1.0 peaks, unclamped), ``kps`` takes
            ``gen_oracle_map(hps, ind)`` (``dense_hps`` when the batch has it), ``hp_offset`` takes
            ``gen_oracle_map(hp_offset, hp_ind)``, ``wh``/``reg`` take ``gen_oracle_map(wh|reg, ind)``.
        base: network outputs (``hm``/``hm_hp`` already probabilities) supplying the heads not in
            ``variant``. Without ``base``, ``wh`` and ``reg`` are always oracle maps (the §3.7 table's
            setting), and ``hm_hp``/``hp_offset`` are left out unless in ``variant`` (like ``--not_hm_hp``
            / ``--not_reg_hp_offset``).
        joint_offsets: the oracle ``hp_offset`` layout: ``shared`` (B, 2, H, W), every joint's seeds in one map
            (the original, where joints sharing a cell overwrite each other), or ``per_joint`` (B, 2J, H, W),
            one map per joint (QUIRK E16).

    Returns:
        Head dict ready for :func:`centerpose.codec.decode.decode`.
    """
    unknown = set(variant) - ORACLE_HEADS
    if unknown:
        raise ValueError(f"oracle_outputs: unknown heads {sorted(unknown)}; choose from {sorted(ORACLE_HEADS)}")
    if joint_offsets not in JOINT_OFFSETS:
        raise ValueError(f"oracle_outputs: joint_offsets must be one of {JOINT_OFFSETS}, got {joint_offsets!r}")
    h, w = batch["hm"].shape[-2:]
    out: dict[str, Tensor] = dict(base) if base is not None else {}
    wanted = set(variant) if base is not None else set(variant) | {"wh", "reg"}
    if "hm" in wanted:
        out["hm"] = batch["hm"]
    if "hm_hp" in wanted:
        out["hm_hp"] = batch["hm_hp"]
    if "kps" in wanted:
        out["hps"] = batch["dense_hps"] if "dense_hps" in batch else gen_oracle_map(batch["hps"], batch["ind"], w, h)
    if "hp_offset" in wanted:
        if joint_offsets == "shared":
            out["hp_offset"] = gen_oracle_map(batch["hp_offset"], batch["hp_ind"], w, h)
        else:  # one map per joint; slots are person-major (person · J + joint), so joint i's are [i::J]
            j = batch["hp_ind"].shape[1] // batch["ind"].shape[1]
            out["hp_offset"] = torch.cat(
                [gen_oracle_map(batch["hp_offset"][:, i::j], batch["hp_ind"][:, i::j], w, h) for i in range(j)], dim=1
            )
    for name in ("wh", "reg"):
        if name in wanted:
            out[name] = gen_oracle_map(batch[name], batch["ind"], w, h)
    missing = {"hm", "hps", "wh"} - out.keys()
    if missing:
        raise ValueError(f"oracle_outputs: heads {sorted(missing)} need either the variant or base outputs")
    return out
