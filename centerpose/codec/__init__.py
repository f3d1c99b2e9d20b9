"""The codec: targets from annotations (encode) and people from head outputs (decode), side by side."""

from centerpose.codec.decode import decode, heatmap_nms, sigmoid_outputs
from centerpose.codec.encode import affine_transform, coco_boxes_to_xyxy, encode_pose_targets
from centerpose.codec.flip import flip_merge
from centerpose.codec.pipeline import decode_to_image
from centerpose.codec.gaussian import draw_gaussian, draw_gaussians, gaussian_kernel, gaussian_radius, radius_from_box
from centerpose.codec.postprocess import split_results, to_image_coords

__all__ = [
    "affine_transform", "coco_boxes_to_xyxy", "decode", "decode_to_image", "draw_gaussian", "draw_gaussians", "encode_pose_targets",
    "flip_merge", "gaussian_kernel", "gaussian_radius", "heatmap_nms", "radius_from_box", "sigmoid_outputs",
    "split_results", "to_image_coords",
]
