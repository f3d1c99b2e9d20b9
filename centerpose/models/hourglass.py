"""Hourglass-104 (CornerNet / ExtremeNet trunk) as used by CenterNet (METHOD.md §2.3).

Module names follow the original (``pre``, ``kps``, ``cnvs``, ``inters``, ``inters_``, ``cnvs_``) so an
original state dict's trunk keys load unchanged. Registered as backbone ``hourglass``; it returns one
256-channel stride-4 map per stack, and :func:`~centerpose.models.build_model` puts one head set on each.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from centerpose.models.backbones import read_weights_file, register_backbone


class ConvBNReLU(nn.Module):
    """The original ``convolution``: k×k conv (bias only without BN) + BN (or nothing) + ReLU."""

    def __init__(self, k: int, cin: int, cout: int, stride: int = 1, with_bn: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride=stride, padding=(k - 1) // 2, bias=not with_bn)
        self.bn = nn.BatchNorm2d(cout) if with_bn else nn.Sequential()
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


class Residual(nn.Module):
    """Two 3×3 convs with BN plus a (1×1 conv + BN when the shape changes) skip; keys as the original."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.skip = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
            if stride != 1 or cin != cout
            else nn.Sequential()
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return self.relu(y + self.skip(x))


def _stack(cin: int, cout: int, n: int, stride: int = 1, reverse: bool = False) -> nn.Sequential:
    """n residuals; the width change happens in the first (or, ``reverse``, the last) one."""
    if reverse:
        return nn.Sequential(*[Residual(cin, cin) for _ in range(n - 1)], Residual(cin, cout))
    return nn.Sequential(Residual(cin, cout, stride), *[Residual(cout, cout) for _ in range(n - 1)])


class HourglassModule(nn.Module):
    """One recursive hourglass level (the original ``kp_module``): ``up1(x) + up2(low3(low2(low1(x))))``.

    Args:
        n: recursion depth left.
        dims: widths per depth (``dims[0]`` here, ``dims[1]`` one level down).
        modules: residual counts per depth.
    """

    def __init__(self, n: int, dims: Sequence[int], modules: Sequence[int]) -> None:
        super().__init__()
        curr, nxt, m = dims[0], dims[1], modules[0]
        self.up1 = _stack(curr, curr, m)
        self.max1 = nn.Sequential()  # no pooling: low1 down-samples with a stride-2 residual (QUIRK 2.8.10)
        self.low1 = _stack(curr, nxt, m, stride=2)
        self.low2 = HourglassModule(n - 1, dims[1:], modules[1:]) if n > 1 else _stack(nxt, nxt, modules[1])
        self.low3 = _stack(nxt, curr, m, reverse=True)
        self.up2 = nn.Upsample(scale_factor=2, mode="nearest")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up1(x) + self.up2(self.low3(self.low2(self.low1(self.max1(x)))))


class HourglassBackbone(nn.Module):
    """Stacked hourglass trunk returning each stack's 256-channel map at stride 4.

    Args:
        num_stacks: number of hourglasses (2 for Hourglass-104).
        n: recursion depth of each hourglass.
        dims: widths per depth.
        modules: residuals per depth.
        cnv_dim: width of each stack's output (and of the heads' 3×3 conv).

    Attributes:
        channels, reductions: per returned map (``[cnv_dim] * num_stacks``, ``[4] * num_stacks``).
    """

    def __init__(
        self,
        num_stacks: int = 2,
        n: int = 5,
        dims: Sequence[int] = (256, 256, 384, 384, 384, 512),
        modules: Sequence[int] = (2, 2, 2, 2, 2, 4),
        cnv_dim: int = 256,
    ) -> None:
        super().__init__()
        curr = dims[0]
        self.num_stacks = num_stacks
        self.out_channels = cnv_dim
        self.channels = [cnv_dim] * num_stacks
        self.reductions = [4] * num_stacks
        self.pre = nn.Sequential(ConvBNReLU(7, 3, 128, stride=2), Residual(128, curr, stride=2))
        self.kps = nn.ModuleList(HourglassModule(n, dims, modules) for _ in range(num_stacks))
        self.cnvs = nn.ModuleList(ConvBNReLU(3, curr, cnv_dim) for _ in range(num_stacks))
        self.inters = nn.ModuleList(Residual(curr, curr) for _ in range(num_stacks - 1))
        self.inters_ = nn.ModuleList(
            nn.Sequential(nn.Conv2d(curr, curr, 1, bias=False), nn.BatchNorm2d(curr)) for _ in range(num_stacks - 1)
        )
        self.cnvs_ = nn.ModuleList(
            nn.Sequential(nn.Conv2d(cnv_dim, curr, 1, bias=False), nn.BatchNorm2d(curr)) for _ in range(num_stacks - 1)
        )
        self.relu = nn.ReLU(inplace=True)
        self.size_multiple = 2 ** (n + 2)  # stem /4 then n halvings: 128 for n=5

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Args: x: (B, 3, H, W), H and W multiples of ``size_multiple``. Returns: per stack (B, cnv_dim, H/4, W/4)."""
        if x.shape[-2] % self.size_multiple or x.shape[-1] % self.size_multiple:
            raise ValueError(f"Hourglass input must be a multiple of {self.size_multiple}, got {tuple(x.shape[-2:])}")
        inter = self.pre(x)
        outs = []
        for s in range(self.num_stacks):
            cnv = self.cnvs[s](self.kps[s](inter))
            outs.append(cnv)
            if s < self.num_stacks - 1:
                inter = self.inters[s](self.relu(self.inters_[s](inter) + self.cnvs_[s](cnv)))
        return outs


@register_backbone("hourglass")
def hourglass(pretrained: bool = False, pretrained_file: str | Path | None = None, **kwargs) -> HourglassBackbone:
    """Hourglass-104. There are no ImageNet weights; ``pretrained_file`` may be an original CenterNet or
    ExtremeNet-converted checkpoint (trunk keys ``pre.*``, ``kps.*``, ... are ours unchanged; heads are ignored).
    """
    if pretrained and pretrained_file is None:
        raise ValueError(
            "hourglass has no hub weights; pass pretrained_file=<original checkpoint> "
            "(e.g. ctdet_coco_hg.pth) or load one with centerpose.convert.load_original_checkpoint"
        )
    model = HourglassBackbone(**kwargs)
    if pretrained_file is not None:
        sd = read_weights_file(pretrained_file)
        own = model.state_dict()
        missing = [k for k in own if k not in sd and not k.endswith("num_batches_tracked")]
        bad = [k for k in own if k in sd and sd[k].shape != own[k].shape]
        if missing or bad:
            raise ValueError(
                f"{pretrained_file}: not an Hourglass trunk (missing {missing[:3]}..., wrong shape {bad[:3]})"
            )
        model.load_state_dict({k: sd[k] for k in own if k in sd}, strict=False)
    return model
