"""Joint heatmaps ``hm_hp`` drawn for a whole batch where it lands, from the samples' sparse joint targets.

A sample's ``hm_hp`` is a (J, O, O) float32 map (1.1 MB at J = 17, O = 128) that the worker would allocate, draw,
collate and copy to the device. Everything needed to draw it already travels in the sparse targets: ``hp_ind``
(y·O + x of each encoded joint), ``hp_mask`` and, with ``encode_pose_targets(joint_heatmaps="sparse")``,
``hp_radius`` (the person's Gaussian radius at each encoded joint slot; joints reuse it, QUIRK D2).
:func:`draw_joint_heatmaps` turns those (B, N·J) tensors into the (B, J, O, O) maps, **bit for bit** the maps of
:func:`centerpose.codec.gaussian.draw_gaussians`: the same float32-rounded umich kernels, truncated at the
borders, max-merged (which commutes, so any order and any grouping give the same maps).

Two exact methods: ``numpy`` (the per-Gaussian window ``np.maximum`` of ``draw_gaussians`` into one batch array;
cheapest on a CPU, where a batch has a few hundred small Gaussians) and ``torch`` (one ``scatter_reduce(amax)``
over every kernel pixel of the batch, grouped by radius; stays on the device, one host sync per batch).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import torch

from centerpose.codec.gaussian import _kernel32, draw_gaussians

#: The sample key that marks sparse joint heatmaps: (N·J,) int16 radius per joint slot.
RADIUS_KEY = "hp_radius"
METHODS = ("auto", "numpy", "torch")


def draw_joint_heatmaps(
    hp_ind: torch.Tensor,
    hp_mask: torch.Tensor,
    hp_radius: torch.Tensor,
    num_joints: int,
    map_size: tuple[int, int] | int,
    method: str = "auto",
) -> torch.Tensor:
    """The joint heatmaps of a batch from its sparse joint targets.

    Args:
        hp_ind: (B, N·J) int, y·W + x of each joint slot (slot = person·J + joint).
        hp_mask: (B, N·J) int/bool, 1 where the slot holds an encoded joint (only those are drawn).
        hp_radius: (B, N·J) int, the Gaussian radius of each encoded slot.
        num_joints: J.
        map_size: (H, W) of the output maps, or one int for square maps.
        method: "numpy", "torch", or "auto" (numpy on the CPU, torch elsewhere); both give the same maps.

    Returns:
        (B, J, H, W) float32 on ``hp_ind``'s device, equal bit for bit to ``draw_gaussians`` of every encoded
        joint into zero maps.
    """
    if method not in METHODS:
        raise ValueError(f"draw_joint_heatmaps: method must be one of {METHODS}, got {method!r}")
    height, width = (map_size, map_size) if isinstance(map_size, int) else (int(map_size[0]), int(map_size[1]))
    if hp_ind.dim() != 2 or hp_mask.shape != hp_ind.shape or hp_radius.shape != hp_ind.shape:
        raise ValueError(
            f"draw_joint_heatmaps: hp_ind, hp_mask and hp_radius must be equal (B, N*J) shapes, got "
            f"{tuple(hp_ind.shape)}, {tuple(hp_mask.shape)}, {tuple(hp_radius.shape)}"
        )
    J = int(num_joints)
    if hp_ind.shape[1] % J:
        raise ValueError(f"draw_joint_heatmaps: {hp_ind.shape[1]} joint slots is not a multiple of J = {J}")
    if method == "auto":
        method = "numpy" if hp_ind.device.type == "cpu" else "torch"
    draw = _draw_numpy if method == "numpy" else _draw_torch
    return draw(hp_ind, hp_mask, hp_radius, J, height, width)


def finish_joint_heatmaps(batch: dict[str, Any], num_joints: int | None = None, method: str = "auto") -> dict[str, Any]:
    """Replace a batch's ``hp_radius`` by the drawn ``hm_hp`` (in place); batches without it pass unchanged.

    Args:
        batch: a collated batch with ``hp_ind``, ``hp_mask``, ``hp_radius`` (B, N·J), ``ind`` (B, N) and
            ``hm`` (B, C, H, W) (whose H, W the joint maps share).
        num_joints: J; default N·J / N from the batch shapes (a given J must agree with them).
        method: see :func:`draw_joint_heatmaps`.
    """
    if RADIUS_KEY not in batch:
        return batch
    slots, people = batch["hp_ind"].shape[1], batch["ind"].shape[1]
    J = slots // people if people else int(num_joints)
    if num_joints is not None and int(num_joints) != J:
        raise ValueError(
            f"finish_joint_heatmaps: the batch has {slots} joint slots for {people} people (J = {J}) "
            f"but J = {num_joints} was expected"
        )
    batch["hm_hp"] = draw_joint_heatmaps(
        batch["hp_ind"], batch["hp_mask"], batch.pop(RADIUS_KEY), J, tuple(batch["hm"].shape[-2:]), method
    )
    return batch


def _map_index(flat_slot, slots: int, J: int):
    """Map index b·J + j of flat slot indices b·slots + person·J + j (numpy or torch; J divides slots)."""
    return (flat_slot // slots) * J + flat_slot % J


def _encoded_joints(hp_ind: np.ndarray, hp_mask: np.ndarray, hp_radius: np.ndarray, J: int, width: int):
    """(map index b·J + j, (x, y) centres, radii) of every encoded joint slot, numpy int64."""
    sel = np.flatnonzero(hp_mask.reshape(-1))
    ind = hp_ind.reshape(-1)[sel].astype(np.int64)
    maps = _map_index(sel, hp_ind.shape[1], J)
    return maps, np.stack([ind % width, ind // width], axis=1), hp_radius.reshape(-1)[sel].astype(np.int64)


def _draw_numpy(hp_ind, hp_mask, hp_radius, J, height, width) -> torch.Tensor:
    device = hp_ind.device
    cpu = [t.detach().cpu().numpy() for t in (hp_ind, hp_mask, hp_radius)]
    # numpy's allocation, as centerpose.data.photometric's CPU path: no fresh pages to fault in per batch
    out = torch.from_numpy(np.zeros((hp_ind.shape[0], J, height, width), np.float32))
    maps, centres, radii = _encoded_joints(*cpu, J, width)
    draw_gaussians(out.numpy().reshape(-1, height, width), maps, centres, radii)
    return out.to(device)


@lru_cache(maxsize=512)
def _kernel_pixels(radius: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(dy, dx, value) of every pixel of the radius-r kernel, flattened (K = (2r+1)²), on ``device``."""
    d = torch.arange(-radius, radius + 1)
    dy, dx = torch.meshgrid(d, d, indexing="ij")
    value = torch.tensor(_kernel32(radius)).reshape(-1)
    return dy.reshape(-1).to(device), dx.reshape(-1).to(device), value.to(device)


def _draw_torch(hp_ind, hp_mask, hp_radius, J, height, width) -> torch.Tensor:
    device = hp_ind.device
    B, slots = hp_ind.shape
    total = B * J * height * width
    out = torch.zeros(total + 1, dtype=torch.float32, device=device)  # + 1: where pixels off the map go
    sel = hp_mask.reshape(-1).nonzero().squeeze(1)
    if sel.numel() == 0:
        return out[:total].view(B, J, height, width)
    ind = hp_ind.reshape(-1)[sel].long()
    radii = hp_radius.reshape(-1)[sel].long()
    maps = _map_index(sel, slots, J)
    ys, xs = ind // width, ind % width
    order = torch.argsort(radii)
    values, counts = torch.unique_consecutive(radii[order], return_counts=True)
    index_parts, value_parts = [], []
    for r, group in zip(values.tolist(), torch.split(order, counts.tolist())):  # the one host sync
        dy, dx, kernel = _kernel_pixels(int(r), device)
        y = ys[group, None] + dy  # (n, K)
        x = xs[group, None] + dx
        on_map = (y >= 0) & (y < height) & (x >= 0) & (x < width)
        flat = (maps[group, None] * height + y) * width + x
        index_parts.append(torch.where(on_map, flat, total).reshape(-1))
        value_parts.append(kernel.expand(len(group), -1).reshape(-1))
    out.scatter_reduce_(0, torch.cat(index_parts), torch.cat(value_parts), reduce="amax", include_self=True)
    return out[:total].view(B, J, height, width)
