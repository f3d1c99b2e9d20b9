"""Start a network from another checkpoint's weights (``init_from=``): centerpose, original or bare files.

Every tensor whose name and shape match is loaded; the rest is reported, as the original's ``load_model``
does. Typical use: a multi_pose model from the original's ctdet detection checkpoint, whose 80-class ``hm``
output conv is skipped on shape while the trunk, ``wh``, ``reg`` and the first ``hm`` conv load.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from centerpose.checkpoints.format import NET_PREFIX, net_state_dict
from centerpose.checkpoints.original import LoadReport, convert_original_state_dict, load_matching
from centerpose.checkpoints.reader import read_checkpoint, state_dict_of
from centerpose.zoo import is_zoo_name, resolve_weights

log = logging.getLogger("centerpose.checkpoints")


def read_state_dict(path: str | Path, arch: str) -> dict[str, torch.Tensor]:
    """Tensors of ``path`` under our key names, loaded with ``weights_only=True``.

    Accepts a centerpose/Lightning ``.ckpt`` (``state_dict`` with ``net.`` prefixes), an original
    CenterNet file (``{'epoch', 'state_dict'}`` with the original names, ``module.`` stripped) or a bare
    state dict of either naming.
    """
    path = resolve_weights(path) if is_zoo_name(path) else Path(path)  # a zoo name: fetched, checked
    if not path.is_file():
        raise FileNotFoundError(
            f"init_from: checkpoint not found: '{path}' (download it there, or set "
            "init_from=null to start from the backbone's ImageNet weights)"
        )
    state = state_dict_of(read_checkpoint(path, what="init_from checkpoint"))
    if not isinstance(state, dict) or not state:
        raise ValueError(f"init_from: '{path}' holds no state dict")
    if any(k.startswith(NET_PREFIX) for k in state):  # written by centerpose.train
        return net_state_dict(state)
    if any(k.startswith(("backbone.", "neck.", "heads.")) for k in state):  # a bare centerpose state dict
        return dict(state)
    return convert_original_state_dict(state, arch)


def init_from_checkpoint(net: nn.Module, path: str | Path) -> LoadReport:
    """Load every matching tensor of ``path`` into ``net`` and log exactly what was skipped or missing."""
    arch = getattr(net, "arch", "") or "dla34"
    report = load_matching(net, read_state_dict(path, arch))
    log.info("init_from %s: loaded %d tensors", path, len(report.loaded))
    for key, theirs, ours in report.skipped:
        log.warning("init_from: skipped %s: shape %s in the checkpoint, %s in the model", key, theirs, ours)
    for key in report.unexpected:
        log.warning("init_from: dropped %s (not in the model)", key)
    if report.missing:
        log.warning(
            "init_from: %d model tensors not in the checkpoint keep their initial values: %s",
            len(report.missing),
            ", ".join(report.missing),
        )
    if not report.loaded:
        raise ValueError(f"init_from: no tensor of '{path}' matches the model ({arch}); wrong architecture?")
    return report
