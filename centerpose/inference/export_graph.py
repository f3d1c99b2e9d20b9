"""The modules that get exported: raw heads, or heads + decoding (people out) in one graph.

Both wrap a :class:`~centerpose.models.CenterNet` and take the normalised network input
``image`` (B, 3, H, W) float32 (BGR, ``(uint8 / 255 - mean) / std``, H and W multiples of 32; 128 for
Hourglass). Decoding is :func:`centerpose.codec.pipeline.decode_heads`, the codec's own path, so the graph
computes what :meth:`~centerpose.codec.CenterPoseCodec.decode` computes, up to the inverse affine to image pixels.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from centerpose.codec.options import DecodeOptions
from centerpose.codec.pipeline import decode_heads
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
    """``image`` -> ``people`` (B, K, 5 + 3J): the network, then the codec's decode with ``options``.

    Row layout, in input-canvas pixels (output cells × ``down_ratio``)::

        [x1 y1 x2 y2 | score | x0 y0 s0  x1 y1 s1 ... ]   (5 + 3J columns; 56 for COCO)

    sorted by descending score; ``s_j`` is the joint heatmap probability at the final joint's cell (the
    detection score when the net has no ``hm_hp``). With ``options.flip_test`` the graph runs
    ``[image; image mirrored]`` and merges them (§3.3). Traced, the decode keeps a fixed K and the NMS of
    every cell (:func:`~centerpose.codec.decode.is_exporting`). Ties: ONNX TopK returns equal scores in
    ascending index order, i.e. ``tie_break="stable"``; PyTorch's CPU ``torch.topk`` order may differ among
    exactly equal scores (QUIRK E10). The inverse affine to image pixels is left to the runtime
    (:mod:`centerpose.inference.onnx_runtime`): cells = pixels / down_ratio, then ``to_image_coords``.

    Args:
        net: the network.
        keypoints: skeleton (flip pairs for the merge).
        options: the decode (:class:`~centerpose.codec.DecodeOptions`; the output map must have K cells).
        down_ratio: input pixels per output cell.
    """

    output_names = ["people"]

    def __init__(
        self,
        net: nn.Module,
        keypoints: KeypointSpec = COCO_PERSON,
        options: DecodeOptions | None = None,
        down_ratio: int = 4,
    ) -> None:
        super().__init__()
        self.net = net
        self.keypoints = keypoints
        self.options = options if options is not None else DecodeOptions()
        self.down_ratio = int(down_ratio)

    def forward(self, image: Tensor) -> Tensor:
        x = torch.cat([image, image.flip(3)]) if self.options.flip_test else image
        dets, kp_scores = decode_heads(self.net(x)[-1], self.options, self.keypoints, self.down_ratio)
        return Poses.from_decoded(dets, kp_scores).scaled(float(self.down_ratio)).people()
