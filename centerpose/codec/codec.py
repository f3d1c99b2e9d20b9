"""CenterPoseCodec: the one object that knows how people become targets (encode) and heads become people (decode).

Configured once (``configs/codec/``) and handed to the dataset (encode), the LightningModule and evaluator,
the predictor and the image logger (decode), so every decode option is declared in one place:
:class:`DecodeOptions`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import numpy as np
from torch import Tensor

from centerpose.codec.encode import JOINT_RADII, encode_pose_targets
from centerpose.codec.options import DecodeOptions
from centerpose.codec.pipeline import decode_probabilities, head_probabilities
from centerpose.codec.postprocess import to_image_coords
from centerpose.codec.poses import Poses
from centerpose.keypoints import COCO_PERSON, KeypointSpec

__all__ = ["CenterPoseCodec", "DecodeOptions"]


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

    def __init__(
        self,
        keypoints: KeypointSpec = COCO_PERSON,
        input_size: int = 512,
        down_ratio: int = 4,
        max_objs: int = 32,
        dense_hp: bool = False,
        corrected_radius: bool = False,
        joint_radius: str = "box",
        decode: DecodeOptions | Mapping[str, Any] | None = None,
    ) -> None:
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
        args = dict(
            keypoints=self.keypoints,
            input_size=self.input_size,
            down_ratio=self.down_ratio,
            max_objs=self.max_objs,
            dense_hp=self.dense_hp,
            corrected_radius=self.corrected_radius,
            joint_radius=self.joint_radius,
        )
        args.update({"decode": options, **{k: v for k, v in changes.items() if k not in option_names}})
        return CenterPoseCodec(**args)

    def __repr__(self) -> str:
        return (
            f"CenterPoseCodec(J={self.keypoints.num_joints}, input_size={self.input_size}, "
            f"down_ratio={self.down_ratio}, max_objs={self.max_objs}, dense_hp={self.dense_hp}, "
            f"corrected_radius={self.corrected_radius}, joint_radius={self.joint_radius!r}, {self.options})"
        )

    # ------------------------------------------------------------------ encode
    def encode(
        self,
        boxes: np.ndarray,
        keypoints: np.ndarray,
        trans_output: np.ndarray,
        trans_output_rot: np.ndarray,
        *,
        flipped: bool = False,
        image_width: int | None = None,
        rot: float = 0.0,
        joint_heatmaps: str = "dense",
    ) -> dict[str, np.ndarray]:
        """Targets of one sample (:func:`~centerpose.codec.encode.encode_pose_targets` with this codec's
        output size, ``max_objs``, skeleton and encode switches).

        Args:
            boxes: (n, 4) float32 xyxy image boxes; keypoints: (n, J, 3) image (x, y, v).
            trans_output, trans_output_rot: (2, 3) image → output map affines, without / with rotation.
            flipped, image_width, rot: the sample's augmentation.
            joint_heatmaps: "dense" draws ``hm_hp``; "sparse" returns ``hp_radius`` for
                :func:`~centerpose.codec.device_heatmaps.draw_joint_heatmaps` to draw the batch's maps.
        """
        return encode_pose_targets(
            boxes,
            keypoints,
            trans_output,
            trans_output_rot,
            flipped=flipped,
            image_width=image_width,
            rot=rot,
            output_size=self.output_size,
            max_objs=self.max_objs,
            keypoints_spec=self.keypoints,
            dense_hp=self.dense_hp,
            corrected_radius=self.corrected_radius,
            joint_heatmaps=joint_heatmaps,
            joint_radius=self.joint_radius,
        )

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
        return head_probabilities(heads, self.options, self.keypoints, self.down_ratio)

    def decode_probabilities(
        self, probs: Mapping[str, Tensor], meta: Mapping[str, Any], *, scale: float = 1.0
    ) -> Poses:
        """People in image pixels from heads that already hold probabilities (:meth:`probabilities`, or
        the ground-truth heads of :func:`~centerpose.codec.oracle.oracle_outputs`); see :meth:`decode`."""
        dets, kp_scores = decode_probabilities(probs, self.options)
        rows = to_image_coords(dets, meta["c"], meta["s"], probs["hm"].shape[2:], scale=scale)
        return Poses.from_rows(rows, kp_scores)
