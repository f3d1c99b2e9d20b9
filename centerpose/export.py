"""Export a checkpoint to ONNX (deformable convs included) or TorchScript, for deployment.

    python -m centerpose.export model=last.ckpt                              # model.onnx: raw heads, 512 × 512
    python -m centerpose.export model=last.ckpt dynamic=true                 # any batch and size (keep_res)
    python -m centerpose.export model=last.ckpt outputs=people dynamic=true  # people out, flip test inside
    python -m centerpose.export model=last.ckpt format=torchscript           # model.pt (traced, fixed size)

ONNX uses the dynamo exporter (``torch.onnx.export(..., dynamo=True)``, opset ≥ 19), which maps
``torchvision.ops.deform_conv2d`` to the ONNX ``DeformConv`` op; every DCN runs that op while exporting
(:func:`centerpose.models.dcn.dcn_impl`). What a runtime needs (input geometry, normalisation, heads,
keypoints, output layout) is written to the ONNX metadata (key ``centerpose``) and to a sidecar
``<file>.json``; :meth:`centerpose.inference.predictor.Predictor.from_onnx` reads it.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any, Literal, Sequence

import hydra
import numpy as np
import torch
from omegaconf import DictConfig
from torch import nn

from centerpose.config import config_dir, quote_argv
from centerpose.config_check import check_config_types
from centerpose.data.transforms import COCO_MEAN_BGR, COCO_STD_BGR
from centerpose.errors import RunError, error_boundary, task_errors
from centerpose.inference.export_graph import DecodeGraph, HeadsGraph
from centerpose.keypoints import COCO_PERSON, KeypointSpec
from centerpose.models.dcn import dcn_impl
from centerpose.outputs import discard_on_error

log = logging.getLogger("centerpose.export")

METADATA_KEY = "centerpose"
MIN_OPSET = 19  # ONNX DeformConv appeared in opset 19
FORMATS = ("onnx", "torchscript")
# heads: the raw head maps; people: the decode inside the graph
OUTPUTS = ("heads", "people")


def sidecar_path(model_path: str | Path) -> Path:
    """``model.onnx`` -> ``model.onnx.json``."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.name + ".json")


def export_metadata(net: nn.Module, keypoints: KeypointSpec, *, fmt: str, decode: bool, flip: bool, K: int,
                    fix_flip_offset: bool, dynamic: bool, input_hw: tuple[int, int], batch_size: int,
                    pad: int, opset: int | None, snap: str = "nearest", rescore: bool = False) -> dict[str, Any]:
    """What a runtime needs to feed the exported model and read its outputs (JSON-serialisable)."""
    j = keypoints.num_joints
    down_ratio = int(getattr(net, "down_ratio", 4))
    if decode:
        outputs = {"people": {
            "shape": ["batch", K, 5 + 3 * j],
            "layout": "[x1 y1 x2 y2, score, x0 y0 s0, x1 y1 s1, ...] per person, sorted by descending score",
            "units": "input-canvas pixels (the network input); image pixels = the inverse of the pre-process "
                     "affine (cells = pixels / down_ratio, then centerpose.codec.to_image_coords)",
            "ties": "equal scores in ascending heatmap-cell order (ONNX TopK; decode tie_break='stable')"}}
    else:
        outputs = {name: {"shape": ["batch", ch, "height / down_ratio", "width / down_ratio"],
                          "activation": "logits (apply a sigmoid)" if name in ("hm", "hm_hp") else "none"}
                   for name, ch in net.heads_spec.items()}
    multiple = pad + 1
    return {
        "format": fmt,
        "opset": opset,
        "arch": getattr(net, "arch", ""),
        "decode": decode,
        "flip": flip if decode else False,
        "fix_flip_offset": fix_flip_offset if decode else False,
        "K": K if decode else None,
        "snap": snap if decode else None,
        "rescore": bool(rescore) if decode else None,
        "down_ratio": down_ratio,
        "input": {
            "name": "image",
            "layout": "NCHW",
            "dtype": "float32",
            "channel_order": "BGR",
            "normalisation": "(uint8 / 255 - mean) / std, per channel in BGR order",
            "mean": [float(v) for v in COCO_MEAN_BGR],
            "std": [float(v) for v in COCO_STD_BGR],
            "dynamic": dynamic,
            "batch": None if dynamic else batch_size,
            "height": None if dynamic else input_hw[0],
            "width": None if dynamic else input_hw[1],
            "multiple": multiple,
            "pad": pad,
            "pad_rule": (f"dynamic: keep_res, the image centred on a canvas of (side | {pad}) + 1 pixels per side "
                         f"(multiples of {multiple}); fixed: letterbox into {input_hw[1]} x {input_hw[0]} "
                         "(centerpose.data.preprocess)"),
        },
        "outputs": outputs,
        "heads": dict(net.heads_spec),
        "keypoints": {"names": list(keypoints.names), "flip_pairs": [list(p) for p in keypoints.flip_pairs],
                      "skeleton": [list(p) for p in keypoints.skeleton], "sigmas": list(keypoints.sigmas),
                      "category_name": keypoints.category_name},
    }


def graph_module(net: nn.Module, keypoints: KeypointSpec, decode: bool, flip: bool, K: int,
                 fix_flip_offset: bool, snap: str = "nearest", rescore: bool = False) -> HeadsGraph | DecodeGraph:
    net = net.eval()
    if decode:
        return DecodeGraph(net, keypoints, K=K, flip=flip, fix_flip_offset=fix_flip_offset,
                           down_ratio=int(getattr(net, "down_ratio", 4)), snap=snap, rescore=rescore).eval()
    return HeadsGraph(net).eval()


def _example_input(input_hw: tuple[int, int], batch: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.randn(batch, 3, *input_hw, generator=generator)


def _check_geometry(input_hw: tuple[int, int], multiple: int, K: int, decode: bool, down_ratio: int) -> None:
    h, w = input_hw
    if h % multiple or w % multiple:
        raise ValueError(f"export: input size {w} x {h} must be a multiple of {multiple} for this network")
    if decode and (h // down_ratio) * (w // down_ratio) < K:
        raise ValueError(f"export: K={K} exceeds the {(h // down_ratio) * (w // down_ratio)} output cells of a "
                         f"{w} x {h} input; lower K or raise input_size")


def export_onnx(net: nn.Module, path: str | Path, *, keypoints: KeypointSpec = COCO_PERSON, decode: bool = False,
                flip: bool = False, K: int = 100, fix_flip_offset: bool = False, dynamic: bool = False,
                input_hw: Sequence[int] = (512, 512), batch_size: int = 1, pad: int = 31, opset: int = 19,
                check: bool = True, snap: str = "nearest", rescore: bool = False) -> Path:
    """Write ``net`` as an ONNX file (one file, weights inside) plus its ``<file>.json`` sidecar.

    Args:
        net: a CenterNet (``net(x)`` -> per-stack head dicts).
        path: output ``.onnx`` path.
        keypoints: the skeleton the heads were trained for (flip pairs, metadata).
        decode: people out (:class:`DecodeGraph`) instead of the raw heads (:class:`HeadsGraph`).
        flip: with ``decode``, the flip test inside the graph.
        K: with ``decode``, people per image.
        fix_flip_offset: with ``flip``, the exact mirror of x offsets.
        dynamic: symbolic batch, height and width (multiples of ``pad + 1``); else fixed to
            ``batch_size`` × ``input_hw``.
        input_hw: (H, W) of the fixed input, or of the example input of a dynamic export.
        batch_size: fixed batch (ignored with ``dynamic``).
        pad: canvas multiple − 1 of the network (31; 127 for Hourglass).
        opset: ONNX opset, ≥ 19 (DeformConv).
        check: run onnxruntime on the example input and compare with PyTorch (raw heads: error beyond 1e-3).
        snap: with ``decode``, the joint snapping inside the graph (``nearest`` = the original, E9).
        rescore: with ``decode``, rank people by sqrt(centre × mean joint score) inside the graph (E15).

    Returns:
        The written path.
    """
    if opset < MIN_OPSET:
        raise ValueError(f"export: opset {opset} < {MIN_OPSET}; ONNX DeformConv needs opset 19 or later")
    input_hw = (int(input_hw[0]), int(input_hw[1]))
    multiple = pad + 1
    down_ratio = int(getattr(net, "down_ratio", 4))
    _check_geometry(input_hw, multiple, K, decode, down_ratio)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = graph_module(net, keypoints, decode, flip, K, fix_flip_offset, snap, rescore)
    # A dynamic export traces with batch 2: torch.export specialises dimensions of size 1.
    example = _example_input(input_hw, 2 if dynamic else batch_size)
    dynamic_shapes = None
    if dynamic:
        # Sides are multiples of the canvas multiple; with decode, at least sqrt(K) output cells per side.
        min_units = max(1, math.ceil(down_ratio * math.sqrt(K) / multiple)) if decode else 1
        batch = torch.export.Dim("batch", min=1, max=4096)
        h_units = torch.export.Dim("height_units", min=min_units, max=16384 // multiple)
        w_units = torch.export.Dim("width_units", min=min_units, max=16384 // multiple)
        dynamic_shapes = {"image": {0: batch, 2: multiple * h_units, 3: multiple * w_units}}
    meta = export_metadata(net, keypoints, fmt="onnx", decode=decode, flip=flip, K=K,
                           fix_flip_offset=fix_flip_offset, dynamic=dynamic, input_hw=input_hw,
                           batch_size=batch_size, pad=pad, opset=opset, snap=snap, rescore=rescore)
    with dcn_impl(net, "torchvision"), torch.no_grad():
        program = torch.onnx.export(module, (example,), dynamo=True, opset_version=opset, input_names=["image"],
                                    output_names=list(module.output_names), dynamic_shapes=dynamic_shapes,
                                    verbose=False)
        program.model.metadata_props[METADATA_KEY] = json.dumps(meta)
        program.save(str(path), external_data=False)
        sidecar_path(path).write_text(json.dumps(meta, indent=2))
        if check:
            _check_onnx(module, path, example, decode)
    log.info("wrote %s (%s, %s) and %s", path, "people" if decode else "raw heads",
             "dynamic batch and size" if dynamic else f"fixed {batch_size} x 3 x {input_hw[0]} x {input_hw[1]}",
             sidecar_path(path).name)
    return path


def _check_onnx(module: nn.Module, path: Path, example: torch.Tensor, decode: bool) -> None:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"image": example.numpy()})
    want = module(example)
    want = [want] if isinstance(want, torch.Tensor) else list(want)
    diff = max(float(np.abs(g - w.numpy()).max()) for g, w in zip(got, want))
    log.info("onnxruntime vs PyTorch on the example input: max abs diff %.3g", diff)
    if not decode and diff > 1e-3:  # decoded rows may differ in the order of near-equal scores
        raise RuntimeError(f"export check: onnxruntime heads differ from PyTorch by {diff:.3g} (> 1e-3) for {path}")


def export_torchscript(net: nn.Module, path: str | Path, *, keypoints: KeypointSpec = COCO_PERSON,
                       decode: bool = False, flip: bool = False, K: int = 100, fix_flip_offset: bool = False,
                       input_hw: Sequence[int] = (512, 512), batch_size: int = 1, pad: int = 31,
                       snap: str = "nearest", rescore: bool = False) -> Path:
    """Write ``net`` as a traced TorchScript file (fixed input size) plus its ``<file>.json`` sidecar.

    The metadata is also inside the file (``torch.jit.load(path, _extra_files={"centerpose.json": ""})``).
    Loading needs ``import torchvision`` first when the net has deformable convs (``torchvision::deform_conv2d``).
    """
    input_hw = (int(input_hw[0]), int(input_hw[1]))
    _check_geometry(input_hw, pad + 1, K, decode, int(getattr(net, "down_ratio", 4)))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = graph_module(net, keypoints, decode, flip, K, fix_flip_offset, snap, rescore)
    meta = export_metadata(net, keypoints, fmt="torchscript", decode=decode, flip=flip, K=K,
                           fix_flip_offset=fix_flip_offset, dynamic=False, input_hw=input_hw,
                           batch_size=batch_size, pad=pad, opset=None, snap=snap, rescore=rescore)
    example = _example_input(input_hw, batch_size)
    with dcn_impl(net, "torchvision"), torch.no_grad():
        traced = torch.jit.trace(module, (example,), check_trace=False)
    torch.jit.save(traced, str(path), _extra_files={"centerpose.json": json.dumps(meta)})
    sidecar_path(path).write_text(json.dumps(meta, indent=2))
    log.info("wrote %s (traced at %d x 3 x %d x %d) and %s", path, batch_size, *input_hw, sidecar_path(path).name)
    return path


def output_path(cfg: DictConfig) -> Path:
    """The file ``cfg`` exports to: ``output``, else ``model.onnx`` / ``model.pt`` in the run directory."""
    return Path(cfg.output) if cfg.output else Path(cfg.paths.output_dir) / ("model.onnx" if cfg.format == "onnx"
                                                                          else "model.pt")


def export(cfg: DictConfig) -> Path:
    """Export ``cfg.model`` / ``cfg.ckpt_path`` (a centerpose or converted original checkpoint) as ``cfg.format``;
    with ``outputs=people`` the graph decodes with the run's ``decode`` options."""
    from centerpose.config import decode_options, model_file
    from centerpose.inference.predictor import Predictor

    fmt: Literal["onnx", "torchscript"] = cfg.format
    if fmt not in FORMATS:
        raise RunError(f"export: format must be one of {FORMATS}, got {fmt!r}")
    if cfg.outputs not in OUTPUTS:
        raise RunError(f"export: outputs must be one of {OUTPUTS}, got {cfg.outputs!r}")
    options = decode_options(cfg)  # the run's decode options, built once
    loaded = Predictor.from_checkpoint(model_file(cfg), device="cpu")
    net, keypoints = loaded.net, loaded.keypoints
    pad = int(cfg.pad) if cfg.pad is not None else loaded.pad
    size = cfg.input_size if cfg.input_size is not None else loaded.input_size
    input_hw = (int(size), int(size)) if isinstance(size, (int, float)) else (int(size[0]), int(size[1]))
    out = output_path(cfg)
    common = dict(keypoints=keypoints, decode=cfg.outputs == "people", flip=options.flip_test, K=options.K,
                  fix_flip_offset=options.fix_flip_offset, input_hw=input_hw, batch_size=cfg.batch_size, pad=pad,
                  snap=options.snap, rescore=options.rescore)
    if fmt == "onnx":
        return export_onnx(net, out, dynamic=cfg.dynamic, opset=cfg.opset, check=cfg.check, **common)
    if cfg.dynamic:
        raise RunError("export: format=torchscript is traced at one input size; dynamic=true needs format=onnx")
    return export_torchscript(net, out, **common)


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="export")
def main(cfg: DictConfig) -> None:
    with task_errors("centerpose.export"), discard_on_error(output_path(cfg), sidecar_path(output_path(cfg))):
        check_config_types(cfg)  # a mistyped value of a _target_ node (the decode options) stops here
        export(cfg)


if __name__ == "__main__":
    with error_boundary("centerpose.export"):
        quote_argv()
        main()
