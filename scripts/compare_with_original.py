"""Check that our networks reproduce the original CenterNet's outputs for the same weights and input.

The original network modules are imported at run time from a user's checkout of xingyizhou/CenterNet
(nothing of it is copied here). Its compiled DCNv2 extension is replaced by
:class:`centerpose.models.dcn.DCN`, which has the same parameter layout and offset/mask split, so this
script checks the architecture and the checkpoint conversion (the DCN op itself is
``torchvision.ops.deform_conv2d`` on both sides). For each architecture it

1. builds the original network with the original factory (``get_pose_net``), with the ImageNet
   downloads patched out;
2. gives it random weights: every conv weight He-normal, random biases and BN affine parameters,
   DCN offset/mask convs large enough for offsets of about a pixel, BN running statistics measured
   on a random batch and then jittered (so activations stay O(1) through 100+ layers instead of
   vanishing or exploding) -- or, with ``--ckpt``, the weights of a real original checkpoint;
3. converts its ``state_dict()`` with :func:`centerpose.convert.convert_original_state_dict` and
   loads it strictly into :func:`centerpose.models.build_model`;
4. runs both in eval mode on the same random ``1x3xSxS`` input and prints, per stack and head, the
   max |difference| and PASS/FAIL against ``--tol``.

The exit status is 1 if any head fails (or a shape/key differs), 0 otherwise.

Usage:
    python scripts/compare_with_original.py --original-src ~/CenterNet --arch all --size 512
    python scripts/compare_with_original.py --original-src ~/CenterNet --arch dla_34 \\
        --ckpt ~/models/multi_pose_dla_3x.pth
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import sys
import time
import types
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import torch
from torch import nn

from centerpose.convert import convert_original_state_dict, read_original
from centerpose.models import build_model, pose_heads
from centerpose.models.dcn import DCN

# A private package name, so the original's modules cannot clash with anything installed.
PKG = "_centernet_original_networks"
NETWORKS_SUBDIR = Path("src/lib/models/networks")

# arch -> (original module, factory name, num_layers, head_conv) as the original's opts/model.py choose
# them (head_conv 256 for dla, 64 otherwise; the Hourglass factory ignores both numbers).
ORIGINAL_FACTORIES: dict[str, tuple[str, str, int, int]] = {
    "dla_34": ("pose_dla_dcn", "get_pose_net", 34, 256),
    "res_50": ("msra_resnet", "get_pose_net", 50, 64),
    "resdcn_50": ("resnet_dcn", "get_pose_net", 50, 64),
    "hourglass": ("large_hourglass", "get_large_hourglass_net", 0, 64),
}
IMAGENET_CLASSES = 1000  # the DLA ImageNet checkpoint's fc width, kept in original checkpoints as base.fc


def networks_dir(original_src: Path) -> Path:
    """The ``networks`` folder of a checkout (or the folder itself if given directly)."""
    for cand in (original_src / NETWORKS_SUBDIR, original_src):
        if (cand / "pose_dla_dcn.py").is_file():
            return cand
    raise FileNotFoundError(
        f"{original_src}: no {NETWORKS_SUBDIR}/pose_dla_dcn.py; pass the root of a "
        "xingyizhou/CenterNet checkout (or its networks folder)"
    )


def _no_download(*args, **kwargs):
    raise RuntimeError(f"the original network tried to download weights ({args[:1]}); refusing")


def import_original(net_dir: Path, module: str) -> types.ModuleType:
    """Import one original network module with a stand-in ``DCNv2`` package (no compiled extension).

    ``pose_dla_dcn`` and ``resnet_dcn`` do ``from .DCNv2.dcn_v2 import DCN``; registering
    ``<PKG>.DCNv2.dcn_v2`` in ``sys.modules`` first makes that resolve to our DCN.
    """
    if PKG not in sys.modules:
        pkg = types.ModuleType(PKG)
        pkg.__path__ = [str(net_dir)]
        dcn_pkg = types.ModuleType(f"{PKG}.DCNv2")
        dcn_pkg.__path__ = []  # nothing on disk is imported from the uncompiled DCNv2 folder
        dcn_mod = types.ModuleType(f"{PKG}.DCNv2.dcn_v2")
        dcn_mod.DCN = DCN
        dcn_pkg.dcn_v2 = dcn_mod
        pkg.DCNv2 = dcn_pkg
        sys.modules.update({PKG: pkg, dcn_pkg.__name__: dcn_pkg, dcn_mod.__name__: dcn_mod})
    elif sys.modules[PKG].__path__ != [str(net_dir)]:
        raise RuntimeError(f"original networks already imported from {sys.modules[PKG].__path__}")
    return importlib.import_module(f"{PKG}.{module}")


def _skip_imagenet_dla(self: nn.Module, *args, **kwargs) -> None:
    """Stand-in for ``DLA.load_pretrained_model``: create the 1000-way ``fc`` it makes, load nothing."""
    self.fc = nn.Conv2d(self.channels[-1], IMAGENET_CLASSES, kernel_size=1, stride=1, padding=0, bias=True)


@contextlib.contextmanager
def offline(mod: types.ModuleType) -> Iterator[None]:
    """Patch the ImageNet loads of an original module out for the duration of a build.

    The ResNets' ``model_zoo.load_url`` returns an empty dict (they load it with ``strict=False``);
    DLA's ``load_pretrained_model`` only builds its ``fc``. Any other hub download raises.
    """
    saved: list[tuple[object, str, object]] = []

    def patch(obj: object, name: str, value: object) -> None:
        saved.append((obj, name, getattr(obj, name)))
        setattr(obj, name, value)

    patch(torch.utils.model_zoo, "load_url", _no_download)
    patch(torch.hub, "load_state_dict_from_url", _no_download)
    if hasattr(mod, "model_zoo"):
        patch(mod, "model_zoo", types.SimpleNamespace(load_url=lambda *a, **k: {}))
    if hasattr(mod, "DLA"):
        patch(mod.DLA, "load_pretrained_model", _skip_imagenet_dla)
    try:
        yield
    finally:
        for obj, name, value in reversed(saved):
            setattr(obj, name, value)


def build_original(net_dir: Path, arch: str, heads: Mapping[str, int], head_conv: int) -> nn.Module:
    """The original network of ``arch`` from its own factory, without downloads (its prints silenced)."""
    module, factory, num_layers, _ = ORIGINAL_FACTORIES[arch]
    mod = import_original(net_dir, module)
    with offline(mod), contextlib.redirect_stdout(io.StringIO()):  # it prints "loading pretrained model"
        return getattr(mod, factory)(num_layers, dict(heads), head_conv=head_conv)


def _bn_layers(net: nn.Module) -> list[nn.BatchNorm2d]:
    return [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]


@torch.no_grad()
def randomize(net: nn.Module, calib: torch.Tensor, gen: torch.Generator) -> None:
    """Random weights that keep every path of ``net`` live and its activations O(1).

    Args:
        net: the original network (modified in place).
        calib: (B, 3, H, W) random batch on which the BN running statistics are measured.
        gen: random generator (seeded by the caller).
    """

    def randn(t: torch.Tensor, std: float, mean: float = 0.0) -> None:
        t.copy_(torch.randn(t.shape, generator=gen) * std + mean)

    handled = (nn.Conv2d, nn.ConvTranspose2d, DCN, nn.BatchNorm2d)
    for name, m in net.named_modules():
        if not isinstance(m, handled) and any(True for _ in m.parameters(recurse=False)):
            raise TypeError(f"randomize: no rule for the parameters of {name} ({type(m).__name__})")
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, DCN)):
            fan_in = m.weight[0].numel()
            # Offset/mask convs: offsets of about a pixel (fractional, so bilinear sampling matters)
            # and masks spread around 0.5; other convs He-normal.
            is_offset = name.endswith("conv_offset_mask")
            randn(m.weight, (1.0 if is_offset else 2.0) ** 0.5 / fan_in**0.5)
            if m.bias is not None:
                randn(m.bias, 0.5 if is_offset else 0.1)
        elif isinstance(m, nn.BatchNorm2d):
            m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
            randn(m.bias, 0.1)
    # Running statistics: measured on ``calib`` (cumulative average, one batch), then jittered so they
    # are not exactly the batch's.
    bns = _bn_layers(net)
    saved_momentum = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
    net.train()
    net(calib)
    net.eval()
    for bn, momentum in zip(bns, saved_momentum):
        bn.momentum = momentum
        # Hourglass's innermost levels are 1-4 pixels wide, so a few channels get a near-zero batch
        # variance and would blow activations up by orders of magnitude: floor it per layer.
        bn.running_var.clamp_(min=0.25 * bn.running_var.median().item())
        bn.running_mean.add_(torch.randn(bn.running_mean.shape, generator=gen) * 0.1 * bn.running_var.sqrt())
        bn.running_var.mul_(torch.rand(bn.running_var.shape, generator=gen) * 0.5 + 0.75)


def read_original_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """The state dict of an original ``{'epoch', 'state_dict'}`` file, ``module.`` stripped as it does."""
    sd, _ = read_original(path)
    return {k[len("module.") :] if k.startswith("module.") else k: v for k, v in sd.items()}


def heads_of_checkpoint(sd: Mapping[str, torch.Tensor], arch: str) -> tuple[dict[str, int], int]:
    """``({head: channels}, head_conv)`` of an original state dict, heads in key order.

    A head's channels are the rows of its last conv weight; head_conv the rows of its first (ignored by
    Hourglass, whose head width is fixed).
    """
    ours = convert_original_state_dict(sd, arch)
    weights: dict[str, list[torch.Tensor]] = {}
    for key, value in ours.items():
        if key.startswith("heads.") and key.endswith(".weight") and value.dim() == 4:
            weights.setdefault(key.split(".")[1], []).append(value)
    if not weights:
        raise ValueError(f"no head tensors found for arch {arch}; is this a {arch} checkpoint?")
    heads = {name: ws[-1].shape[0] for name, ws in weights.items()}
    return heads, next(iter(weights.values()))[0].shape[0]


def compare_outputs(
    ours: list[dict[str, torch.Tensor]],
    theirs: list[dict[str, torch.Tensor]],
    tol: float,
    report: Callable[[str], None],
) -> bool:
    """Print one line per stack and head; True if all heads match within ``tol``."""
    ok = len(ours) == len(theirs)
    if not ok:
        report(f"  FAIL: {len(theirs)} stacks in the original, {len(ours)} in ours")
    for s, (a, b) in enumerate(zip(theirs, ours)):
        if list(a) != list(b):
            report(f"  note: head order differs in stack {s}: original {list(a)}, ours {list(b)}")
        if set(a) != set(b):
            report(f"  FAIL: heads differ in stack {s}: original {sorted(a)}, ours {sorted(b)}")
            ok = False
        for head in a:
            if head not in b:
                continue
            if a[head].shape != b[head].shape:
                report(f"  stack {s} {head:10s} FAIL shape {tuple(a[head].shape)} vs {tuple(b[head].shape)}")
                ok = False
                continue
            diff = (a[head] - b[head]).abs().max().item()
            scale = a[head].abs().max().item()
            passed = diff <= tol
            ok &= passed
            report(
                f"  stack {s} {head:10s} {tuple(a[head].shape)!s:22s} max|diff| {diff:.3e}  "
                f"max|out| {scale:.3e}  rms(out) {a[head].pow(2).mean().sqrt().item():.3e}  "
                f"{'PASS' if passed else 'FAIL'}"
            )
    return ok


def check_arch(net_dir: Path, arch: str, size: int, seed: int, tol: float, ckpt: Path | None) -> bool:
    """Build, convert and compare one architecture; prints its report, returns whether it passed."""
    t0 = time.perf_counter()
    torch.manual_seed(seed)  # the original's own init, before ours overwrite it
    gen = torch.Generator().manual_seed(seed)
    if ckpt is not None:
        sd = read_original_checkpoint(ckpt)
        heads, head_conv = heads_of_checkpoint(sd, arch)
        original = build_original(net_dir, arch, heads, head_conv)
        original.load_state_dict(sd, strict=True)
        source = f"weights {ckpt}"
    else:
        heads, head_conv = pose_heads(), ORIGINAL_FACTORIES[arch][3]
        original = build_original(net_dir, arch, heads, head_conv)
        # Full size: Hourglass's innermost maps are only size/128 pixels wide, so smaller images
        # leave too few samples per channel for a usable variance.
        calib = torch.randn(2, 3, size, size, generator=gen)
        randomize(original, calib, gen)
        source = f"random weights (seed {seed})"
    original.eval()
    ours = build_model(arch, heads=heads, head_conv=head_conv).eval()
    ours.load_state_dict(convert_original_state_dict(original.state_dict(), arch), strict=True)

    x = torch.randn(1, 3, size, size, generator=gen)
    with torch.no_grad():
        out_theirs = original(x)
        out_ours = ours(x)
    print(f"{arch}: {source}, input 1x3x{size}x{size}, heads {heads}, head_conv {head_conv}")
    ok = compare_outputs(out_ours, out_theirs, tol, print)
    print(f"{arch}: {'PASS' if ok else 'FAIL'} (tol {tol:g}, {time.perf_counter() - t0:.1f} s)\n")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--original-src",
        type=Path,
        required=True,
        help="root of a xingyizhou/CenterNet checkout (src/lib/models/networks inside it)",
    )
    parser.add_argument("--arch", choices=[*ORIGINAL_FACTORIES, "all"], default="all")
    parser.add_argument("--size", type=int, default=512, help="input side (multiple of 128 for hourglass)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tol", type=float, default=1e-4, help="max abs difference allowed per head")
    parser.add_argument(
        "--ckpt", type=Path, default=None, help="an original checkpoint to use instead of random weights (one --arch)"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)

    if args.ckpt is not None and args.arch == "all":
        parser.error("--ckpt needs one --arch (the checkpoint's)")
    if args.ckpt is not None and not args.ckpt.is_file():
        parser.error(f"--ckpt: no such file: {args.ckpt}")
    archs = list(ORIGINAL_FACTORIES) if args.arch == "all" else [args.arch]
    multiple = 128 if "hourglass" in archs else 32
    if args.size % multiple:
        parser.error(f"--size {args.size} must be a multiple of {multiple} for {', '.join(archs)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        net_dir = networks_dir(args.original_src.expanduser())
    except FileNotFoundError as err:
        parser.error(str(err))

    results = {arch: check_arch(net_dir, arch, args.size, args.seed, args.tol, args.ckpt) for arch in archs}
    print("summary: " + ", ".join(f"{a} {'PASS' if ok else 'FAIL'}" for a, ok in results.items()))
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
