"""What can go wrong between a zoo name and a checkpoint on disk: each a one-line :class:`RunError`."""

from __future__ import annotations

from centerpose.errors import RunError

__all__ = [
    "DownloadError",
    "NoPublishedWeightsError",
    "UnknownModelError",
    "WrongTaskError",
    "ZooError",
    "ZooFileError",
]


class ZooError(RunError):
    """Base of the model-zoo errors."""


class UnknownModelError(ZooError, FileNotFoundError):
    """``model=`` names neither an existing file nor a zoo model (also a FileNotFoundError: it is a path too)."""


class NoPublishedWeightsError(ZooError):
    """A zoo row without released weights (the ResNet-50 pose row): it has to be trained."""


class WrongTaskError(ZooError):
    """A detection model asked for where a pose model is needed (``predict model=ctdet_coco_dla_2x``)."""


class DownloadError(ZooError):
    """Every download attempt failed; the message names the file to fetch by hand and the folder for it."""


class ZooFileError(ZooError):
    """A downloaded or cached file is not the checkpoint its zoo entry promises (corrupt, other network)."""
