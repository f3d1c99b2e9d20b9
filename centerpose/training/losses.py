"""Training loss of CenterNet multi_pose (METHOD.md §3.1).

Every function is batched and device-agnostic. Arithmetic follows the original's operation order so
that the float32 numbers agree bit for bit with ``../shared/golden/loss_seed0.npz``.

Head names: ``hm`` (B, 1, H, W) centre logits, ``wh`` (B, 2, H, W), ``reg`` (B, 2, H, W),
``hps`` (B, 2J, H, W), ``hm_hp`` (B, J, H, W) joint logits, ``hp_offset`` (B, 2, H, W) (or (B, 2J, H, W):
one offset pair per joint, read at each slot's own joint).
Target names are the dataset's (§1.4.1): ``hm, wh, reg, ind, reg_mask, hps, hps_mask, hm_hp,
hp_offset, hp_ind, hp_mask`` and, with ``dense_hp``, ``dense_hps, dense_hps_mask``.
"""

from __future__ import annotations

from typing import Literal, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from centerpose.codec.ops import clamped_sigmoid, gather_feat, joint_offset_map

__all__ = [
    "STAT_NAMES",
    "focal_loss",
    "reg_l1_loss",
    "reg_weighted_l1_loss",
    "reg_smooth_l1_loss",
    "RegLoss",
    "PoseLoss",
]

#: Stats returned by :class:`PoseLoss`, in the original trainer's order.
STAT_NAMES: tuple[str, ...] = (
    "loss",
    "hm_loss",
    "hp_loss",
    "hm_hp_loss",
    "hp_offset_loss",
    "wh_loss",
    "off_loss",
)

FocalNorm = Literal["batch", "max1", "image"]


def focal_loss(pred: Tensor, gt: Tensor, normalize: FocalNorm = "batch") -> Tensor:
    """CenterNet's penalty-reduced pixel-wise focal loss (α = 2, β = 4; §3.1.2).

    Args:
        pred: (B, C, H, W) probabilities in (0, 1) (use :func:`clamped_sigmoid`).
        gt: (B, C, H, W) Gaussian targets; peaks are exactly 1.0.
        normalize: ``"batch"`` (original): the whole batch's sum divided by the batch's number of peaks,
            and **not** divided at all when the batch has no peak (QUIRK E2). ``"max1"``: divide by
            ``max(n, 1)``, the spec's "improved" reading of E2; since the positive term is 0 when n = 0 it
            gives the same numbers as ``"batch"`` and is accepted as a name only. ``"image"``: each image
            normalised by ``max(n_i, 1)`` and the batch averaged, so an image without people no longer
            outweighs a crowded one (an improvement; not in the original).

    Returns:
        Scalar loss tensor.
    """
    pos = gt.eq(1).float()
    neg = gt.lt(1).float()
    neg_weights = torch.pow(1 - gt, 4)
    pos_term = torch.log(pred) * torch.pow(1 - pred, 2) * pos
    neg_term = torch.log(1 - pred) * torch.pow(pred, 2) * neg_weights * neg
    if normalize == "image":
        dims = tuple(range(1, pred.dim()))
        n_i = pos.sum(dims).clamp(min=1)
        return (-(pos_term.sum(dims) + neg_term.sum(dims)) / n_i).mean()
    if normalize not in ("batch", "max1"):
        raise ValueError(f"focal_loss: normalize must be 'batch', 'max1' or 'image', got {normalize!r}")
    num_pos = pos.sum()
    pos_sum = pos_term.sum()
    neg_sum = neg_term.sum()
    # n == 0 implies pos_sum == 0, so (0 + neg) / 1 equals the original's un-normalised -neg exactly,
    # without a host sync on the branch.
    return -(pos_sum + neg_sum) / num_pos.clamp(min=1)


def _masked_pair(output: Tensor, mask: Tensor, ind: Tensor, target: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    pred = gather_feat(output, ind)
    m = mask.float()
    if m.dim() == 2:
        m = m.unsqueeze(2).expand_as(pred)
    return pred * m, target * m, m


def reg_l1_loss(output: Tensor, mask: Tensor, ind: Tensor, target: Tensor) -> Tensor:
    """``RegL1Loss``: per-coordinate mean L1 over valid slots (§3.1.3).

    Args:
        output: (B, Ch, H, W) regression head.
        mask: (B, M) slot mask (any dtype; nonzero = valid).
        ind: (B, M) int64 flat indices.
        target: (B, M, Ch).

    Returns:
        Scalar ``Σ|G·m − t·m| / (Σm + 1e-4)`` with Σm = Ch × #valid slots.
    """
    pred, tgt, m = _masked_pair(output, mask, ind, target)
    return F.l1_loss(pred, tgt, reduction="sum") / (m.sum() + 1e-4)


def reg_weighted_l1_loss(output: Tensor, mask: Tensor, ind: Tensor, target: Tensor) -> Tensor:
    """``RegWeightedL1Loss``: like :func:`reg_l1_loss` with a per-coordinate mask (B, M, Ch)."""
    if mask.dim() != 3:
        raise ValueError(f"reg_weighted_l1_loss: mask must be (B, M, Ch), got shape {tuple(mask.shape)}")
    pred, tgt, m = _masked_pair(output, mask, ind, target)
    return F.l1_loss(pred, tgt, reduction="sum") / (m.sum() + 1e-4)


def reg_smooth_l1_loss(output: Tensor, mask: Tensor, ind: Tensor, target: Tensor) -> Tensor:
    """``RegLoss`` (``reg_loss='sl1'``): summed smooth-L1 (β = 1) divided by #valid **slots** + 1e-4.

    The normaliser counts objects, not coordinates (QUIRK E3).

    Args:
        output: (B, Ch, H, W); mask: (B, M); ind: (B, M); target: (B, M, Ch).
    """
    num = mask.float().sum()
    pred, tgt, _ = _masked_pair(output, mask, ind, target)
    return F.smooth_l1_loss(pred, tgt, reduction="sum") / (num + 1e-4)


class RegLoss(nn.Module):
    """Module form of :func:`reg_smooth_l1_loss` (the original's ``RegLoss``)."""

    def forward(self, output: Tensor, mask: Tensor, ind: Tensor, target: Tensor) -> Tensor:
        return reg_smooth_l1_loss(output, mask, ind, target)


_REG_LOSSES = {"l1": reg_l1_loss, "sl1": reg_smooth_l1_loss}


class PoseLoss(nn.Module):
    """The multi_pose training loss (``MultiPoseLoss``, §3.1.6).

    Args:
        hm_weight, wh_weight, off_weight, hp_weight, hm_hp_weight: term weights; ``off_weight`` also weighs
            the joint-offset term (QUIRK E6).
        reg_loss: ``"l1"`` (RegL1Loss) or ``"sl1"`` (smooth-L1, QUIRK E3) for wh/reg/hp_offset.
        dense_hp: use the dense joint-offset targets ``dense_hps``/``dense_hps_mask`` (§3.1.4).
        hm_hp: the network has joint heatmaps (``--not_hm_hp`` = False).
        reg_offset: the network has the centre offset head ``reg``.
        reg_hp_offset: the network has ``hp_offset``; only active together with ``hm_hp`` (as ``opts.py``).
        focal_normalize: see :func:`focal_loss` (default: the original's batch normaliser).

    ``forward(outputs, batch)`` takes raw logits; the caller's tensors are never modified (E1 improved).
    Disabled terms are reported as zero tensors instead of the original's Python int 0 (E5 improved).
    """

    def __init__(
        self,
        hm_weight: float = 1.0,
        wh_weight: float = 0.1,
        off_weight: float = 1.0,
        hp_weight: float = 1.0,
        hm_hp_weight: float = 1.0,
        reg_loss: str = "l1",
        dense_hp: bool = False,
        hm_hp: bool = True,
        reg_offset: bool = True,
        reg_hp_offset: bool = True,
        focal_normalize: FocalNorm = "batch",
    ) -> None:
        super().__init__()
        if reg_loss not in _REG_LOSSES:
            raise ValueError(f"PoseLoss: reg_loss must be one of {sorted(_REG_LOSSES)}, got {reg_loss!r}")
        self.hm_weight, self.wh_weight, self.off_weight = hm_weight, wh_weight, off_weight
        self.hp_weight, self.hm_hp_weight = hp_weight, hm_hp_weight
        self.reg_loss = reg_loss
        self.crit_reg = _REG_LOSSES[reg_loss]
        self.dense_hp = dense_hp
        self.hm_hp = hm_hp
        self.reg_offset = reg_offset
        self.reg_hp_offset = reg_hp_offset and hm_hp
        self.focal_normalize = focal_normalize

    def forward(
        self, outputs: Sequence[Mapping[str, Tensor]] | Mapping[str, Tensor], batch: Mapping[str, Tensor]
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Compute the loss.

        Args:
            outputs: one dict of raw head outputs per stack (a bare dict = one stack). Each stack is
                compared with the same targets and every term is averaged over stacks.
            batch: target dict (see module docstring).

        Returns:
            ``(loss, stats)``: scalar total and a dict of the scalars in :data:`STAT_NAMES`.
        """
        stacks = [outputs] if isinstance(outputs, Mapping) else list(outputs)
        if not stacks:
            raise ValueError("PoseLoss: outputs is empty")
        if self.hm_hp and "hm_hp" not in batch and "hp_radius" in batch:
            raise KeyError(
                "PoseLoss: the batch has sparse joint heatmaps (hp_radius) but no hm_hp; finish it with "
                "centerpose.codec.device_heatmaps.finish_joint_heatmaps (CenterPoseModule's "
                "on_after_batch_transfer does) or build the data with joint_heatmaps='dense'"
            )
        n = len(stacks)
        ref = stacks[0]["hm"]
        zero = ref.new_zeros(())
        hm_loss = wh_loss = off_loss = hp_loss = hm_hp_loss = hp_offset_loss = zero
        for out in stacks:
            hm = clamped_sigmoid(out["hm"])
            hm_loss = hm_loss + focal_loss(hm, batch["hm"], self.focal_normalize) / n
            if self.dense_hp:
                mask = batch["dense_hps_mask"]
                weight = mask.sum() + 1e-4
                hp_loss = (
                    hp_loss + F.l1_loss(out["hps"] * mask, batch["dense_hps"] * mask, reduction="sum") / weight / n
                )
            else:
                hp_loss = hp_loss + reg_weighted_l1_loss(out["hps"], batch["hps_mask"], batch["ind"], batch["hps"]) / n
            if self.wh_weight > 0:
                wh_loss = wh_loss + self.crit_reg(out["wh"], batch["reg_mask"], batch["ind"], batch["wh"]) / n
            if self.reg_offset and self.off_weight > 0:
                off_loss = off_loss + self.crit_reg(out["reg"], batch["reg_mask"], batch["ind"], batch["reg"]) / n
            if self.reg_hp_offset and self.off_weight > 0:
                # slot m of hp_ind (N·J slots, person-major) is joint m % J
                slots = batch["hp_ind"].shape[1]
                joint = torch.arange(slots, device=ref.device) % (slots // batch["ind"].shape[1])
                offsets, ind = joint_offset_map(out["hp_offset"], batch["hp_ind"], joint)
                hp_offset_loss = hp_offset_loss + self.crit_reg(offsets, batch["hp_mask"], ind, batch["hp_offset"]) / n
            if self.hm_hp and self.hm_hp_weight > 0:
                hm_hp = clamped_sigmoid(out["hm_hp"])
                hm_hp_loss = hm_hp_loss + focal_loss(hm_hp, batch["hm_hp"], self.focal_normalize) / n
        loss = (
            self.hm_weight * hm_loss
            + self.wh_weight * wh_loss
            + self.off_weight * off_loss
            + self.hp_weight * hp_loss
            + self.hm_hp_weight * hm_hp_loss
            + self.off_weight * hp_offset_loss
        )
        stats = {
            "loss": loss,
            "hm_loss": hm_loss,
            "hp_loss": hp_loss,
            "hm_hp_loss": hm_hp_loss,
            "hp_offset_loss": hp_offset_loss,
            "wh_loss": wh_loss,
            "off_loss": off_loss,
        }
        return loss, stats
