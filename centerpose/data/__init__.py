"""Data: COCO keypoint samples, augmentation, the Lightning data module and the synthetic dataset."""

from centerpose.data.augment import (
    Geometry,
    SampleRngs,
    center_geometry,
    draw_train_geometry,
    get_affine_transform,
    sample_transforms,
    warp_image,
)
from centerpose.data.coco import CocoPoseDataset
from centerpose.data.datamodule import CocoPoseDataModule, DatasetNotFoundError, check_coco_layout
from centerpose.data.synthetic import ensure_synthetic_coco, write_synthetic_coco
from centerpose.data.transforms import COCO_MEAN_BGR, COCO_STD_BGR, CornerNetColorAug, build_photometric

__all__ = [
    "COCO_MEAN_BGR",
    "COCO_STD_BGR",
    "CocoPoseDataModule",
    "CocoPoseDataset",
    "CornerNetColorAug",
    "DatasetNotFoundError",
    "Geometry",
    "SampleRngs",
    "build_photometric",
    "center_geometry",
    "check_coco_layout",
    "draw_train_geometry",
    "ensure_synthetic_coco",
    "get_affine_transform",
    "sample_transforms",
    "warp_image",
    "write_synthetic_coco",
]
