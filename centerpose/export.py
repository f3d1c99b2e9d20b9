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
from typing import Literal, Sequence

import hydra
import numpy as np
import torch
from omegaconf import DictConfig
from torch import nn

from centerpose.codec.options import DecodeOptions
from centerpose.config import config_dir, quote_argv
from centerpose.config_check import check_config_types
from centerpose.data.transforms import COCO_MEAN_BGR, COCO_STD_BGR
from centerpose.errors import RunError, error_boundary, task_errors
from centerpose.inference.export_graph import DecodeGraph, HeadsGraph
from centerpose.inference.export_metadata import METADATA_KEY, export_metadata, sidecar_path
from centerpose.keypoints import COCO_PERSON, KeypointSpec
from centerpose.models.dcn import dcn_impl
from centerpose.outputs import discard_on_error

__all__ = [
    "CHECK_RTOL",
    "ExportCheckError",
    "METADATA_KEY",
    "export",
    "export_onnx",
    "export_torchscript",
    "graph_module",
    "sidecar_path",
]

log = logging.getLogger("centerpose.export")

MIN_OPSET = 19  # ONNX DeformConv appeared in opset 19
FORMATS = ("onnx", "torchscript")
# heads: the raw head maps; people: the decode inside the graph
OUTPUTS = ("heads", "people")
#: The self-check's tolerance: per head, max |onnxruntime - PyTorch| / max |PyTorch| on a drawn scene.
CHECK_RTOL = 1e-3


class ExportCheckError(RunError):
    """onnxruntime does not reproduce PyTorch on the exported file (the self-check)."""


def graph_module(
    net: nn.Module, keypoints: KeypointSpec, decode: bool, options: DecodeOptions
) -> HeadsGraph | DecodeGraph:
    """The module to trace: the raw heads, or (``decode``) the heads and the codec's decode with ``options``."""
    net = net.eval()
    if decode:
        return DecodeGraph(net, keypoints, options, down_ratio=int(getattr(net, "down_ratio", 4))).eval()
    return HeadsGraph(net).eval()


def example_input(input_hw: tuple[int, int], batch: int) -> torch.Tensor:
    """(batch, 3, H, W) normalised drawn scenes (people on a textured background, as the synthetic data set
    draws them): an input with the statistics of a photo, so heads take the values they take in use.
    Noise would drive a net whose BN statistics come from photos to heads of several hundred."""
    from centerpose.data.synthetic_scene import render_image

    rng = np.random.default_rng(0)
    images = [render_image(rng, input_hw[1], input_hw[0], 3, i, COCO_PERSON)[0] for i in range(batch)]
    x = (np.stack(images).astype(np.float32) / 255.0 - COCO_MEAN_BGR) / COCO_STD_BGR
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def _check_geometry(input_hw: tuple[int, int], multiple: int, K: int, decode: bool, down_ratio: int) -> None:
    h, w = input_hw
    if h % multiple or w % multiple:
        raise ValueError(f"export: input size {w} x {h} must be a multiple of {multiple} for this network")
    if decode and (h // down_ratio) * (w // down_ratio) < K:
        raise ValueError(
            f"export: K={K} exceeds the {(h // down_ratio) * (w // down_ratio)} output cells of a "
            f"{w} x {h} input; lower K or raise input_size"
        )


def export_onnx(
    net: nn.Module,
    path: str | Path,
    *,
    keypoints: KeypointSpec = COCO_PERSON,
    decode: bool = False,
    options: DecodeOptions | None = None,
    dynamic: bool = False,
    input_hw: Sequence[int] = (512, 512),
    batch_size: int = 1,
    pad: int = 31,
    opset: int = 19,
    check: bool = True,
) -> Path:
    """Write ``net`` as an ONNX file (one file, weights inside) plus its ``<file>.json`` sidecar.

    Args:
        net: a CenterNet (``net(x)`` -> per-stack head dicts).
        path: output ``.onnx`` path.
        keypoints: the skeleton the heads were trained for (flip pairs, metadata).
        decode: people out (:class:`DecodeGraph`) instead of the raw heads (:class:`HeadsGraph`).
        options: with ``decode``, the decode inside the graph (flip test, K, snap, rescore, ...; default
            ``DecodeOptions()``); recorded in the metadata as ``decode_options``.
        dynamic: symbolic batch, height and width (multiples of ``pad + 1``); else fixed to
            ``batch_size`` × ``input_hw``.
        input_hw: (H, W) of the fixed input, or of the example input of a dynamic export.
        batch_size: fixed batch (ignored with ``dynamic``).
        pad: canvas multiple − 1 of the network (31; 127 for Hourglass).
        opset: ONNX opset, ≥ 19 (DeformConv).
        check: run onnxruntime on drawn scenes (:func:`example_input`) and compare with PyTorch (raw heads:
            max |diff| / max |PyTorch| per head at most :data:`CHECK_RTOL`; the figure is logged).

    Returns:
        The written path.
    """
    options = options if options is not None else DecodeOptions()
    if opset < MIN_OPSET:
        raise ValueError(f"export: opset {opset} < {MIN_OPSET}; ONNX DeformConv needs opset 19 or later")
    input_hw = (int(input_hw[0]), int(input_hw[1]))
    multiple = pad + 1
    down_ratio = int(getattr(net, "down_ratio", 4))
    K = int(options.K)
    _check_geometry(input_hw, multiple, K, decode, down_ratio)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = graph_module(net, keypoints, decode, options)
    # A dynamic export traces with batch 2: torch.export specialises dimensions of size 1.
    example = example_input(input_hw, 2 if dynamic else batch_size)
    dynamic_shapes = None
    if dynamic:
        # Sides are multiples of the canvas multiple; with decode, at least sqrt(K) output cells per side.
        min_units = max(1, math.ceil(down_ratio * math.sqrt(K) / multiple)) if decode else 1
        batch = torch.export.Dim("batch", min=1, max=4096)
        h_units = torch.export.Dim("height_units", min=min_units, max=16384 // multiple)
        w_units = torch.export.Dim("width_units", min=min_units, max=16384 // multiple)
        dynamic_shapes = {"image": {0: batch, 2: multiple * h_units, 3: multiple * w_units}}
    meta = _metadata(net, keypoints, "onnx", decode, options, dynamic, input_hw, batch_size, pad, opset)
    with dcn_impl(net, "torchvision"), torch.no_grad():
        program = torch.onnx.export(
            module,
            (example,),
            dynamo=True,
            opset_version=opset,
            input_names=["image"],
            output_names=list(module.output_names),
            dynamic_shapes=dynamic_shapes,
            verbose=False,
        )
        program.model.metadata_props[METADATA_KEY] = json.dumps(meta)
        program.save(str(path), external_data=False)
        sidecar_path(path).write_text(json.dumps(meta, indent=2))
        if check:
            check_onnx(module, path, example, decode)
    log.info(
        "wrote %s (%s, %s) and %s",
        path,
        "people" if decode else "raw heads",
        "dynamic batch and size" if dynamic else f"fixed {batch_size} x 3 x {input_hw[0]} x {input_hw[1]}",
        sidecar_path(path).name,
    )
    return path


def _metadata(
    net: nn.Module,
    keypoints: KeypointSpec,
    fmt: str,
    decode: bool,
    options: DecodeOptions,
    dynamic: bool,
    input_hw: tuple[int, int],
    batch_size: int,
    pad: int,
    opset: int | None,
) -> dict:
    return export_metadata(
        net,
        keypoints,
        fmt=fmt,
        decode=decode,
        options=options,
        dynamic=dynamic,
        input_hw=input_hw,
        batch_size=batch_size,
        pad=pad,
        opset=opset,
        mean=list(COCO_MEAN_BGR),
        std=list(COCO_STD_BGR),
    )


def check_onnx(module: nn.Module, path: Path, example: torch.Tensor, decode: bool) -> float:
    """onnxruntime vs PyTorch on ``example``: the largest per-output max |diff| / max |PyTorch|, logged.

    Raw heads beyond :data:`CHECK_RTOL` raise :class:`ExportCheckError`; decoded people are reported only (rows
    of near-equal scores may come in another order).
    """
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    got = session.run(None, {"image": example.numpy()})
    want = module(example)
    want = [want] if isinstance(want, torch.Tensor) else list(want)
    rel = {}
    for name, g, w in zip(names, got, want):
        w = w.numpy()
        rel[name] = float(np.abs(g - w).max()) / max(float(np.abs(w).max()), 1e-12)
    worst = max(rel, key=rel.get)
    log.info(
        "export check, onnxruntime vs PyTorch on %d drawn scene(s): max |diff| / max |PyTorch| = %.2g (%s)",
        len(example),
        rel[worst],
        ", ".join(f"{k} {v:.2g}" for k, v in rel.items()),
    )
    if not decode and rel[worst] > CHECK_RTOL:
        raise ExportCheckError(
            f"export check: onnxruntime's {worst} head differs from PyTorch by {rel[worst]:.3g} "
            f"of its largest value (> {CHECK_RTOL:g}) for {path}; export with check=false to keep it"
        )
    return rel[worst]


def export_torchscript(
    net: nn.Module,
    path: str | Path,
    *,
    keypoints: KeypointSpec = COCO_PERSON,
    decode: bool = False,
    options: DecodeOptions | None = None,
    input_hw: Sequence[int] = (512, 512),
    batch_size: int = 1,
    pad: int = 31,
) -> Path:
    """Write ``net`` as a traced TorchScript file (fixed input size) plus its ``<file>.json`` sidecar.

    The metadata is also inside the file (``torch.jit.load(path, _extra_files={"centerpose.json": ""})``).
    Loading needs ``import torchvision`` first when the net has deformable convs (``torchvision::deform_conv2d``).
    """
    options = options if options is not None else DecodeOptions()
    input_hw = (int(input_hw[0]), int(input_hw[1]))
    _check_geometry(input_hw, pad + 1, int(options.K), decode, int(getattr(net, "down_ratio", 4)))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = graph_module(net, keypoints, decode, options)
    meta = _metadata(net, keypoints, "torchscript", decode, options, False, input_hw, batch_size, pad, None)
    example = example_input(input_hw, batch_size)
    with dcn_impl(net, "torchvision"), torch.no_grad():
        traced = torch.jit.trace(module, (example,), check_trace=False)
    torch.jit.save(traced, str(path), _extra_files={"centerpose.json": json.dumps(meta)})
    sidecar_path(path).write_text(json.dumps(meta, indent=2))
    log.info("wrote %s (traced at %d x 3 x %d x %d) and %s", path, batch_size, *input_hw, sidecar_path(path).name)
    return path


def output_path(cfg: DictConfig) -> Path:
    """The file ``cfg`` exports to: ``output``, else ``model.onnx`` / ``model.pt`` in the run directory."""
    return (
        Path(cfg.output)
        if cfg.output
        else Path(cfg.paths.output_dir) / ("model.onnx" if cfg.format == "onnx" else "model.pt")
    )


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
    common = dict(
        keypoints=keypoints,
        decode=cfg.outputs == "people",
        options=options,
        input_hw=input_hw,
        batch_size=cfg.batch_size,
        pad=pad,
    )
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
