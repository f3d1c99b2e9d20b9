"""Necks: turn a backbone's feature list into one stride-4 map for the heads.

- :class:`DLAUpNeck` — the original DLA-34 up-sampling path (DLAUp + final IDAUp, METHOD.md §2.1.2). It
  is written for any list of levels whose strides double, so it is also the generic neck for timm
  backbones (with plain 3×3 convs instead of DCNs).
- :class:`ResNetDeconvNeck` — the ``res_50`` / ``resdcn_50`` up-path (§2.2).
- :class:`FPNNeck` — not the original's: a top-down pyramid of one chosen width, for thin timm backbones
  whose stride-4 level is too narrow to feed the heads (RegNetX-200MF: 24 channels) and whose DLA-up neck
  costs as much as the backbone on a CPU.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from centerpose.models.dcn import DCN


def bilinear_kernel(k: int) -> torch.Tensor:
    """The original ``fill_up_weights`` kernel: (k, k), separable, e.g. k=4 rows [.25, .75, .75, .25]."""
    f = math.ceil(k / 2)
    c = (2 * f - 1 - f % 2) / (2.0 * f)
    r = 1 - (torch.arange(k, dtype=torch.float64) / f - c).abs()
    return (r[:, None] * r[None, :]).float()


@torch.no_grad()
def fill_up_weights(up: nn.ConvTranspose2d) -> None:
    """Write the bilinear kernel into ``weight[c, 0]`` for every c, as the original does.

    On a depthwise up-conv (DLA, weight (o, 1, k, k)) that is a per-channel bilinear up-sampler; on a
    dense one (resdcn, weight (p, p, k, k)) only output channel 0 is touched (QUIRK 2.8.4).
    """
    kernel = bilinear_kernel(up.weight.shape[-1])
    for c in range(up.weight.shape[0]):
        up.weight[c, 0] = kernel


class DeformConv(nn.Module):
    """3×3 conv (DCN by default) + BN + ReLU; keys ``actf.0.*`` (BN) and ``conv.*``.

    Args:
        chi: input channels.
        cho: output channels.
        use_dcn: a :class:`DCN` as the original; False gives a plain ``Conv2d`` (3×3, with bias, the same
            ``weight``/``bias`` keys minus the offset conv).
    """

    def __init__(self, chi: int, cho: int, use_dcn: bool = True) -> None:
        super().__init__()
        # actf is registered first so the key order matches the original's state_dict
        self.actf = nn.Sequential(nn.BatchNorm2d(cho), nn.ReLU(inplace=True))
        self.conv = DCN(chi, cho, 3, stride=1, padding=1) if use_dcn else nn.Conv2d(chi, cho, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.actf(self.conv(x))


class IDAUp(nn.Module):
    """Iterative deep aggregation: fold each level into the one above it, from shallow to deep.

    For i = 1..len(channels)-1 it holds ``proj_i`` (channels[i]→o), ``up_i`` (depthwise ConvTranspose2d,
    kernel 2f, stride f, f = up_f[i], bilinear init) and ``node_i`` (o→o).

    Args:
        o: output channels of every folded level.
        channels: input channels per level.
        up_f: up-sampling factor per level (entry 0 unused).
        use_dcn: DCN or plain conv in ``proj``/``node``.
    """

    def __init__(self, o: int, channels: Sequence[int], up_f: Sequence[int], use_dcn: bool = True) -> None:
        super().__init__()
        for i in range(1, len(channels)):
            f = int(up_f[i])
            up = nn.ConvTranspose2d(o, o, f * 2, stride=f, padding=f // 2, output_padding=0, groups=o, bias=False)
            fill_up_weights(up)
            setattr(self, f"proj_{i}", DeformConv(channels[i], o, use_dcn))
            setattr(self, f"up_{i}", up)
            setattr(self, f"node_{i}", DeformConv(o, o, use_dcn))

    def forward(self, layers: list[torch.Tensor], startp: int, endp: int) -> None:
        """In place: ``layers[i] = node(up(proj(layers[i])) + layers[i-1])`` for i in startp+1..endp-1."""
        for i in range(startp + 1, endp):
            j = i - startp
            up = getattr(self, f"up_{j}")(getattr(self, f"proj_{j}")(layers[i]))
            layers[i] = getattr(self, f"node_{j}")(up + layers[i - 1])


class DLAUp(nn.Module):
    """Deep-to-shallow aggregation over levels ``startp..``: ``ida_0`` merges the two deepest, etc.

    Args:
        startp: index of the shallowest level used in the list passed to ``forward``.
        channels: channels of the used levels, shallow to deep.
        scales: stride of each used level relative to the shallowest (1, 2, 4, ...).
        in_channels: input channels (defaults to ``channels``).
        use_dcn: DCN or plain conv.
    """

    def __init__(
        self,
        startp: int,
        channels: Sequence[int],
        scales: Sequence[int],
        in_channels: Sequence[int] | None = None,
        use_dcn: bool = True,
    ) -> None:
        super().__init__()
        self.startp = startp
        channels = list(channels)
        in_channels = list(in_channels if in_channels is not None else channels)
        scales = [int(s) for s in scales]
        for i in range(len(channels) - 1):
            j = -i - 2
            setattr(
                self, f"ida_{i}", IDAUp(channels[j], in_channels[j:], [s // scales[j] for s in scales[j:]], use_dcn)
            )
            # levels deeper than j now live at level j's stride and width
            scales[j + 1 :] = [scales[j]] * len(scales[j + 1 :])
            in_channels[j + 1 :] = [channels[j]] * len(in_channels[j + 1 :])

    def forward(self, layers: list[torch.Tensor]) -> list[torch.Tensor]:
        """Returns the aggregated maps shallow to deep (the deepest is the untouched input). Mutates ``layers``."""
        out = [layers[-1]]
        for i in range(len(layers) - self.startp - 1):
            getattr(self, f"ida_{i}")(layers, len(layers) - i - 2, len(layers))
            out.insert(0, layers[-1])
        return out


def _relative_scales(reductions: Sequence[int]) -> list[int]:
    scales = [r // reductions[0] for r in reductions]
    for a, b, r in zip(scales, scales[1:], reductions[1:]):
        if b != 2 * a or r % reductions[0]:
            raise ValueError(f"DLA-up neck needs levels whose strides double, got reductions {list(reductions)}")
    return scales


class DLAUpNeck(nn.Module):
    """DLAUp over all given levels followed by the final IDAUp over all but the deepest (§2.1.2).

    With the DLA-34 levels (64@4, 128@8, 256@16, 512@32) and ``use_dcn=True`` this is the original
    ``dla_up`` + ``ida_up`` (keys ``dla_up.*``, ``ida_up.*``). For other backbones pass their levels from
    stride 4 on; the output has ``in_channels[0]`` channels at the first level's stride.

    Args:
        in_channels: channels per level, shallow (stride 4) to deep.
        reductions: stride per level; each must double the previous one.
        use_dcn: DCN (original) or plain 3×3 convs.
    """

    def __init__(self, in_channels: Sequence[int], reductions: Sequence[int], use_dcn: bool = True) -> None:
        super().__init__()
        if len(in_channels) != len(reductions) or len(in_channels) < 2:
            raise ValueError(
                f"DLA-up neck needs >= 2 levels with one reduction each, got channels "
                f"{list(in_channels)} and reductions {list(reductions)}"
            )
        scales = _relative_scales(reductions)
        self.dla_up = DLAUp(0, in_channels, scales, use_dcn=use_dcn)
        n = len(in_channels) - 1  # the deepest level only feeds DLAUp (last_level=5 in the original)
        self.ida_up = IDAUp(in_channels[0], in_channels[:n], scales[:n], use_dcn=use_dcn)
        self.out_channels = int(in_channels[0])
        self.out_reduction = int(reductions[0])

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        """Args: feats: per level (B, C_i, H/r_i, W/r_i). Returns: (B, in_channels[0], H/r_0, W/r_0)."""
        x = self.dla_up(list(feats))
        y = [t.clone() for t in x[: len(x) - 1]]  # the original clones before the in-place IDAUp
        self.ida_up(y, 0, len(y))
        return y[-1]


class ResNetDeconvNeck(nn.Module):
    """The ResNet up-path: 3 × (optional DCN + BN + ReLU, ConvTranspose2d k4 s2 + BN + ReLU) (§2.2).

    ``use_dcn=False`` (``res_50``): ``deconv_layers`` = 3 × [ConvT(in→256), BN, ReLU], ConvT weights
    N(0, 0.001). ``use_dcn=True`` (``resdcn_50``): 3 × [DCN(in→p), BN, ReLU, ConvT(p→p), BN, ReLU] with
    p = 256, 128, 64 and the original's dense bilinear fill (QUIRK 2.8.4). BN 1/0 in both.

    Args:
        in_channels: backbone output channels (2048 for ResNet-50).
        num_filters: widths of the three stages (default per ``use_dcn`` as in the original).
        use_dcn: the resdcn variant.
    """

    def __init__(self, in_channels: int, num_filters: Sequence[int] | None = None, use_dcn: bool = False) -> None:
        super().__init__()
        if num_filters is None:
            num_filters = (256, 128, 64) if use_dcn else (256, 256, 256)
        layers: list[nn.Module] = []
        cin = in_channels
        for p in num_filters:
            up = nn.ConvTranspose2d(cin if not use_dcn else p, p, 4, stride=2, padding=1, output_padding=0, bias=False)
            if use_dcn:
                fill_up_weights(up)
                layers += [DCN(cin, p, 3, stride=1, padding=1), nn.BatchNorm2d(p), nn.ReLU(inplace=True)]
            else:
                nn.init.normal_(up.weight, std=0.001)
            layers += [up, nn.BatchNorm2d(p), nn.ReLU(inplace=True)]
            cin = p
        self.deconv_layers = nn.Sequential(*layers)
        self.out_channels = int(num_filters[-1])
        self.out_reduction_factor = 2 ** len(num_filters)

    def forward(self, feats: Sequence[torch.Tensor] | torch.Tensor) -> torch.Tensor:
        """Args: feats: the deepest map last, (B, in, H/32, W/32). Returns: (B, out, H/4, W/4)."""
        x = feats[-1] if isinstance(feats, (list, tuple)) else feats
        return self.deconv_layers(x)


def _conv_bn_relu(cin: int, cout: int, k: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class FPNNeck(nn.Module):
    """Top-down feature pyramid summed into the finest level, then one 3×3 conv.

    Each level gets a 1×1 conv + BN + ReLU to ``width`` channels (``lateral.i``); from the deepest level
    down, the running map is up-sampled 2× (nearest) and added to the next lateral; ``out`` (3×3 conv + BN
    + ReLU) smooths the sum at the finest stride.

    Args:
        in_channels: channels per level, shallow (stride 4) to deep.
        reductions: stride per level; each must double the previous one.
        width: channels of every lateral and of the output.
    """

    def __init__(self, in_channels: Sequence[int], reductions: Sequence[int], width: int = 64) -> None:
        super().__init__()
        if len(in_channels) != len(reductions) or len(in_channels) < 2:
            raise ValueError(
                f"FPN neck needs >= 2 levels with one reduction each, got channels "
                f"{list(in_channels)} and reductions {list(reductions)}"
            )
        _relative_scales(reductions)  # strides must double
        self.lateral = nn.ModuleList(_conv_bn_relu(int(c), int(width), 1) for c in in_channels)
        self.out = _conv_bn_relu(int(width), int(width), 3)
        self.out_channels = int(width)
        self.out_reduction = int(reductions[0])

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        """Args: feats: per level (B, C_i, H/r_i, W/r_i). Returns: (B, width, H/r_0, W/r_0)."""
        x = self.lateral[-1](feats[-1])
        for i in range(len(feats) - 2, -1, -1):
            x = self.lateral[i](feats[i]) + F.interpolate(x, scale_factor=2.0, mode="nearest")
        return self.out(x)
