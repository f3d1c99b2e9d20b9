"""centerpose: CenterNet multi-person pose estimation with PyTorch Lightning, Hydra and timm."""

from centerpose.keypoints import COCO_PERSON, KeypointSpec

__version__ = "0.1.0"

__all__ = ["COCO_PERSON", "KeypointSpec", "__version__"]
