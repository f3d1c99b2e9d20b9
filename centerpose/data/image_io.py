"""Reading an image file with a reason when it cannot be used: missing, empty, truncated or undecodable.

cv2 returns None for an undecodable file and decodes a truncated JPEG silently (libjpeg prints "Premature end
of JPEG file" without the file name and fills the rest grey). :func:`read_image_checked` reads the bytes
once, checks that a JPEG ends with its end-of-image marker (a PNG with its IEND chunk) and decodes the same
bytes with ``cv2.imdecode``: the pixels equal ``cv2.imread``'s, and the check costs a few byte comparisons.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from centerpose.errors import RunError

JPEG_SOI, JPEG_EOI = b"\xff\xd8", b"\xff\xd9"
PNG_MAGIC, PNG_IEND = b"\x89PNG\r\n\x1a\n", b"IEND"
# Bytes after the end marker that some writers append (padding, newlines) without making the file bad.
_TAIL = 64


class BadImageError(RunError, ValueError):
    """An image file cannot be used; ``path``, ``reason`` (and ``image_id`` when known) say which and why."""

    def __init__(self, path: str | os.PathLike, reason: str, image_id: int | None = None) -> None:
        self.path, self.reason, self.image_id = str(path), reason, image_id
        super().__init__(f"image {image_id}: {reason}: {path}" if image_id is not None else f"{path}: {reason}")


class MissingImageError(BadImageError, FileNotFoundError):
    """The image file does not exist."""


def with_image_id(error: BadImageError, image_id: int) -> BadImageError:
    """The same error, its message naming the image id too."""
    return type(error)(error.path, error.reason, image_id)


def truncation_problem(data: bytes) -> str | None:
    """Why ``data`` looks cut short (JPEG without end-of-image marker, PNG without IEND), else None."""
    if data.startswith(JPEG_SOI):
        if JPEG_EOI not in data[-_TAIL:]:
            return "truncated JPEG (no end-of-image marker; an interrupted copy or download?)"
    elif data.startswith(PNG_MAGIC):
        if PNG_IEND not in data[-_TAIL:]:
            return "truncated PNG (no IEND chunk)"
    return None


def read_image_checked(path: str | os.PathLike, flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
    """(H, W, 3) uint8 BGR image (for ``IMREAD_COLOR``), or :class:`BadImageError` with the reason."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise MissingImageError(path, "file not found") from None
    except OSError as e:
        raise BadImageError(path, f"cannot read: {e.strerror or e}") from None
    if not data:
        raise BadImageError(path, "empty file (0 bytes)")
    problem = truncation_problem(data)
    if problem:
        raise BadImageError(path, problem)
    img = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if img is None or img.size == 0:
        raise BadImageError(path, "cannot decode (corrupt or not an image)")
    return img
