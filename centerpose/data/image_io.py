"""Reading an image file with a reason when it cannot be used: missing, empty, truncated or undecodable.

cv2 returns None for an undecodable file and decodes a truncated JPEG silently (libjpeg prints "Premature end
of JPEG file" without the file name and fills the rest grey). :func:`read_image_checked` reads the bytes
once, checks that a JPEG ends with its end-of-image marker (a PNG with its IEND chunk) and decodes the same
bytes with ``cv2.imdecode``: the pixels equal ``cv2.imread``'s, and the check costs a few byte comparisons. :func:`jpeg_size` reads a
JPEG's size from its frame header, so that a loader can choose a DCT-scaled decode (``REDUCED_COLOR_FLAGS``)
before decoding.
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


def read_image_bytes(path: str | os.PathLike) -> bytes:
    """The file's bytes, or :class:`BadImageError` when it is missing, unreadable, empty or cut short."""
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
    return data


def decode_image(data: bytes, path: str | os.PathLike, flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
    """``cv2.imdecode`` of checked bytes (:func:`read_image_bytes`), or :class:`BadImageError` naming ``path``."""
    img = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if img is None or img.size == 0:
        raise BadImageError(path, "cannot decode (corrupt or not an image)")
    return img


def read_image_checked(path: str | os.PathLike, flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
    """(H, W, 3) uint8 BGR image (for ``IMREAD_COLOR``), or :class:`BadImageError` with the reason."""
    return decode_image(read_image_bytes(path), path, flags)


# cv2's DCT-scaled JPEG decodes (libjpeg-turbo scale_denom 2/4/8: the IDCT itself outputs the smaller image).
REDUCED_COLOR_FLAGS = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}
# Start-of-frame markers (SOF0-SOF15 without DHT C4, JPG C8, DAC CC): they carry the frame's height and width.
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(height, width) from a JPEG's frame header, read without decoding; None when ``data`` is not a JPEG,
    the header cannot be parsed, or the file has an Exif segment (its orientation tag may make cv2 return the
    image turned, so the header's size would not be the decoded one)."""
    if not data.startswith(JPEG_SOI):
        return None
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if marker == 0xE1 and data[i + 4 : i + 8] == b"Exif":
            return None
        if marker in _SOF:
            if i + 9 > n:
                return None
            height, width = int.from_bytes(data[i + 5 : i + 7], "big"), int.from_bytes(data[i + 7 : i + 9], "big")
            return (height, width) if height > 0 and width > 0 else None
        if marker == 0xDA or length < 2:  # scan data before any frame header: not a JPEG we can size
            return None
        i += 2 + length
    return None
