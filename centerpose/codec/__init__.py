"""The codec: targets from annotations (encode) and people from head outputs (decode), side by side.

:class:`CenterPoseCodec` is the configured object (encode + decode, :class:`DecodeOptions`); :class:`Poses`
is its typed result; :class:`DecodeOptions` every decode choice. The functions below are its steps.
"""

from centerpose.codec.codec import CenterPoseCodec
from centerpose.codec.decode import decode, heatmap_nms, sigmoid_outputs
from centerpose.codec.encode import affine_transform, coco_boxes_to_xyxy, encode_pose_targets
from centerpose.codec.flip import flip_merge
from centerpose.codec.ops import clamped_sigmoid, gather_feat
from centerpose.codec.options import DecodeOptions, DecodeOptionsMismatch
from centerpose.codec.pipeline import decode_heads
from centerpose.codec.gaussian import draw_gaussian, draw_gaussians, gaussian_kernel, gaussian_radius, radius_from_box
from centerpose.codec.postprocess import split_results, to_image_coords
from centerpose.codec.poses import Poses

__all__ = [
    "CenterPoseCodec",
    "DecodeOptions",
    "DecodeOptionsMismatch",
    "Poses",
    "affine_transform",
    "clamped_sigmoid",
    "coco_boxes_to_xyxy",
    "decode",
    "decode_heads",
    "draw_gaussian",
    "draw_gaussians",
    "encode_pose_targets",
    "flip_merge",
    "gather_feat",
    "gaussian_kernel",
    "gaussian_radius",
    "heatmap_nms",
    "radius_from_box",
    "sigmoid_outputs",
    "split_results",
    "to_image_coords",
]
