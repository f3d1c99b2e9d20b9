"""Run a model written by ``centerpose.export`` with onnxruntime, through the PyTorch predictor's steps.

A raw-heads model stands in for the network (:class:`OnnxHeadsNet`), so pre-process, flip merge, decode and
inverse affine are exactly the :class:`~centerpose.inference.predictor.Predictor`'s. A decode graph (``decode=true``)
returns people in input-canvas pixels; :class:`OnnxDecodePredictor` maps them to image pixels with the
pre-process affine (:func:`people_to_image`).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from centerpose.codec.poses import Poses
from centerpose.codec.postprocess import to_image_coords
from centerpose.data.preprocess import preprocess
from centerpose.export import METADATA_KEY, sidecar_path
from centerpose.keypoints import KeypointSpec
from centerpose.inference.predictor import Predictor


def onnx_providers(device: str | torch.device = "cpu") -> list[str]:
    """CUDA first when ``device`` is a CUDA device and onnxruntime has the CUDA provider; CPU always."""
    import onnxruntime as ort

    providers = ["CPUExecutionProvider"]
    if torch.device(device).type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    return providers


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
    raise ValueError(f"'{path}' has no centerpose metadata (nor a sidecar '{sidecar.name}'): export it with "
                     "python -m centerpose.export")


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
            raise ValueError(f"{self.path.name} takes {spec['width']} x {spec['height']} inputs (a fixed-size "
                             f"export), got {image.shape[3]} x {image.shape[2]}; use keep_res=False or export "
                             "with dynamic=true")
        step = len(image) if spec["dynamic"] else spec["batch"]
        chunks = []
        for start in range(0, len(image), step):
            part = np.ascontiguousarray(image[start:start + step], dtype=np.float32)
            short = step - len(part)
            if short:  # a fixed batch: fill the last chunk with zeros, drop them after
                part = np.concatenate([part, np.zeros((short, *part.shape[1:]), np.float32)])
            outs = self.session.run(self.output_names, {"image": part})
            chunks.append([o[:len(o) - short] for o in outs])
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


def people_to_image(people: Tensor, c: Tensor, s: Tensor, canvas_hw: Sequence[int], down_ratio: int = 4,
                    scale: float = 1.0) -> tuple[Tensor, Tensor]:
    """A decode graph's people to the predictor's rows: the inverse pre-process affine.

    Args:
        people: (B, K, 5 + 3J) ``[box, score, (x, y, s) per joint]`` in input-canvas pixels.
        c: (B, 2) affine centres; s: (B,) or (B, 2) affine scales (the pre-process's).
        canvas_hw: (H, W) of the network input.
        down_ratio: input pixels per output cell.
        scale: test scale.

    Returns:
        ``rows`` (B, K, 5 + 2J) in image pixels and ``kp_scores`` (B, K, J), as ``decode_to_image``.
    """
    # A power of two: pixels / r gives decode's cell coordinates exactly.
    r = float(down_ratio)
    cells = Poses.from_people(people).map_xy(lambda v: v / r)
    rows = cells.rows()
    dets = torch.cat([rows, rows.new_zeros(*rows.shape[:-1], 1)], dim=-1)  # decode's layout: + class column
    output_size = (int(canvas_hw[0]) // down_ratio, int(canvas_hw[1]) // down_ratio)
    return to_image_coords(dets, c, s, output_size, scale=scale), cells.joint_scores


class OnnxDecodePredictor(Predictor):
    """:class:`Predictor` for a decode graph: pre-process, the graph, then :func:`people_to_image`."""

    def __init__(self, session: OnnxSession, keypoints: KeypointSpec, **kwargs: Any) -> None:
        super().__init__(nn.Identity(), keypoints=keypoints, **kwargs)
        self.session = session
        self.down_ratio = int(session.meta["down_ratio"])

    def _predict_scale(self, images: Sequence[np.ndarray], scale: float) -> list[np.ndarray]:
        t0 = time.perf_counter()
        inputs = [preprocess(image, scale, keep_res=self.keep_res, pad=self.pad, input_size=self.input_size)
                  for image in images]
        groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
        for i, inp in enumerate(inputs):
            groups[inp.image.shape].append(i)
        results: list[np.ndarray] = [np.empty(0)] * len(images)
        for members in groups.values():
            x = np.stack([inputs[i].image for i in members])
            cells = (x.shape[2] // self.down_ratio) * (x.shape[3] // self.down_ratio)
            if cells < self.K:
                raise ValueError(f"{self.session.path.name}: a {x.shape[3]} x {x.shape[2]} input has {cells} output "
                                 f"cells, fewer than the graph's K={self.K}")
            t1 = time.perf_counter()
            people = torch.from_numpy(self.session.run(x)[0])
            t2 = time.perf_counter()
            c = torch.from_numpy(np.stack([inputs[i].c for i in members]))
            s = torch.from_numpy(np.stack([np.asarray(inputs[i].s, dtype=np.float64).reshape(-1) for i in members]))
            rows, kp_scores = people_to_image(people, c, s, x.shape[2:], self.down_ratio, scale)
            out = Poses.from_rows(rows, kp_scores).rows(joint_scores=True).numpy()
            for j, i in enumerate(members):
                results[i] = out[j]
            t3 = time.perf_counter()
            for stage, dt in (("pre", t1 - t0), ("net", t2 - t1), ("dec", t3 - t2)):
                self.timer.add(stage, dt)
            t0 = time.perf_counter()
        return results


def keypoints_from_metadata(meta: dict[str, Any]) -> KeypointSpec:
    kp = meta["keypoints"]
    return KeypointSpec(names=tuple(kp["names"]), flip_pairs=tuple(map(tuple, kp["flip_pairs"])),
                        skeleton=tuple(map(tuple, kp["skeleton"])), sigmas=tuple(kp["sigmas"]),
                        category_name=kp["category_name"])


def predictor_from_onnx(path: str | Path, device: str | torch.device = "cpu", *, flip_test: bool | None = None,
                        keep_res: bool | None = None, K: int | None = None, **kwargs: Any) -> Predictor:
    """A predictor running ``path`` with onnxruntime (see :meth:`Predictor.from_onnx`)."""
    meta = read_metadata(path)
    spec = meta["input"]
    keypoints = keypoints_from_metadata(meta)
    if keep_res is None:
        keep_res = bool(spec["dynamic"])
    if keep_res and not spec["dynamic"]:
        raise ValueError(f"'{path}' was exported at a fixed {spec['width']} x {spec['height']} input: keep_res "
                         "needs an export with dynamic=true")
    if not spec["dynamic"]:
        if spec["height"] != spec["width"]:
            raise ValueError(f"'{path}': the letterbox pre-process needs a square input, the export is "
                             f"{spec['width']} x {spec['height']}")
        kwargs["input_size"] = spec["height"]
    kwargs.setdefault("pad", spec["pad"])
    session = OnnxSession(path, meta, onnx_providers(device))
    if meta["decode"]:
        if flip_test is not None and flip_test != meta["flip"]:
            raise ValueError(f"'{path}' was exported with flip={str(meta['flip']).lower()} inside the graph; "
                             f"pass flip_test={str(meta['flip']).lower()} or export again")
        if K is not None and K != meta["K"]:
            raise ValueError(f"'{path}' was exported with K={meta['K']} inside the graph, got K={K}")
        # exports written before snap/rescore were options decode the original's way
        inside = {"snap": meta.get("snap") or "nearest", "rescore": bool(meta.get("rescore"))}
        for name, value in inside.items():
            asked = kwargs.pop(name, None)
            if asked is not None and asked != value:
                raise ValueError(f"'{path}' was exported with {name}={str(value).lower()} inside the graph, got "
                                 f"{name}={str(asked).lower()}; export again with {name}={str(asked).lower()}")
        return OnnxDecodePredictor(session, keypoints, device="cpu", flip_test=meta["flip"], keep_res=keep_res,
                                   K=meta["K"], fix_flip_offset=meta["fix_flip_offset"], **inside, **kwargs)
    extra = {"K": K} if K is not None else {}
    return Predictor(OnnxHeadsNet(session), keypoints=keypoints, device=device,
                     flip_test=True if flip_test is None else flip_test, keep_res=keep_res, **extra, **kwargs)
