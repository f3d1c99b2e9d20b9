"""Pretrained models by name: ``model=<zoo name>`` resolves to a checked checkpoint file on disk.

:func:`resolve_weights` is the one entry every verb calls for a ``model=`` / ``init_from=`` value: an
existing file is returned as it is; a zoo name (``centerpose zoo list``) is fetched once into
``$CENTERPOSE_HOME/zoo`` (from the original's Google Drive, or ``$CENTERPOSE_ZOO_URL/<file name>``),
checked against the architecture's key lists, converted (pose models) and re-checked by sha256 on every use.

- :mod:`~centerpose.zoo.models` — the entries (name, architecture, task, Drive id, file name).
- :mod:`~centerpose.zoo.download` — one file over HTTP(S) or Drive, via ``.part``, retried.
- :mod:`~centerpose.zoo.cache` — the cache folder and its sha256 records.
- :mod:`~centerpose.zoo.weights` — name -> fetched, checked, converted, recorded file.
- :mod:`~centerpose.zoo.cli` — ``centerpose zoo list | download | path``.
"""

from __future__ import annotations

from centerpose.zoo.cli import main
from centerpose.zoo.errors import (
    DownloadError,
    NoPublishedWeightsError,
    UnknownModelError,
    WrongTaskError,
    ZooError,
    ZooFileError,
)
from centerpose.zoo.models import MODELS, ZooModel, get_model, is_zoo_name
from centerpose.zoo.weights import cached_path, resolve_weights

__all__ = [
    "MODELS",
    "DownloadError",
    "NoPublishedWeightsError",
    "UnknownModelError",
    "WrongTaskError",
    "ZooError",
    "ZooFileError",
    "ZooModel",
    "cached_path",
    "get_model",
    "is_zoo_name",
    "main",
    "resolve_weights",
]
