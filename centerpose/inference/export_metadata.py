"""What an exported file says about itself: the JSON metadata ``centerpose.export`` writes (inside the ONNX
file under :data:`METADATA_KEY`, and in a ``<file>.json`` sidecar) and the runtimes read.

Written by the exporter, read by :mod:`centerpose.inference.onnx_runtime`; neither imports the other (nor any
entry point). A decode graph records its :class:`~centerpose.codec.options.DecodeOptions` as
``decode_options`` (``dataclasses.asdict``); :func:`recorded_decode_options` also reads files written before.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import nn

from centerpose.codec.options import DecodeOptions
from centerpose.keypoints import KeypointSpec

__all__ = [
    "METADATA_KEY",
    "export_metadata",
    "keypoints_from_metadata",
    "read_metadata",
    "recorded_decode_options",
    "sidecar_path",
]

METADATA_KEY = "centerpose"
_MEAN_STD_NOTE = "(uint8 / 255 - mean) / std, per channel in BGR order"


def sidecar_path(model_path: str | Path) -> Path:
    """``model.onnx`` -> ``model.onnx.json``."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.name + ".json")


def export_metadata(
    net: nn.Module,
    keypoints: KeypointSpec,
    *,
    fmt: str,
    decode: bool,
    options: DecodeOptions,
    dynamic: bool,
    input_hw: tuple[int, int],
    batch_size: int,
    pad: int,
    opset: int | None,
    mean: list[float],
    std: list[float],
) -> dict[str, Any]:
    """What a runtime needs to feed the exported model and read its outputs (JSON-serialisable).

    ``decode_options`` holds ``options.record()`` for a decode graph (people out), null for raw heads.
    """
    j = keypoints.num_joints
    down_ratio = int(getattr(net, "down_ratio", 4))
    if decode:
        outputs = {
            "people": {
                "shape": ["batch", int(options.K), 5 + 3 * j],
                "layout": "[x1 y1 x2 y2, score, x0 y0 s0, x1 y1 s1, ...] per person, sorted by descending score",
                "units": "input-canvas pixels (the network input); image pixels = the inverse of the pre-process "
                "affine (cells = pixels / down_ratio, then centerpose.codec.to_image_coords)",
                "ties": "equal scores in ascending heatmap-cell order (ONNX TopK; decode tie_break='stable')",
            }
        }
    else:
        outputs = {
            name: {
                "shape": ["batch", ch, "height / down_ratio", "width / down_ratio"],
                "activation": "logits (apply a sigmoid)" if name in ("hm", "hm_hp") else "none",
            }
            for name, ch in net.heads_spec.items()
        }
    multiple = pad + 1
    return {
        "format": fmt,
        "opset": opset,
        "arch": getattr(net, "arch", ""),
        "decode": decode,
        "decode_options": options.record() if decode else None,
        "down_ratio": down_ratio,
        "input": {
            "name": "image",
            "layout": "NCHW",
            "dtype": "float32",
            "channel_order": "BGR",
            "normalisation": _MEAN_STD_NOTE,
            "mean": [float(v) for v in mean],
            "std": [float(v) for v in std],
            "dynamic": dynamic,
            "batch": None if dynamic else batch_size,
            "height": None if dynamic else input_hw[0],
            "width": None if dynamic else input_hw[1],
            "multiple": multiple,
            "pad": pad,
            "pad_rule": (
                f"dynamic: keep_res, the image centred on a canvas of (side | {pad}) + 1 pixels per side "
                f"(multiples of {multiple}); fixed: letterbox into {input_hw[1]} x {input_hw[0]} "
                "(centerpose.data.preprocess)"
            ),
        },
        "outputs": outputs,
        "heads": dict(net.heads_spec),
        "keypoints": {
            "names": list(keypoints.names),
            "flip_pairs": [list(p) for p in keypoints.flip_pairs],
            "skeleton": [list(p) for p in keypoints.skeleton],
            "sigmas": list(keypoints.sigmas),
            "category_name": keypoints.category_name,
        },
    }


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The export metadata of an ONNX file: its ``centerpose`` metadata entry, else the ``.json`` sidecar."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ONNX model not found: '{path}'")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as err:  # onnx raises DecodeError & co. for non-ONNX bytes
        raise ValueError(f"'{path}' is not a readable ONNX model: {err}") from err
    props = {p.key: p.value for p in model.metadata_props}
    if METADATA_KEY in props:
        return json.loads(props[METADATA_KEY])
    sidecar = sidecar_path(path)
    if sidecar.is_file():
        return json.loads(sidecar.read_text())
    raise ValueError(
        f"'{path}' has no centerpose metadata (nor a sidecar '{sidecar.name}'): export it with "
        "python -m centerpose.export"
    )


def recorded_decode_options(meta: dict[str, Any]) -> dict[str, Any] | None:
    """The decode options a decode graph was exported with (a :meth:`DecodeOptions.record`), None for raw
    heads. Files written before ``decode_options`` existed kept flip, K, fix_flip_offset, snap and rescore at
    the top level; their other options were the defaults."""
    if not meta.get("decode"):
        return None
    if meta.get("decode_options") is not None:
        return dict(meta["decode_options"])
    return {
        "flip_test": bool(meta["flip"]),
        "K": int(meta["K"]),
        "fix_flip_offset": bool(meta["fix_flip_offset"]),
        "snap": meta.get("snap") or "nearest",
        "rescore": bool(meta.get("rescore")),
    }


def keypoints_from_metadata(meta: dict[str, Any]) -> KeypointSpec:
    kp = meta["keypoints"]
    return KeypointSpec(
        names=tuple(kp["names"]),
        flip_pairs=tuple(map(tuple, kp["flip_pairs"])),
        skeleton=tuple(map(tuple, kp["skeleton"])),
        sigmas=tuple(kp["sigmas"]),
        category_name=kp["category_name"],
    )
