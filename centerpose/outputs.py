"""A failed command leaves no half-done outputs: :func:`discard_on_error` removes what it wrote.

Used by the entry points that write products (``predict``: drawn images, video, ``detections.json``;
``export``: the model file and its sidecar; ``evaluate``: results and metrics). The files of a folder that
appeared or changed while the command ran are deleted when it ends with an exception; files that were there
before and untouched are kept (a failed re-export does not delete a good ``model.onnx`` it never reached).
Hydra's own records (``.hydra/``, the job log) are kept: they say what failed.
"""

from __future__ import annotations

import contextlib
import fnmatch
import logging
import os
from pathlib import Path
from typing import Iterator

log = logging.getLogger("centerpose.outputs")

KEEP = ("*.log",)


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def _files(target: Path, keep: tuple[str, ...]) -> list[Path]:
    """``target`` itself when it is (or will be) a file, else the files directly inside the folder."""
    if target.is_dir():
        return [p for p in target.iterdir() if p.is_file() and not any(fnmatch.fnmatch(p.name, k) for k in keep)]
    return [target]


@contextlib.contextmanager
def discard_on_error(*targets: str | os.PathLike, keep: tuple[str, ...] = KEEP) -> Iterator[None]:
    """On an exception, delete every file of ``targets`` (files, or folders: their top-level files except
    ``keep`` patterns) that was created or modified inside the block, then re-raise."""
    paths = [Path(t) for t in targets]
    before = {p: _stamp(p) for t in paths for p in _files(t, keep)}
    try:
        yield
    except Exception:
        removed = []
        for target in paths:
            for path in _files(target, keep) if target.exists() else []:
                if _stamp(path) is not None and _stamp(path) != before.get(path):
                    with contextlib.suppress(OSError):
                        path.unlink()
                        removed.append(path.name)
        if removed:
            log.info("removed %d output file(s) of the failed run: %s", len(removed), ", ".join(sorted(removed)))
        raise
