"""Networks: every backbone builds, runs forward/backward at stride 4; DCN, necks and head init."""

from __future__ import annotations

import pytest
import timm
import torch
from torch import nn
from torchvision.ops import deform_conv2d

from centerpose.keypoints import COCO_PERSON, KeypointSpec
from centerpose.models import DCN, build_model, pose_heads
from centerpose.models.heads import HM_BIAS
from centerpose.models.necks import DLAUpNeck, FPNNeck, bilinear_kernel

BACKBONES = ["dla34", "resnet18", "resnet50", "hrnet_w18", "convnext_nano", "mobilenetv3_large_100", "efficientnet_b0"]


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.mark.parametrize("name", BACKBONES)
def test_forward_backward_shapes(name):
    model = build_model(name)
    x = torch.randn(1, 3, 256, 256)
    out = model(x)
    assert isinstance(out, list) and len(out) == 1
    expected = pose_heads(COCO_PERSON)
    assert list(out[0]) == list(expected)
    for head, ch in expected.items():
        assert out[0][head].shape == (1, ch, 64, 64), head
    sum(o.float().mean() for o in out[0].values()).backward()
    first = next(p for p in model.backbone.parameters() if p.requires_grad)
    assert first.grad is not None and first.grad.abs().sum() > 0


def test_pose_heads_order_and_options():
    assert pose_heads() == {"hm": 1, "wh": 2, "hps": 34, "reg": 2, "hm_hp": 17, "hp_offset": 2}
    assert list(pose_heads()) == ["hm", "wh", "hps", "reg", "hm_hp", "hp_offset"]
    five = KeypointSpec(names=tuple("abcde"), flip_pairs=((1, 2),))
    assert pose_heads(five) == {"hm": 1, "wh": 2, "hps": 10, "reg": 2, "hm_hp": 5, "hp_offset": 2}
    assert pose_heads(hm_hp=False) == {"hm": 1, "wh": 2, "hps": 34, "reg": 2}
    assert "reg" not in pose_heads(reg_offset=False)
    assert "hp_offset" not in pose_heads(reg_hp_offset=False)
    assert pose_heads(five, joint_offsets="per_joint")["hp_offset"] == 10
    assert build_model("resnet18", joint_offsets="per_joint", head_conv=8).heads.hp_offset[-1].out_channels == 34
    with pytest.raises(ValueError, match="joint_offsets"):
        pose_heads(joint_offsets="each")


def test_custom_heads_and_keypoints():
    five = KeypointSpec(names=tuple("abcde"), flip_pairs=((1, 2),))
    model = build_model("resnet18", keypoints=five, head_conv=32)
    out = model(torch.randn(1, 3, 64, 64))[0]
    assert out["hps"].shape == (1, 10, 16, 16) and out["hm_hp"].shape == (1, 5, 16, 16)
    assert model.heads.hm[0].out_channels == 32
    model = build_model("resnet18", heads={"hm": 80, "wh": 2, "reg": 2})
    assert list(model(torch.randn(1, 3, 64, 64))[0]) == ["hm", "wh", "reg"]


def test_dla34_head_init_and_width():
    heads = build_model("dla34").heads
    for name in ("hm", "hm_hp"):  # substring rule: hm_hp gets the prior too
        assert torch.all(getattr(heads, name)[2].bias == HM_BIAS)
        assert getattr(heads, name)[0].bias.abs().sum() > 0  # first conv's bias is never zeroed for hm*
    for name in ("wh", "hps", "reg", "hp_offset"):
        head = getattr(heads, name)
        assert head[0].out_channels == 256
        assert torch.all(head[0].bias == 0) and torch.all(head[2].bias == 0)
        assert head[2].weight.std() > 0.01  # weights keep PyTorch's default init


def test_res50_head_init_and_order():
    model = build_model("res_50")
    heads = model.heads
    assert [n for n, _ in heads.named_children()] == sorted(pose_heads())  # QUIRK 2.8.9
    assert list(model.heads_spec) == list(pose_heads())
    assert heads.wh[0].in_channels == 256 and heads.wh[0].out_channels == 64
    assert torch.all(heads.hm[2].bias == HM_BIAS)
    assert torch.all(heads.wh[2].bias == 0) and heads.wh[2].weight.std() < 0.002
    assert heads.wh[0].bias.abs().sum() > 0 and heads.wh[0].weight.std() > 0.01
    deconv = model.neck.deconv_layers[0]
    assert deconv.weight.shape == (2048, 256, 4, 4) and deconv.weight.std() < 0.002


def test_resdcn50_init():
    model = build_model("resdcn_50")
    heads = model.heads
    assert heads.wh[0].in_channels == 64
    for conv in (heads.wh[0], heads.wh[2]):
        assert torch.all(conv.bias == 0) and conv.weight.std() < 0.002
    assert torch.all(heads.hm_hp[2].bias == HM_BIAS)
    up = model.neck.deconv_layers[3]  # dense up-conv: only output channel 0 is bilinear (QUIRK 2.8.4)
    assert up.weight.shape == (256, 256, 4, 4)
    assert torch.equal(up.weight[:, 0], bilinear_kernel(4).expand(256, 4, 4))
    assert not torch.allclose(up.weight[:, 1], bilinear_kernel(4).expand(256, 4, 4))


def test_bilinear_kernel_and_dla_upconvs():
    row4 = torch.tensor([0.25, 0.75, 0.75, 0.25])
    assert torch.allclose(bilinear_kernel(4), row4[:, None] * row4[None, :])
    row8 = torch.tensor([1, 3, 5, 7, 7, 5, 3, 1]) / 8
    assert torch.allclose(bilinear_kernel(8), row8[:, None] * row8[None, :])
    neck = build_model("dla34").neck
    assert neck.ida_up.up_2.weight.shape == (64, 1, 8, 8)
    assert torch.allclose(neck.ida_up.up_2.weight, bilinear_kernel(8).expand(64, 1, 8, 8))
    assert sum(isinstance(m, DCN) for m in neck.modules()) == 16


def test_dla34_dead_projections_do_not_change_outputs():
    model = build_model("dla34").eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ref = model(x)[0]
        for level in ("level3", "level4"):
            nn.init.normal_(getattr(model.backbone.body, level).project[0].weight)
        nn.init.normal_(model.backbone.fc.weight)
        out = model(x)[0]
    assert all(torch.equal(ref[k], out[k]) for k in ref)


def test_unknown_backbone_lists_choices():
    with pytest.raises(ValueError, match="unknown backbone 'nope'") as err:
        build_model("nope")
    for name in ("dla34", "res_50", "resdcn_50", "hourglass"):
        assert name in str(err.value)


def test_neck_rejects_non_doubling_strides():
    with pytest.raises(ValueError, match="strides double"):
        DLAUpNeck([64, 128, 256], [4, 8, 32])
    with pytest.raises(ValueError, match="strides double"):
        FPNNeck([64, 128, 256], [4, 8, 32])


def test_fpn_neck_for_timm_backbones():
    net = build_model("regnetx_002", neck="fpn", neck_width=48, head_conv=32)
    assert isinstance(net.neck, FPNNeck) and net.neck.out_channels == 48
    assert net.heads.hm[0].in_channels == 48  # heads sized from the neck
    out = net(torch.randn(2, 3, 128, 128))[-1]
    assert out["hm_hp"].shape == (2, 17, 32, 32)
    # (a random projection: the mean of a batch-normalised map has no gradient)
    sum((o * torch.randn_like(o)).sum() for o in out.values()).backward()
    # every level feeds the output: the deepest stage gets a gradient (at its blocks' last BN: RegNet starts
    # each residual branch at zero)
    assert net.backbone.body.s4.b1.conv3.bn.weight.grad.abs().sum() > 0
    assert isinstance(build_model("regnetx_002").neck, DLAUpNeck)  # the default is unchanged
    assert isinstance(build_model("dla34", neck="fpn", head_conv=8).neck, FPNNeck)  # DCNs only when asked
    with pytest.raises(ValueError, match="unknown neck 'bifpn'"):
        build_model("regnetx_002", neck="bifpn")
    with pytest.raises(ValueError, match="no DCN variant"):
        build_model("regnetx_002", neck="fpn", use_dcn=True)
    with pytest.raises(ValueError, match=r"strides \[32\].*model.net.neck=null"):
        build_model("res_50", neck="fpn")


def test_pretrained_file(tmp_path):
    full = timm.create_model("resnet18")  # a hub-layout file: includes fc, which features_only drops
    path = tmp_path / "resnet18.pth"
    torch.save(full.state_dict(), path)
    model = build_model("resnet18", pretrained_file=path)
    assert torch.equal(model.backbone.body.layer4[1].conv2.weight, full.layer4[1].conv2.weight)
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="bad.pth"):
        build_model("resnet18", pretrained_file=tmp_path / "bad.pth")


def test_dla34_pretrained_file_fills_fc(tmp_path):
    full = timm.create_model("dla34")
    torch.save(full.state_dict(), tmp_path / "dla34.pth")
    model = build_model("dla34", pretrained_file=tmp_path / "dla34.pth")
    assert torch.equal(model.backbone.fc.weight, full.fc.weight)
    assert torch.equal(model.backbone.body.level5.root.conv.weight, full.level5.root.conv.weight)


# ---- DCN ----


def test_fresh_dcn_is_half_conv_plus_bias():
    dcn = DCN(4, 5, 3, stride=1, padding=1)
    with torch.no_grad():
        dcn.bias.uniform_(-1, 1)
    x = torch.randn(2, 4, 9, 11)
    ref = 0.5 * nn.functional.conv2d(x, dcn.weight, padding=1) + dcn.bias[None, :, None, None]
    assert torch.allclose(dcn(x), ref, atol=1e-5)
    assert dcn.conv_offset_mask.weight.shape == (27, 4, 3, 3) and torch.all(dcn.conv_offset_mask.weight == 0)


def _manual_dcn(x, om, weight, bias, stride, pad, groups):
    """float64 reference: bilinear sampling at tap + (dy, dx), zero outside, times sigmoid mask."""
    b, cin, h, w = x.shape
    cout, _, kh, kw = weight.shape
    k = kh * kw
    ho, wo = om.shape[-2:]
    cols = torch.zeros(b, cin, k, ho, wo, dtype=torch.float64)
    oy = torch.arange(ho, dtype=torch.float64)[:, None] * stride - pad
    ox = torch.arange(wo, dtype=torch.float64)[None, :] * stride - pad
    per_group = cin // groups
    for g in range(groups):
        for t in range(k):
            i, j = divmod(t, kw)
            py = oy + i + om[:, g * 2 * k + 2 * t]  # (B, Ho, Wo): dy first, dx next (interleaved)
            px = ox + j + om[:, g * 2 * k + 2 * t + 1]
            m = torch.sigmoid(om[:, 2 * groups * k + g * k + t])
            y0, x0 = py.floor(), px.floor()
            val = torch.zeros(b, per_group, ho, wo, dtype=torch.float64)
            for yc, wy in ((y0, 1 - (py - y0)), (y0 + 1, py - y0)):
                for xc, wx in ((x0, 1 - (px - x0)), (x0 + 1, px - x0)):
                    ok = (yc >= 0) & (yc < h) & (xc >= 0) & (xc < w)
                    yi, xi = yc.clamp(0, h - 1).long(), xc.clamp(0, w - 1).long()
                    for bi in range(b):
                        src = x[bi, g * per_group : (g + 1) * per_group][:, yi[bi], xi[bi]]
                        val[bi] += src * (wy * wx * ok)[bi]
            cols[:, g * per_group : (g + 1) * per_group, t] = val * m[:, None]
    out = torch.einsum("bckhw,ock->bohw", cols, weight.reshape(cout, cin, k).double())
    return out + bias.double()[None, :, None, None]


@pytest.mark.parametrize("stride,groups", [(1, 1), (2, 1), (1, 2)])
def test_dcn_matches_manual_bilinear_reference(stride, groups):
    dcn = DCN(4, 3, 3, stride=stride, padding=1, deformable_groups=groups).double()
    with torch.no_grad():
        dcn.conv_offset_mask.weight.normal_(0, 0.5)
        dcn.conv_offset_mask.bias.normal_(0, 1.0)
        dcn.bias.normal_()
    x = torch.randn(2, 4, 7, 8, dtype=torch.float64)
    om = dcn.conv_offset_mask(x)
    assert om[:, : 2 * 9 * groups].abs().max() > 0.5  # offsets really move the taps
    ref = _manual_dcn(x, om.detach(), dcn.weight.detach(), dcn.bias.detach(), stride, 1, groups)
    assert torch.allclose(dcn(x).detach(), ref, atol=1e-10)
    direct = deform_conv2d(
        x,
        om[:, : 18 * groups],
        dcn.weight,
        dcn.bias,
        stride=stride,
        padding=1,
        mask=torch.sigmoid(om[:, 18 * groups :]),
    )
    assert torch.equal(dcn(x), direct)


# ---- Hourglass ----


def test_hourglass_two_stacks_small_input():
    model = build_model("hourglass").eval()
    assert model.num_stacks == 2
    with torch.no_grad():
        out = model(torch.randn(1, 3, 128, 128))
    assert len(out) == 2
    for stack in out:
        for head, ch in pose_heads().items():
            assert stack[head].shape == (1, ch, 32, 32)
    heads = model.heads
    assert torch.all(heads.hm[1][1].bias == HM_BIAS) and torch.all(heads.hm_hp[0][1].bias == HM_BIAS)
    assert heads.wh[0][1].bias.abs().sum() > 0  # non-hm heads keep PyTorch defaults
    assert heads.wh[0][0].conv.out_channels == 256
    with pytest.raises(ValueError, match="multiple of 128"):
        model(torch.randn(1, 3, 96, 128))
