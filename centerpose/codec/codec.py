"""CenterPoseCodec: the one object that knows how people become targets (encode) and heads become people (decode).

Configured once (``configs/codec/``) and handed to the dataset (encode), the LightningModule and evaluator,
the predictor and the image logger (decode), so every decode option is declared in one place:
:class:`DecodeOptions`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, Mapping

import numpy as np
from torch import Tensor

from centerpose.codec.decode import SNAP_MODES, SnapMode, TieBreak
from centerpose.codec.encode import JOINT_RADII, encode_pose_targets
from centerpose.codec.pipeline import head_probabilities, probabilities_to_image
from centerpose.codec.poses import Poses
from centerpose.keypoints import COCO_PERSON, KeypointSpec

__all__ = ["CenterPoseCodec", "DecodeOptions"]


@dataclass(frozen=True)
class DecodeOptions:
    """How raw heads become people. Defaults are the original's (the detector's decode, without flip).

    Attributes:
        K: people per image (and heatmap candidates per joint); capped at the output map's cell count.
        flip_test: the heads are ``[images; mirrors]`` and are merged first (§3.3); whoever runs the network
            runs the mirrored input too when this is on.
        sigmoid: ``plain`` = the detector; ``clamp`` = the trainer path's clamped sigmoid (QUIRK E1). The flip
            merge always uses the plain sigmoid, as the original's detector.
        fix_flip_offset: exact mirror of the x offsets in the flip merge (QUIRK E11; off = the original).
        tie_break: ``topk`` (the original's order on CPU) or ``stable`` (equal scores by cell index, E10).
        snap: ``nearest`` (the original, E9), ``nearest_valid`` or ``weighted`` joint snapping (see
            :func:`~centerpose.codec.decode.decode`).
        rescore: rank people by the geometric mean of centre score and mean joint score (off = the
            original's centre score).
    """

    K: int = 100
    flip_test: bool = False
    sigmoid: Literal["plain", "clamp"] = "plain"
    fix_flip_offset: bool = False
    tie_break: TieBreak = "topk"
    snap: SnapMode = "nearest"
    rescore: bool = False

    def __post_init__(self) -> None:
        choices = {"sigmoid": ("plain", "clamp"), "tie_break": ("topk", "stable"), "snap": SNAP_MODES}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"DecodeOptions: {name} must be one of {allowed}, got {getattr(self, name)!r}")
        if int(self.K) < 1:
            raise ValueError(f"DecodeOptions: K must be >= 1, got {self.K}")

    def replace(self, **changes: Any) -> "DecodeOptions":
        """A copy with some options changed (unknown names raise TypeError)."""
        return dataclasses.replace(self, **changes)


class CenterPoseCodec:
    """Encode one sample's people into training targets; decode a batch's heads into :class:`Poses`.

    Args:
        keypoints: the skeleton (joint count, flip pairs).
        input_size: R, the square training input side.
        down_ratio: input pixels per output cell (4); the output map side is ``input_size // down_ratio``.
        max_objs: N, people encoded per image (the rest are dropped, QUIRK D9).
        dense_hp: encode ``dense_hps``/``dense_hps_mask`` instead of ``hps``/``hps_mask``.
        corrected_radius: CornerNet's corrected Gaussian radius (QUIRK D1 improved; not parity).
        joint_radius: ``box`` (the original: each joint blob has its person's radius, QUIRK D2) or ``sigma``
            (scaled by the joint's OKS sigma: sharper blobs where keypoint AP is strictest; not parity).
        decode: :class:`DecodeOptions` (or a mapping of them).
    """

    def __init__(self, keypoints: KeypointSpec = COCO_PERSON, input_size: int = 512, down_ratio: int = 4,
                 max_objs: int = 32, dense_hp: bool = False, corrected_radius: bool = False,
                 joint_radius: str = "box", decode: DecodeOptions | Mapping[str, Any] | None = None) -> None:
        if int(down_ratio) < 1 or int(input_size) % int(down_ratio):
            raise ValueError(f"CenterPoseCodec: input_size {input_size} is not a multiple of down_ratio {down_ratio}")
        self.keypoints = keypoints
        self.input_size, self.down_ratio, self.max_objs = int(input_size), int(down_ratio), int(max_objs)
        self.dense_hp, self.corrected_radius = bool(dense_hp), bool(corrected_radius)
        if joint_radius not in JOINT_RADII:
            raise ValueError(f"CenterPoseCodec: joint_radius must be one of {JOINT_RADII}, got {joint_radius!r}")
        self.joint_radius = joint_radius
        if decode is None:
            decode = DecodeOptions()
        elif not isinstance(decode, DecodeOptions):
            decode = DecodeOptions(**dict(decode))
        self.options: DecodeOptions = decode

    @property
    def output_size(self) -> int:
        """O, the square output map side of training samples."""
        return self.input_size // self.down_ratio

    def replace(self, **changes: Any) -> "CenterPoseCodec":
        """A copy with constructor arguments changed; decode option names change :attr:`options`."""
        option_names = {f.name for f in dataclasses.fields(DecodeOptions)}
        options = self.options.replace(**{k: v for k, v in changes.items() if k in option_names})
        args = dict(keypoints=self.keypoints, input_size=self.input_size, down_ratio=self.down_ratio,
                    max_objs=self.max_objs, dense_hp=self.dense_hp, corrected_radius=self.corrected_radius,
                    joint_radius=self.joint_radius)
        args.update({"decode": options, **{k: v for k, v in changes.items() if k not in option_names}})
        return CenterPoseCodec(**args)

    def __repr__(self) -> str:
        return (f"CenterPoseCodec(J={self.keypoints.num_joints}, input_size={self.input_size}, "
                f"down_ratio={self.down_ratio}, max_objs={self.max_objs}, dense_hp={self.dense_hp}, "
                f"corrected_radius={self.corrected_radius}, joint_radius={self.joint_radius!r}, {self.options})")

    # ------------------------------------------------------------------ encode
    def encode(self, boxes: np.ndarray, keypoints: np.ndarray, trans_output: np.ndarray,
               trans_output_rot: np.ndarray, *, flipped: bool = False, image_width: int | None = None,
               rot: float = 0.0, joint_heatmaps: str = "dense") -> dict[str, np.ndarray]:
        """Targets of one sample (:func:`~centerpose.codec.encode.encode_pose_targets` with this codec's
        output size, ``max_objs``, skeleton and encode switches).

        Args:
            boxes: (n, 4) float32 xyxy image boxes; keypoints: (n, J, 3) image (x, y, v).
            trans_output, trans_output_rot: (2, 3) image → output map affines, without / with rotation.
            flipped, image_width, rot: the sample's augmentation.
            joint_heatmaps: "dense" draws ``hm_hp``; "sparse" returns ``hp_radius`` for
                :func:`~centerpose.codec.device_heatmaps.draw_joint_heatmaps` to draw the batch's maps.
        """
        return encode_pose_targets(boxes, keypoints, trans_output, trans_output_rot, flipped=flipped,
                                   image_width=image_width, rot=rot, output_size=self.output_size,
                                   max_objs=self.max_objs, keypoints_spec=self.keypoints, dense_hp=self.dense_hp,
                                   corrected_radius=self.corrected_radius, joint_heatmaps=joint_heatmaps,
                                   joint_radius=self.joint_radius)

    # ------------------------------------------------------------------ decode
    def decode(self, heads: Mapping[str, Tensor], meta: Mapping[str, Any], *, scale: float = 1.0) -> Poses:
        """People of a batch in image pixels: sigmoid, flip merge (``flip_test``), decode, inverse affine.

        Args:
            heads: raw logits of the last stack, ``{head: (B, C, h, w)}``; with ``options.flip_test`` the
                batch is ``[images; their mirrors]`` (2B, see :func:`~centerpose.codec.pipeline.stack_with_mirrors`).
            meta: ``c`` (B, 2) affine centres and ``s`` (B,) or (B, 2) affine scales (a sample's or the
                pre-process's meta).
            scale: test scale; coordinates are divided by it.

        Returns:
            Batched :class:`Poses` (tensors on the heads' device): boxes (B, K, 4), scores (B, K),
            keypoints (B, K, J, 3), sorted by descending score, no threshold.
        """
        return self.decode_probabilities(self.probabilities(heads), meta, scale=scale)

    def probabilities(self, heads: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Raw logits (B or 2B with flip) → float32 heads with ``hm``/``hm_hp`` as probabilities (batch B):
        the sigmoid, and the flip merge with this codec's ``down_ratio`` when ``flip_test`` is on."""
        o = self.options
        return head_probabilities(heads, keypoints=self.keypoints, flip=o.flip_test, sigmoid=o.sigmoid,
                                  fix_flip_offset=o.fix_flip_offset, down_ratio=self.down_ratio)

    def decode_probabilities(self, probs: Mapping[str, Tensor], meta: Mapping[str, Any], *,
                             scale: float = 1.0) -> Poses:
        """People in image pixels from heads that already hold probabilities (:meth:`probabilities`, or
        the ground-truth heads of :func:`~centerpose.codec.oracle.oracle_outputs`); see :meth:`decode`."""
        o = self.options
        rows, kp_scores = probabilities_to_image(probs, meta["c"], meta["s"], K=o.K, tie_break=o.tie_break,
                                                 snap=o.snap, rescore=o.rescore, scale=scale)
        return Poses.from_rows(rows, kp_scores)
