"""Run a model written by ``centerpose.export`` with onnxruntime, through the PyTorch predictor's steps.

A raw-heads model stands in for the network (:class:`OnnxHeadsNet`), so pre-process, flip merge, decode and
inverse affine are exactly the :class:`~centerpose.inference.predictor.Predictor`'s. A decode graph (``decode=true``)
runs the codec's decode inside and returns people in input-canvas pixels; :class:`OnnxDecodePredictor` runs it in
the predictor's loop and maps them to image pixels with the pre-process affine (:func:`people_to_image`). The
decode options it was exported with are checked against those asked for by
:meth:`~centerpose.codec.DecodeOptions.check_matches`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from centerpose.codec.options import DecodeOptions
from centerpose.codec.poses import Poses
from centerpose.codec.postprocess import to_image_coords
from centerpose.inference.export_metadata import keypoints_from_metadata, read_metadata, recorded_decode_options
from centerpose.inference.predictor import Predictor
from centerpose.keypoints import KeypointSpec

__all__ = [
    "OnnxDecodePredictor",
    "OnnxHeadsNet",
    "OnnxSession",
    "onnx_providers",
    "people_to_image",
    "predictor_from_onnx",
    "read_metadata",
]


def onnx_providers(device: str | torch.device = "cpu") -> list[str]:
    """CUDA first when ``device`` is a CUDA device and onnxruntime has the CUDA provider; CPU always."""
    import onnxruntime as ort

    providers = ["CPUExecutionProvider"]
    if torch.device(device).type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    return providers


class OnnxSession:
    """An onnxruntime session of an exported model; a fixed-batch model is run in chunks of its batch.

    Args:
        path: the ``.onnx`` file.
        meta: its export metadata (:func:`read_metadata`).
        providers: onnxruntime execution providers.
    """

    def __init__(self, path: str | Path, meta: dict[str, Any], providers: Sequence[str]) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        self.meta = meta
        self.session = ort.InferenceSession(str(path), providers=list(providers))
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, image: np.ndarray) -> list[np.ndarray]:
        """image (N, 3, H, W) float32 -> the model's outputs, batch N."""
        spec = self.meta["input"]
        if not spec["dynamic"] and tuple(image.shape[2:]) != (spec["height"], spec["width"]):
            raise ValueError(
                f"{self.path.name} takes {spec['width']} x {spec['height']} inputs (a fixed-size "
                f"export), got {image.shape[3]} x {image.shape[2]}; use keep_res=False or export "
                "with dynamic=true"
            )
        step = len(image) if spec["dynamic"] else spec["batch"]
        chunks = []
        for start in range(0, len(image), step):
            part = np.ascontiguousarray(image[start : start + step], dtype=np.float32)
            short = step - len(part)
            if short:  # a fixed batch: fill the last chunk with zeros, drop them after
                part = np.concatenate([part, np.zeros((short, *part.shape[1:]), np.float32)])
            outs = self.session.run(self.output_names, {"image": part})
            chunks.append([o[: len(o) - short] for o in outs])
        return [np.concatenate(parts) for parts in zip(*chunks)]


class OnnxHeadsNet(nn.Module):
    """A raw-heads ONNX model behind the network interface: ``net(x)`` -> ``[{head: (N, C, h, w)}]``."""

    def __init__(self, session: OnnxSession) -> None:
        super().__init__()
        self.session = session
        self.heads_spec = dict(session.meta["heads"])
        self.down_ratio = int(session.meta["down_ratio"])

    def forward(self, x: Tensor) -> list[dict[str, Tensor]]:
        outs = self.session.run(x.detach().cpu().numpy())
        return [{name: torch.from_numpy(o).to(x.device) for name, o in zip(self.session.output_names, outs)}]


def people_to_image(
    people: Tensor, c: Tensor, s: Tensor, canvas_hw: Sequence[int], down_ratio: int = 4, scale: float = 1.0
) -> tuple[Tensor, Tensor]:
    """A decode graph's people to the predictor's rows: the inverse pre-process affine.

    Args:
        people: (B, K, 5 + 3J) ``[box, score, (x, y, s) per joint]`` in input-canvas pixels.
        c: (B, 2) affine centres; s: (B,) or (B, 2) affine scales (the pre-process's).
        canvas_hw: (H, W) of the network input.
        down_ratio: input pixels per output cell.
        scale: test scale.

    Returns:
        ``rows`` (B, K, 5 + 2J) in image pixels and ``kp_scores`` (B, K, J), as :meth:`CenterPoseCodec.decode`
        gives them (``Poses.rows()`` and ``Poses.joint_scores``).
    """
    # A power of two: pixels / r gives decode's cell coordinates exactly.
    r = float(down_ratio)
    cells = Poses.from_people(people).map_xy(lambda v: v / r)
    rows = cells.rows()
    dets = torch.cat([rows, rows.new_zeros(*rows.shape[:-1], 1)], dim=-1)  # decode's layout: + class column
    output_size = (int(canvas_hw[0]) // down_ratio, int(canvas_hw[1]) // down_ratio)
    return to_image_coords(dets, c, s, output_size, scale=scale), cells.joint_scores


class OnnxDecodePredictor(Predictor):
    """:class:`Predictor` for a decode graph: the predictor's loop, the graph in place of network + decode, then
    :func:`people_to_image`."""

    def __init__(self, session: OnnxSession, keypoints: KeypointSpec, **kwargs: Any) -> None:
        super().__init__(nn.Identity(), keypoints=keypoints, **kwargs)
        self.session = session
        self.down_ratio = int(session.meta["down_ratio"])

    def _people(self, x: Tensor, meta: dict[str, Tensor], scale: float) -> Poses:
        cells = (x.shape[2] // self.down_ratio) * (x.shape[3] // self.down_ratio)
        if cells < self.K:
            raise ValueError(
                f"{self.session.path.name}: a {x.shape[3]} x {x.shape[2]} input has {cells} output "
                f"cells, fewer than the graph's K={self.K}"
            )
        t1 = time.perf_counter()
        people = torch.from_numpy(self.session.run(x.cpu().numpy())[0])
        t2 = time.perf_counter()
        rows, kp_scores = people_to_image(people, meta["c"], meta["s"], x.shape[2:], self.down_ratio, scale)
        self.timer.add("net", t2 - t1)
        self.timer.add("dec", time.perf_counter() - t2)
        return Poses.from_rows(rows, kp_scores)


def predictor_from_onnx(
    path: str | Path,
    device: str | torch.device = "cpu",
    *,
    keep_res: bool | None = None,
    decode: DecodeOptions | None = None,
    **kwargs: Any,
) -> Predictor:
    """A predictor running ``path`` with onnxruntime (see :meth:`Predictor.from_onnx`).

    Decode options (``decode=`` and/or single fields such as ``flip_test=``, ``K=``, ``snap=``; None = not
    asked) configure the Python decode of a raw-heads file. A decode graph keeps the options it was exported
    with: those asked for must match them (:class:`~centerpose.codec.DecodeOptionsMismatch` otherwise).
    """
    meta = read_metadata(path)
    spec = meta["input"]
    keypoints = keypoints_from_metadata(meta)
    names = DecodeOptions.field_names()
    asked = {k: kwargs.pop(k) for k in names if k in kwargs}
    asked = {k: v for k, v in asked.items() if v is not None}
    if keep_res is None:
        keep_res = bool(spec["dynamic"])
    if keep_res and not spec["dynamic"]:
        raise ValueError(
            f"'{path}' was exported at a fixed {spec['width']} x {spec['height']} input: keep_res "
            "needs an export with dynamic=true"
        )
    if not spec["dynamic"]:
        if spec["height"] != spec["width"]:
            raise ValueError(
                f"'{path}': the letterbox pre-process needs a square input, the export is "
                f"{spec['width']} x {spec['height']}"
            )
        kwargs["input_size"] = spec["height"]
    kwargs.setdefault("pad", spec["pad"])
    recorded = recorded_decode_options(meta)
    if recorded is not None:
        inside = DecodeOptions.from_record(recorded)
        wanted = (decode or inside).replace(**asked)
        # decode= compares every option, single fields only themselves
        wanted.check_matches(recorded, str(path), names=None if decode is not None else list(asked))
        session = OnnxSession(path, meta, onnx_providers(device))
        return OnnxDecodePredictor(session, keypoints, device="cpu", keep_res=keep_res, decode=inside, **kwargs)
    options = (decode or DecodeOptions(flip_test=True)).replace(**asked)
    session = OnnxSession(path, meta, onnx_providers(device))
    return Predictor(
        OnnxHeadsNet(session), keypoints=keypoints, device=device, keep_res=keep_res, decode=options, **kwargs
    )
