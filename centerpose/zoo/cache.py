"""The zoo cache folder and its sha256 records.

Layout (``$CENTERPOSE_HOME``, default ``${XDG_CACHE_HOME:-~/.cache}/centerpose``, as torch.hub and
Ultralytics keep theirs)::

    <home>/zoo/multi_pose_dla_3x.pth          the original's file, as published
    <home>/zoo/multi_pose_dla_3x.pth.sha256   its digest, recorded once it was checked
    <home>/zoo/multi_pose_dla_3x.ckpt         the converted centerpose checkpoint
    <home>/zoo/multi_pose_dla_3x.ckpt.sha256
    <home>/zoo/.multi_pose_dla_3x.lock        taken while a process fetches or converts (DDP ranks wait)

A record is ``sha256sum`` format (``<hex>  <file name>``), so ``sha256sum -c`` checks it too. A file is
trusted only while its digest matches the record; a file without a record is checked again before use.
"""

from __future__ import annotations

import hashlib
import os
from enum import Enum
from pathlib import Path

__all__ = ["State", "check", "forget", "record", "sha256_of", "zoo_dir"]

_CHUNK = 1 << 20


def zoo_dir() -> Path:
    """``$CENTERPOSE_HOME/zoo`` (not created here)."""
    home = os.environ.get("CENTERPOSE_HOME")
    if not home:
        home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "centerpose"
    return Path(home).expanduser() / "zoo"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _record_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def record(path: Path) -> str:
    """Write ``path``'s digest beside it (atomically: a torn record reads as no record) and return it."""
    digest = sha256_of(path)
    tmp = _record_path(path).with_name(_record_path(path).name + ".part")
    tmp.write_text(f"{digest}  {path.name}\n")
    os.replace(tmp, _record_path(path))
    return digest


def recorded(path: Path) -> str | None:
    """The recorded digest of ``path``, or None without a (well-formed) record."""
    try:
        text = _record_path(path).read_text().split()
    except OSError:
        return None
    return text[0] if text and len(text[0]) == 64 else None


def forget(path: Path) -> None:
    """Remove ``path`` and its record."""
    for p in (path, _record_path(path)):
        p.unlink(missing_ok=True)


class State(Enum):
    OK = "ok"  # present, digest matches the record
    MISSING = "missing"
    UNRECORDED = "unrecorded"  # present without a record: saved by hand, or a run died before recording it
    MISMATCH = "mismatch"  # present, digest differs from the record: corrupt or replaced


def check(path: Path) -> tuple[State, str | None, str | None]:
    """``(state, recorded digest, actual digest)`` of a cached file (digests None where not computed)."""
    if not path.is_file():
        return State.MISSING, None, None
    expected = recorded(path)
    if expected is None:
        return State.UNRECORDED, None, None
    actual = sha256_of(path)
    return (State.OK if actual == expected else State.MISMATCH), expected, actual
