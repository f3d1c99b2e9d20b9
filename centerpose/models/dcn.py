"""Modulated deformable convolution (DCNv2) with the original CenterNet parameter layout.

The original ships a compiled DCNv2 extension; ``torchvision.ops.deform_conv2d`` computes the same
thing (METHOD.md §2.4), so only the parameter layout and the offset/mask split are ours.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.modules.utils import _pair
from torchvision.ops import deform_conv2d


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
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int] = 3,
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 1,
                 dilation: int | tuple[int, int] = 1, deformable_groups: int = 1) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride)
        self.padding = _pair(padding)
        self.dilation = _pair(dilation)
        self.deformable_groups = deformable_groups
        kh, kw = self.kernel_size
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kh, kw))
        self.bias = nn.Parameter(torch.empty(out_channels))
        self.conv_offset_mask = nn.Conv2d(in_channels, deformable_groups * 3 * kh * kw, self.kernel_size,
                                          stride=self.stride, padding=self.padding, bias=True)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Original init: weight U(±1/sqrt(in·kh·kw)), bias 0, offset/mask conv all zeros."""
        fan_in = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
        bound = 1.0 / math.sqrt(fan_in)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.zeros_(self.bias)
        nn.init.zeros_(self.conv_offset_mask.weight)
        nn.init.zeros_(self.conv_offset_mask.bias)

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
        mask = torch.sigmoid(om[:, 2 * k2:])
        return deform_conv2d(x, offset, self.weight, self.bias, stride=self.stride, padding=self.padding,
                             dilation=self.dilation, mask=mask)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, deformable_groups={self.deformable_groups}")
