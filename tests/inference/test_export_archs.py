"""Every architecture exports to ONNX (DeformConv inside) and onnxruntime reproduces PyTorch.

Slow: a dynamo export of DLA-34 takes ~45 s (ResNet-50 ~30 s, Hourglass-104 minutes) on a loaded 2-core
CPU. Run with ``python -m pytest -q -m slow tests/inference/test_export_archs.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from export_helpers import assert_same_people, spread_scores

from centerpose.codec import CenterPoseCodec, DecodeOptions
from centerpose.export import export_onnx, export_torchscript
from centerpose.models import build_model
from centerpose.inference.onnx_runtime import people_to_image

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

pytestmark = pytest.mark.slow

#: arch -> (build_model kwargs, input side, pad)
ARCHS = {
    "dla34": (dict(backbone="dla34"), 128, 31),
    "res_50": (dict(backbone="res_50"), 128, 31),
    "resdcn_50": (dict(backbone="resdcn_50"), 128, 31),
    "hourglass": (dict(backbone="hourglass"), 128, 127),
    "timm_convnext": (dict(backbone="convnext_atto", use_dcn=True), 128, 31),
}


@pytest.mark.parametrize("arch", list(ARCHS))
def test_arch_exports_heads_and_people(arch, tmp_path):
    kwargs, side, pad = ARCHS[arch]
    torch.manual_seed(0)
    net = build_model(**kwargs).eval()
    spread_scores(net)
    x = torch.randn(1, 3, side, side, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = net(x)[-1]

    heads = export_onnx(net, tmp_path / "heads.onnx", input_hw=(side, side), pad=pad)
    ops = {n.op_type for n in onnx.load(str(heads)).graph.node}
    has_dcn = arch in ("dla34", "resdcn_50", "timm_convnext")
    assert ("DeformConv" in ops) == has_dcn
    got = ort.InferenceSession(str(heads), providers=["CPUExecutionProvider"]).run(None, {"image": x.numpy()})
    for name, g in zip(want, got):
        assert np.abs(g - want[name].numpy()).max() <= 1e-4, name

    people_path = export_onnx(
        net,
        tmp_path / "people.onnx",
        input_hw=(side, side),
        pad=pad,
        decode=True,
        options=DecodeOptions(K=50),
        check=False,
    )
    (people,) = ort.InferenceSession(str(people_path), providers=["CPUExecutionProvider"]).run(
        None, {"image": x.numpy()}
    )
    c, s = torch.tensor([[side / 2, side / 2]]), torch.tensor([float(side)])
    poses = CenterPoseCodec(decode=DecodeOptions(K=50, tie_break="stable")).decode(want, {"c": c, "s": s})
    rows, kp = poses.rows(), poses.joint_scores
    got_rows, got_kp = people_to_image(torch.from_numpy(people), c, s, (side, side))
    assert_same_people(torch.cat([got_rows[0], got_kp[0]], 1).numpy(), torch.cat([rows[0], kp[0]], 1).numpy())

    script = export_torchscript(net, tmp_path / "model.pt", input_hw=(side, side), pad=pad)
    with torch.no_grad():
        traced = torch.jit.load(str(script))(x)
    for name, t in zip(want, traced):
        assert torch.abs(t - want[name]).max() <= 1e-5, name
