"""Output heads: one small conv stack per output map, with the original's per-architecture init.

The head set for ``multi_pose`` comes from :func:`pose_heads`; head modules keep the original key names
(``hm.0.weight`` … for single-stack nets, ``hm.<stack>.0.conv.weight`` … for Hourglass).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import nn

from centerpose.codec.ops import JOINT_OFFSETS
from centerpose.keypoints import COCO_PERSON, KeypointSpec

HM_BIAS = -2.19  # −log((1 − 0.1) / 0.1): initial focal-loss prior of 0.1
INIT_STYLES = ("dla", "res", "resdcn", "hourglass")


def pose_heads(
    keypoints: KeypointSpec = COCO_PERSON,
    hm_hp: bool = True,
    reg_offset: bool = True,
    reg_hp_offset: bool = True,
    joint_offsets: str = "shared",
) -> dict[str, int]:
    """The multi_pose head set in the original order: hm 1, wh 2, hps 2J, reg 2, hm_hp J, hp_offset 2.

    Args:
        keypoints: skeleton (J = ``keypoints.num_joints``).
        hm_hp: add the joint heatmaps (the original's ``--not_hm_hp`` switches them off).
        reg_offset: add the centre sub-cell offset ``reg`` (``--not_reg_offset``).
        reg_hp_offset: add ``hp_offset`` (only together with ``hm_hp``; ``--not_reg_hp_offset``).
        joint_offsets: ``shared`` (the original: ``hp_offset`` 2, one offset for whichever joints share a
            cell) or ``per_joint`` (``hp_offset`` 2J: a small person's eyes, nose and ears often fall in one
            output cell and each keeps its own sub-cell position; not parity). The loss and the decode read
            either layout from the channel count.

    Returns:
        Ordered ``{head name: output channels}``.
    """
    if joint_offsets not in JOINT_OFFSETS:
        raise ValueError(f"pose_heads: joint_offsets must be one of {JOINT_OFFSETS}, got {joint_offsets!r}")
    j = keypoints.num_joints
    heads = {"hm": 1, "wh": 2, "hps": 2 * j}
    if reg_offset:
        heads["reg"] = 2
    if hm_hp:
        heads["hm_hp"] = j
        if reg_hp_offset:
            heads["hp_offset"] = 2 * j if joint_offsets == "per_joint" else 2
    return heads


class ConvReLU(nn.Sequential):
    """Conv2d (with bias) + ReLU under the key ``conv``: the Hourglass ``convolution(with_bn=False)``."""

    def __init__(self, cin: int, cout: int, k: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, padding=(k - 1) // 2, bias=True)
        self.relu = nn.ReLU(inplace=True)


def make_head(in_channels: int, out_channels: int, head_conv: int, hourglass: bool = False) -> nn.Module:
    """One head: 3×3 conv (head_conv wide) + ReLU + 1×1 conv, or a lone 1×1 conv if ``head_conv <= 0``.

    Keys: ``0.weight/bias``, ``2.weight/bias`` (``hourglass``: ``0.conv.weight/bias``, ``1.weight/bias``).
    """
    if hourglass:
        return nn.Sequential(ConvReLU(in_channels, head_conv), nn.Conv2d(head_conv, out_channels, 1))
    if head_conv <= 0:
        return nn.Conv2d(in_channels, out_channels, 1)
    return nn.Sequential(
        nn.Conv2d(in_channels, head_conv, 3, padding=1, bias=True),
        nn.ReLU(inplace=True),
        nn.Conv2d(head_conv, out_channels, 1, bias=True),
    )


@torch.no_grad()
def init_head(head: nn.Module, name: str, style: str = "dla") -> None:
    """The original's head init (QUIRK 2.8.5); every conv starts from PyTorch's default init.

    - all styles: if ``"hm"`` is in the name (``hm``, ``hm_hp``) the last conv's bias := −2.19.
    - ``dla``: other heads get zero biases on every conv (weights stay default).
    - ``res``: other heads' last conv gets weight N(0, 0.001) and bias 0.
    - ``resdcn``: other heads get weight N(0, 0.001) and bias 0 on every conv.
    - ``hourglass``: other heads stay at the defaults.
    """
    if style not in INIT_STYLES:
        raise ValueError(f"unknown head init style {style!r}; choose from {INIT_STYLES}")
    convs = [m for m in head.modules() if isinstance(m, nn.Conv2d)]
    if "hm" in name:
        convs[-1].bias.fill_(HM_BIAS)
        return
    targets = {"dla": convs, "res": convs[-1:], "resdcn": convs, "hourglass": []}[style]
    for conv in targets:
        if style != "dla":
            nn.init.normal_(conv.weight, std=0.001)
        nn.init.zeros_(conv.bias)


class CenterNetHeads(nn.Module):
    """All heads of a network, for one or several stacks.

    Args:
        in_channels: channels of the neck output each head reads.
        heads: ordered ``{name: output channels}`` (e.g. :func:`pose_heads`).
        head_conv: width of the 3×3 conv of each head (≤ 0: a single 1×1 conv).
        init_style: one of ``INIT_STYLES``; ``"hourglass"`` also selects the Hourglass head layout.
        num_stacks: > 1 makes each head a ModuleList with one head per stack.
        sorted_registration: register heads in ``sorted`` name order, as the original ``res_50`` does
            (QUIRK 2.8.9: key and init order only; outputs always follow ``heads``' order).

    Attributes:
        heads: ``{name: channels}`` in output order.
    """

    def __init__(
        self,
        in_channels: int,
        heads: Mapping[str, int],
        head_conv: int,
        init_style: str = "dla",
        num_stacks: int = 1,
        sorted_registration: bool = False,
    ) -> None:
        super().__init__()
        if not heads:
            raise ValueError("CenterNetHeads needs at least one head")
        self.heads = dict(heads)
        self.num_stacks = num_stacks
        names: Sequence[str] = sorted(self.heads) if sorted_registration else list(self.heads)
        hourglass = init_style == "hourglass"
        for name in names:
            if num_stacks == 1:
                module = make_head(in_channels, self.heads[name], head_conv, hourglass)
                init_head(module, name, init_style)
            else:
                module = nn.ModuleList(
                    make_head(in_channels, self.heads[name], head_conv, hourglass) for _ in range(num_stacks)
                )
                for m in module:
                    init_head(m, name, init_style)
            self.add_module(name, module)

    def forward(self, feats: Sequence[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        """Args: feats: one (B, in_channels, h, w) map per stack. Returns: per stack ``{name: (B, C, h, w)}``."""
        if len(feats) != self.num_stacks:
            raise ValueError(f"expected {self.num_stacks} stack output(s), got {len(feats)}")
        out = []
        for s, x in enumerate(feats):
            mods = {n: getattr(self, n) for n in self.heads}
            out.append({n: (m[s] if self.num_stacks > 1 else m)(x) for n, m in mods.items()})
        return out
