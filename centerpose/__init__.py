"""centerpose: CenterNet multi-person pose estimation with PyTorch Lightning, Hydra and timm."""

from centerpose.keypoints import COCO_PERSON, KeypointSpec

__version__ = "0.1.0"

__all__ = ["COCO_PERSON", "KeypointSpec", "Predictor", "__version__"]


def __getattr__(name: str):
    # Lazy: `import centerpose` stays light (no torch) until the predictor is asked for.
    if name == "Predictor":
        from centerpose.inference.predictor import Predictor

        return Predictor
    raise AttributeError(f"module 'centerpose' has no attribute {name!r}")
