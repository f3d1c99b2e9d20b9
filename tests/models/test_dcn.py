"""The fast CPU DCN path (``deform_conv2d_sampling``) against torchvision's ``deform_conv2d``."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.ops import deform_conv2d

from centerpose.models.dcn import DCN, deform_conv2d_sampling


def _case(
    seed: int,
    stride: int,
    dilation: int,
    groups: int,
    kernel: tuple[int, int] = (3, 3),
    padding: tuple[int, int] = (1, 1),
    dtype: torch.dtype = torch.float32,
):
    """Random x, offsets of a few pixels (many samples leave the 13×11 image), mask in (0, 1), weight, bias."""
    g = torch.Generator().manual_seed(seed)
    b, c, h, w, c_out = 2, 4 * groups, 13, 11, 5
    kh, kw = kernel
    ho = (h + 2 * padding[0] - dilation * (kh - 1) - 1) // stride + 1
    wo = (w + 2 * padding[1] - dilation * (kw - 1) - 1) // stride + 1
    k = groups * kh * kw
    x = torch.randn(b, c, h, w, generator=g, dtype=dtype)
    offset = 3.0 * torch.randn(b, 2 * k, ho, wo, generator=g, dtype=dtype)
    mask = torch.rand(b, k, ho, wo, generator=g, dtype=dtype)
    weight = torch.randn(c_out, c, kh, kw, generator=g, dtype=dtype) / (c * kh * kw) ** 0.5
    bias = torch.randn(c_out, generator=g, dtype=dtype)
    return [t.requires_grad_() for t in (x, offset, weight, bias, mask)]


def _sample_positions(
    offset: torch.Tensor, kernel: tuple[int, int], stride: int, padding: tuple[int, int], dilation: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Absolute (y, x) of every deformed tap: (B, groups, kh*kw, Ho, Wo) each."""
    b, _, ho, wo = offset.shape
    kh, kw = kernel
    off = offset.detach().reshape(b, -1, kh * kw, 2, ho, wo)
    i, j = torch.meshgrid(torch.arange(kh), torch.arange(kw), indexing="ij")
    base_y = (torch.arange(ho) * stride - padding[0])[None, :, None] + dilation * i.reshape(-1)[:, None, None]
    base_x = (torch.arange(wo) * stride - padding[1])[None, None, :] + dilation * j.reshape(-1)[:, None, None]
    return off[:, :, :, 0] + base_y, off[:, :, :, 1] + base_x


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("dilation", [1, 2])
@pytest.mark.parametrize("groups", [1, 2])
def test_sampling_matches_torchvision_forward_and_grads(stride, dilation, groups):
    x, offset, weight, bias, mask = _case(10 * stride + 3 * dilation + groups, stride, dilation, groups)
    py, px = _sample_positions(offset, (3, 3), stride, (1, 1), dilation)
    outside = (py <= -1) | (py >= x.shape[2]) | (px <= -1) | (px >= x.shape[3])
    partly = ~outside & ((py < 0) | (py > x.shape[2] - 1) | (px < 0) | (px > x.shape[3] - 1))
    assert outside.float().mean() > 0.05 and partly.float().mean() > 0.05  # both border cases are exercised

    kwargs = dict(stride=stride, padding=1, dilation=dilation, mask=mask)
    ref = deform_conv2d(x, offset, weight, bias, **kwargs)
    out = deform_conv2d_sampling(x, offset, weight, bias, **kwargs)
    assert out.shape == ref.shape
    assert (out - ref).abs().max() < 1e-5

    grad_out = torch.randn_like(ref)
    inputs = (x, offset, weight, bias, mask)
    g_ref = torch.autograd.grad(ref, inputs, grad_out)
    g_out = torch.autograd.grad(out, inputs, grad_out)
    for name, a, b in zip(("x", "offset", "weight", "bias", "mask"), g_out, g_ref):
        assert (a - b).abs().max() < 1e-4, name
    assert g_ref[1].abs().max() > 0.1  # the offset gradient is really compared, not two zeros


def test_sampling_matches_torchvision_float64_nonsquare_kernel():
    """(kh, kw) = (2, 3): the tap order t = i * kw + j and the (Δy, Δx) interleave are not symmetric."""
    x, offset, weight, bias, mask = _case(7, 1, 1, 1, kernel=(2, 3), padding=(0, 1), dtype=torch.float64)
    kwargs = dict(stride=1, padding=(0, 1), dilation=1, mask=mask)
    ref = deform_conv2d(x, offset, weight, bias, **kwargs)
    out = deform_conv2d_sampling(x, offset, weight, bias, **kwargs)
    assert (out - ref).abs().max() < 1e-12
    g_ref = torch.autograd.grad(ref.sum(), (x, offset, mask))
    g_out = torch.autograd.grad(out.sum(), (x, offset, mask))
    assert all((a - b).abs().max() < 1e-12 for a, b in zip(g_out, g_ref))


def test_sampling_without_mask_and_far_outside():
    x, offset, weight, bias, _ = _case(1, 1, 1, 1)
    ref = deform_conv2d(x, offset, weight, bias, padding=1)
    assert (deform_conv2d_sampling(x, offset, weight, bias, padding=1) - ref).abs().max() < 1e-5
    # every tap pushed beyond the image: each output is just the bias
    far = torch.full_like(offset, 50.0)
    out = deform_conv2d_sampling(x, far, weight, bias, padding=1)
    assert torch.equal(out, bias.detach()[None, :, None, None].expand_as(out))


def test_sampling_rejects_bad_shapes():
    x, offset, weight, bias, mask = _case(2, 1, 1, 1)
    with pytest.raises(ValueError, match="offset shape"):
        deform_conv2d_sampling(x, offset[:, :17], weight, bias, padding=1, mask=mask)
    with pytest.raises(ValueError, match="mask shape"):
        deform_conv2d_sampling(x, offset, weight, bias, padding=1, mask=mask[:, :8])
    with pytest.raises(ValueError, match="input channels"):
        deform_conv2d_sampling(x, offset, weight[:, :2], bias, padding=1, mask=mask)


def _random_dcn(impl: str, groups: int = 1, stride: int = 1) -> DCN:
    torch.manual_seed(0)
    dcn = DCN(4 * groups, 6, 3, stride=stride, padding=1, deformable_groups=groups, impl=impl)
    with torch.no_grad():
        dcn.conv_offset_mask.weight.normal_(0, 0.3)
        dcn.conv_offset_mask.bias.normal_(0, 1.5)
        dcn.bias.normal_()
    return dcn


@pytest.mark.parametrize("groups,stride", [(1, 1), (2, 2)])
def test_module_impls_agree_including_parameter_grads(groups, stride):
    tv, fast = _random_dcn("torchvision", groups, stride), _random_dcn("sampling", groups, stride)
    fast.load_state_dict(tv.state_dict())  # same keys, same parameters
    x = torch.randn(2, 4 * groups, 10, 12)
    out_tv, out_fast = tv(x), fast(x)
    assert (out_tv - out_fast).abs().max() < 1e-5
    grad_out = torch.randn_like(out_tv)
    out_tv.backward(grad_out)
    out_fast.backward(grad_out)
    for (name, p_tv), p_fast in zip(tv.named_parameters(), fast.parameters()):
        assert (p_tv.grad - p_fast.grad).abs().max() < 1e-4, name
    assert tv.conv_offset_mask.weight.grad.abs().max() > 0.1


@pytest.mark.parametrize("impl", ["sampling", "auto"])
def test_fresh_dcn_is_half_conv_plus_bias(impl):
    dcn = DCN(4, 5, 3, stride=1, padding=1, impl=impl)
    with torch.no_grad():
        dcn.bias.uniform_(-1, 1)
    x = torch.randn(2, 4, 9, 11)
    ref = 0.5 * nn.functional.conv2d(x, dcn.weight, padding=1) + dcn.bias[None, :, None, None]
    assert (dcn(x) - ref).abs().max() < 1e-5


def test_auto_resolution_and_keys():
    dcn = DCN(3, 4)
    assert dcn.impl == "auto"
    assert dcn.resolved_impl(torch.zeros(1, 3, 4, 4)) == "sampling"
    assert dcn.resolved_impl(torch.zeros(1, 3, 4, 4, dtype=torch.float64)) == "torchvision"
    assert dcn.resolved_impl(torch.zeros(1, 3, 4, 4, device="meta")) == "torchvision"  # any non-CPU device
    assert DCN(3, 4, impl="torchvision").resolved_impl(torch.zeros(1, 3, 4, 4)) == "torchvision"
    keys = ["weight", "bias", "conv_offset_mask.weight", "conv_offset_mask.bias"]
    assert all(list(DCN(3, 4, impl=i).state_dict()) == keys for i in ("auto", "torchvision", "sampling"))
    with pytest.raises(ValueError, match="impl"):
        DCN(3, 4, impl="cuda")
