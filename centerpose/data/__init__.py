"""Data: COCO keypoint samples, augmentation, the Lightning data module and the synthetic dataset."""

from centerpose.data.datamodule import CocoPoseDataModule, DatasetNotFoundError, check_coco_layout

__all__ = ["CocoPoseDataModule", "DatasetNotFoundError", "check_coco_layout"]
