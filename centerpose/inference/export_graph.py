"""The modules that get exported: raw heads, or heads + decoding (people out) in one graph.

Both wrap a :class:`~centerpose.models.CenterNet` and take the normalised network input
``image`` (B, 3, H, W) float32 (BGR, ``(uint8 / 255 - mean) / std``, H and W multiples of 32; 128 for
Hourglass). Decoding reuses :mod:`centerpose.codec` as is, so the graph computes what
:func:`~centerpose.codec.pipeline.decode_to_image` computes, up to the inverse affine to image pixels.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from centerpose.codec.decode import SNAP_MODES, SnapMode, decode, sigmoid_outputs
from centerpose.codec.flip import flip_merge
from centerpose.codec.poses import Poses
from centerpose.keypoints import COCO_PERSON, KeypointSpec


class HeadsGraph(nn.Module):
    """``image`` -> the last stack's raw heads (logits), one output per head in ``heads_spec`` order.

    Outputs: ``hm`` (B, 1, H/4, W/4), ``wh`` (B, 2, ...), ``hps`` (B, 2J, ...), ``reg`` (B, 2, ...),
    ``hm_hp`` (B, J, ...), ``hp_offset`` (B, 2, ...) for the standard pose heads; ``hm`` and ``hm_hp`` are
    logits (apply a sigmoid), the rest regressions in output cells.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.output_names = list(net.heads_spec)

    def forward(self, image: Tensor) -> tuple[Tensor, ...]:
        heads = self.net(image)[-1]
        return tuple(heads[name] for name in self.output_names)


class DecodeGraph(nn.Module):
    """``image`` -> ``people`` (B, K, 5 + 3J): the network, sigmoid, optional flip merge and the decode.

    Row layout, in input-canvas pixels (output cells × ``down_ratio``)::

        [x1 y1 x2 y2 | score | x0 y0 s0  x1 y1 s1 ... ]   (5 + 3J columns; 56 for COCO)

    sorted by descending score; ``s_j`` is the joint heatmap probability at the final joint's cell (the
    detection score when the net has no ``hm_hp``). Steps (those of ``decode_to_image``): plain sigmoid of
    ``hm``/``hm_hp``; with ``flip`` the graph runs ``[image; image mirrored]`` and averages them (§3.3);
    3×3 max-pool NMS; two-stage top-K; gathers of ``reg``, ``wh``, ``hps``; the joint snapping rule onto
    ``hm_hp`` peaks (§3.2 step 6, threshold 0.1). Ties: ONNX TopK returns equal scores in ascending index
    order, i.e. ``decode(..., tie_break="stable")``; PyTorch's CPU ``torch.topk`` order may differ among
    exactly equal scores (QUIRK E10). The inverse affine to image pixels is left to the runtime
    (:mod:`centerpose.inference.onnx_runtime`): cells = pixels / down_ratio, then ``to_image_coords``.

    Args:
        net: the network.
        keypoints: skeleton (flip pairs for the merge).
        K: people per image (the output map must have at least K cells).
        flip: merge the mirrored pass inside the graph.
        fix_flip_offset: the exact mirror of x offsets in the flip merge (off = the original).
        down_ratio: input pixels per output cell.
        snap: joint snapping, ``nearest`` (the original, E9), ``nearest_valid`` or ``weighted``.
        rescore: rank people by sqrt(centre × mean joint score) (E15; off = the original).
    """

    output_names = ["people"]

    def __init__(self, net: nn.Module, keypoints: KeypointSpec = COCO_PERSON, K: int = 100, flip: bool = False,
                 fix_flip_offset: bool = False, down_ratio: int = 4, snap: SnapMode = "nearest",
                 rescore: bool = False) -> None:
        super().__init__()
        if snap not in SNAP_MODES:
            raise ValueError(f"DecodeGraph: snap must be one of {SNAP_MODES}, got {snap!r}")
        self.net = net
        self.keypoints = keypoints
        self.K = int(K)
        self.flip = flip
        self.fix_flip_offset = fix_flip_offset
        self.down_ratio = down_ratio
        self.snap = snap
        self.rescore = bool(rescore)

    def forward(self, image: Tensor) -> Tensor:
        x = torch.cat([image, image.flip(3)]) if self.flip else image
        heads = {k: v.float() for k, v in self.net(x)[-1].items()}
        if self.flip:
            probs = flip_merge(sigmoid_outputs(heads), self.keypoints, fix_offset=self.fix_flip_offset,
                               down_ratio=self.down_ratio)
        else:
            probs = sigmoid_outputs(heads)
        dets, kp_scores = decode(probs, K=self.K, return_kp_scores=True, snap=self.snap, rescore=self.rescore)
        return Poses.from_decoded(dets, kp_scores).scaled(float(self.down_ratio)).people()
