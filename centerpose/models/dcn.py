"""Modulated deformable convolution (DCNv2) with the original CenterNet parameter layout.

The original ships a compiled DCNv2 extension; ``torchvision.ops.deform_conv2d`` computes the same
thing (METHOD.md §2.4), so only the parameter layout and the offset/mask split are ours.
torchvision's CPU kernel is slow (a scalar im2col loop), so :func:`deform_conv2d_sampling` computes the
same operator from one ``embedding_bag`` (bilinear gather × mask) and one matmul, which autograd
differentiates; ``DCN(impl="auto")`` uses it for CPU inputs other than float64.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Iterator, Literal

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.modules.utils import _pair
from torchvision.ops import deform_conv2d

DCNImpl = Literal["auto", "torchvision", "sampling"]
_IMPLS = ("auto", "torchvision", "sampling")


def _tap_grid(n_out: int, stride: int, pad: int, dil: int, k: int, device: torch.device) -> torch.Tensor:
    """Undeformed input coordinate of tap ``t`` at output ``o`` along one axis.

    Returns:
        (n_out, k) int64: ``o * stride - pad + t * dil``.
    """
    o = torch.arange(n_out, device=device) * stride - pad
    return o[:, None] + torch.arange(k, device=device)[None, :] * dil


def deform_conv2d_sampling(
    x: torch.Tensor,
    offset: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Modulated deformable conv with torchvision's ``deform_conv2d`` semantics, fast on CPU.

    Each (output position, offset group, tap) is one ``embedding_bag`` "bag" of the 4 bilinear corners:
    the table is ``x`` in channels-last rows with a zero border (DCN zeroes each corner outside the image),
    the per-sample weights are bilinear weight × mask. Few, large ops: on a loaded machine every
    multi-threaded op pays a scheduling wait, so the index arithmetic is kept short. That gives the modulated columns
    ``(B, Ho*Wo, dg*K*C/dg)`` in one vectorised kernel, and one matmul with the reordered weight finishes
    the conv. Autograd differentiates w.r.t. ``x``, ``offset`` (through the bilinear weights, with
    DCN's piecewise-linear coordinate gradient), ``weight``, ``bias`` and ``mask``.

    Args:
        x: (B, C, H, W).
        offset: (B, 2 * dg * kh * kw, Ho, Wo); for group g and tap t = i * kw + j, channel
            ``g * 2 * kh * kw + 2 * t`` is Δy and the next Δx.
        weight: (out, C, kh, kw) (no conv groups).
        bias: (out,) or None.
        stride: int or (h, w).
        padding: int or (h, w).
        dilation: int or (h, w).
        mask: (B, dg * kh * kw, Ho, Wo) modulation, or None for DCNv1.

    Returns:
        (B, out, Ho, Wo).
    """
    b, c, h, w = x.shape
    c_out, c_w, kh, kw = weight.shape
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    k = kh * kw
    if c_w != c:
        raise ValueError(
            f"deform_conv2d_sampling: weight has {c_w} input channels, x has {c} (conv groups are not supported)"
        )
    if offset.dim() != 4 or offset.shape[0] != b or offset.shape[1] % (2 * k) or offset.shape[2:] != (ho, wo):
        raise ValueError(
            f"deform_conv2d_sampling: offset shape {tuple(offset.shape)} does not fit (B={b}, 2*dg*{k}, {ho}, {wo})"
        )
    dg = offset.shape[1] // (2 * k)
    if c % dg:
        raise ValueError(f"deform_conv2d_sampling: {c} input channels not divisible by {dg} offset groups")
    if mask is not None and tuple(mask.shape) != (b, dg * k, ho, wo):
        raise ValueError(f"deform_conv2d_sampling: mask shape {tuple(mask.shape)}, expected {(b, dg * k, ho, wo)}")
    cg = c // dg

    # Bag order (b, ho, wo, g, i, j) so the columns come out as (B, L, dg*K*cg) rows for the matmul.
    off = offset.reshape(b, dg, kh, kw, 2, ho, wo).permute(0, 5, 6, 1, 2, 3, 4)
    # Coordinates in at least float32: half precision cannot hold e.g. 100.3 to DCN's accuracy.
    cdt = torch.promote_types(x.dtype, torch.float32)
    ty = _tap_grid(ho, sh, ph, dh, kh, x.device)[:, None, None, :, None]  # (Ho, 1, 1, kh, 1)
    tx = _tap_grid(wo, sw, pw, dw, kw, x.device)[None, :, None, None, :]  # (1, Wo, 1, 1, kw)
    # Clamp to [-1, H] × [-1, W]: beyond that every corner is outside (value 0, and clamp's zero gradient
    # matches DCN's), so a zero border of 1 before / 2 after the image replaces per-corner bounds checks.
    py = (off[..., 0].to(cdt) + ty).clamp(-1, h)  # (B, Ho, Wo, dg, kh, kw)
    px = (off[..., 1].to(cdt) + tx).clamp(-1, w)
    y0, x0 = py.floor(), px.floor()
    fy, fx = py - y0, px - x0
    gy, gx = 1 - fy, 1 - fx
    # corners (y0, x0), (y0, x0 + 1), (y0 + 1, x0), (y0 + 1, x0 + 1)
    psw = torch.stack((gy * gx, gy * fx, fy * gx, fy * fx), dim=-1)  # (B, Ho, Wo, dg, kh, kw, 4)
    if mask is not None:
        psw = psw * mask.reshape(b, dg, kh, kw, ho, wo).permute(0, 4, 5, 1, 2, 3)[..., None].to(cdt)
    hp, wp = h + 3, w + 3
    plane = (torch.arange(b, device=x.device)[:, None] * dg + torch.arange(dg, device=x.device)) * (hp * wp)
    top_left = plane[:, None, None, :, None, None] + (y0.long() + 1) * wp + (x0.long() + 1)
    idx = top_left[..., None] + torch.tensor([0, 1, wp, wp + 1], device=x.device)

    # channels-last rows of the zero-bordered image, one plane per (batch, offset group)
    table = x.new_zeros(b, dg, hp, wp, cg)
    table[:, :, 1 : h + 1, 1 : w + 1] = x.reshape(b, dg, cg, h, w).permute(0, 1, 3, 4, 2)
    table = table.reshape(b * dg * hp * wp, cg)
    cols = F.embedding_bag(
        idx.reshape(-1, 4), table, mode="sum", per_sample_weights=psw.reshape(-1, 4).to(x.dtype)
    )  # (B*L*dg*K, cg)
    cols = cols.reshape(b, ho * wo, dg * k * cg)
    # weight (out, C, kh, kw) = (out, dg, cg, K) -> (out, dg, K, cg) to match the columns' order
    w2 = weight.reshape(c_out, dg, cg, k).transpose(2, 3).reshape(c_out, dg * k * cg)
    # (B, L, out) then one small transpose: this keeps the backward's big column gradient (B, L, dg*K*cg)
    # contiguous for embedding_bag instead of transposing it
    out = torch.matmul(cols, w2.t())
    if bias is not None:
        out = out + bias
    return out.transpose(1, 2).reshape(b, c_out, ho, wo)


class DCN(nn.Module):
    """Modulated deformable conv whose offsets and mask come from a plain conv on the input.

    Parameters (state-dict keys): ``weight (out, in, kh, kw)``, ``bias (out,)`` and
    ``conv_offset_mask.{weight, bias}`` with ``3 * groups * kh * kw`` output channels.

    The offset conv output ``om`` is split as the original does: ``om[:, :2K]`` are the offsets
    (interleaved ``(dy, dx)`` per tap, QUIRK 2.8.11) and ``sigmoid(om[:, 2K:])`` the mask, with
    ``K = groups * kh * kw``. A freshly initialised DCN therefore equals ``0.5 * conv(x) + bias``.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: int or (kh, kw).
        stride: int or pair.
        padding: int or pair.
        dilation: int or pair (of the deformable conv; the offset conv always uses 1).
        deformable_groups: number of offset groups.
        impl: ``"torchvision"`` (``torchvision.ops.deform_conv2d``), ``"sampling"``
            (:func:`deform_conv2d_sampling`, several times faster on CPU) or ``"auto"``: sampling for
            float32/float16/bfloat16 CPU inputs, torchvision otherwise (CUDA, where its kernel is fast,
            and float64, where it is the bit-exact reference). Chosen per forward call; the parameters
            and state-dict keys are the same for all.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int] = 3,
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 1,
        dilation: int | tuple[int, int] = 1,
        deformable_groups: int = 1,
        impl: DCNImpl = "auto",
    ) -> None:
        super().__init__()
        if impl not in _IMPLS:
            raise ValueError(f"DCN: impl must be one of {_IMPLS}, got {impl!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride)
        self.padding = _pair(padding)
        self.dilation = _pair(dilation)
        self.deformable_groups = deformable_groups
        self.impl = impl
        kh, kw = self.kernel_size
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kh, kw))
        self.bias = nn.Parameter(torch.empty(out_channels))
        self.conv_offset_mask = nn.Conv2d(
            in_channels,
            deformable_groups * 3 * kh * kw,
            self.kernel_size,
            stride=self.stride,
            padding=self.padding,
            bias=True,
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Original init: weight U(±1/sqrt(in·kh·kw)), bias 0, offset/mask conv all zeros."""
        fan_in = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
        bound = 1.0 / math.sqrt(fan_in)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.zeros_(self.bias)
        nn.init.zeros_(self.conv_offset_mask.weight)
        nn.init.zeros_(self.conv_offset_mask.bias)

    def resolved_impl(self, x: torch.Tensor) -> Literal["torchvision", "sampling"]:
        """The implementation ``forward(x)`` uses for this input (torchvision while exporting or tracing)."""
        if self.impl != "auto":
            return self.impl
        if torch.compiler.is_exporting() or torch.jit.is_tracing():
            return "torchvision"  # the op that maps to ONNX DeformConv; the sampling path is CPU-only speed
        return "sampling" if x.device.type == "cpu" and x.dtype != torch.float64 else "torchvision"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the deformable conv.

        Args:
            x: (B, in, H, W).

        Returns:
            (B, out, H', W') with H', W' as for a plain conv of the same geometry.
        """
        om = self.conv_offset_mask(x)
        k2 = self.deformable_groups * self.kernel_size[0] * self.kernel_size[1]
        offset = om[:, : 2 * k2]
        mask = torch.sigmoid(om[:, 2 * k2 :])
        op = deform_conv2d_sampling if self.resolved_impl(x) == "sampling" else deform_conv2d
        return op(
            x,
            offset,
            self.weight,
            self.bias,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            mask=mask,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding}, dilation={self.dilation}, deformable_groups={self.deformable_groups}, "
            f"impl={self.impl!r}"
        )


@contextmanager
def dcn_impl(net: nn.Module, impl: DCNImpl) -> Iterator[nn.Module]:
    """Run every :class:`DCN` of ``net`` with ``impl`` inside the block, then restore each one's setting.

    Export uses ``dcn_impl(net, "torchvision")``: ``torchvision.ops.deform_conv2d`` is what the ONNX
    exporter maps to ``DeformConv`` (the ``"sampling"`` path would export as gathers and a matmul).
    """
    if impl not in _IMPLS:
        raise ValueError(f"dcn_impl: impl must be one of {_IMPLS}, got {impl!r}")
    layers = [m for m in net.modules() if isinstance(m, DCN)]
    saved = [m.impl for m in layers]
    for m in layers:
        m.impl = impl
    try:
        yield net
    finally:
        for m, old in zip(layers, saved):
            m.impl = old
