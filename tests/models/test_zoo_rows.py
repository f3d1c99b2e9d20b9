"""Every model-zoo row (`experiment=multi_pose_*`) builds the original's network, tensor for tensor.

The network of each row is instantiated from its composed config exactly as `centerpose.train` does
(``cfg.model.net``), on the meta device (no memory, no init cost; Hourglass-104 included), and its state-dict
names and shapes are compared with the original's key list for that architecture (``../shared/docs/keys``).
"""

from __future__ import annotations

import math

import hydra
import pytest
import torch
from conftest import KEYS_DIR
from test_convert import original_keys

from centerpose.config import compose
from centerpose.checkpoints.original import ours_to_original

# row -> key list of the original architecture
ZOO_ROWS = {
    "multi_pose_dla_1x": "dla_34",
    "multi_pose_dla_3x": "dla_34",
    "multi_pose_hg_1x": "hourglass",
    "multi_pose_hg_3x": "hourglass",
    "multi_pose_resnet50": "res_50",
}
BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def row_network(experiment: str) -> torch.nn.Module:
    cfg = compose("train", [f"experiment={experiment}"])
    with torch.device("meta"):  # shapes only; no hub download (pretrained=False), no allocation
        return hydra.utils.instantiate(cfg.model.net, pretrained=False, pretrained_file=None)


@pytest.mark.parametrize("experiment", list(ZOO_ROWS))
def test_zoo_row_builds_the_original_network(experiment):
    arch = ZOO_ROWS[experiment]
    if not KEYS_DIR.is_dir():
        pytest.skip(f"key lists not found: {KEYS_DIR}")
    expected = original_keys(arch)
    net = row_network(experiment)
    ours = {ours_to_original(k, arch): tuple(v.shape) for k, v in net.state_dict().items()}
    assert sorted(set(ours) - set(expected)) == [] and sorted(set(expected) - set(ours)) == []
    wrong = {k: (ours[k], expected[k]) for k in expected if ours[k] != tuple(expected[k])}
    assert wrong == {}
    # the same number of learnable parameters as the original (res_50: 34.7 M, not timm's generic 80 M network)
    original_params = sum(math.prod(shape) for k, shape in expected.items() if not k.endswith(BUFFERS))
    assert sum(p.numel() for p in net.parameters()) == original_params


def test_weights_tag_is_not_an_architecture():
    from centerpose.models import build_model

    with pytest.raises(ValueError, match="pretrained_tag='tv_in1k'"):
        build_model("resnet50.tv_in1k")
