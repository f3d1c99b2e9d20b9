"""Fetch one original file: from Google Drive (gdown), or from ``$CENTERPOSE_ZOO_URL/<file name>``.

The bytes go to ``<file>.part`` and are renamed to ``<file>`` only once the transfer is complete (the
announced length arrived), so an interrupted download never leaves a file that looks complete; the
``.part`` file is removed on every failure, Ctrl-C included. Each source gets :data:`ATTEMPTS` tries with
a doubling pause between them.
"""

from __future__ import annotations

import http.client
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

from centerpose.zoo.errors import DownloadError
from centerpose.zoo.models import ZooModel

__all__ = ["ATTEMPTS", "BACKOFF_S", "MIRROR_ENV", "fetch", "source_of"]

log = logging.getLogger("centerpose.zoo")

MIRROR_ENV = "CENTERPOSE_ZOO_URL"
ATTEMPTS = 3
BACKOFF_S = 2.0  # pause before the second try; doubled before each further one
TIMEOUT_S = 60.0  # per connect / read: a stalled server fails the attempt instead of hanging
_CHUNK = 1 << 20


class _Refused(Exception):
    """A definite answer (HTTP 4xx): trying again will not change it."""


def source_of(entry: ZooModel) -> str:
    """Where :func:`fetch` takes ``entry`` from: the mirror URL when ``$CENTERPOSE_ZOO_URL`` is set, else Drive."""
    base = os.environ.get(MIRROR_ENV, "").strip()
    if base:
        return f"{base.rstrip('/')}/{quote(entry.file_name)}"
    return entry.url or ""


def _progress(total: int | None, desc: str):
    from tqdm.auto import tqdm

    # disable=None: no bar when stderr is not a terminal (CI logs, pipes)
    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, disable=None)


def _http(url: str, out: BinaryIO, desc: str) -> None:
    """GET ``url`` into ``out``; a body shorter than its Content-Length fails."""
    request = urllib.request.Request(url, headers={"User-Agent": "centerpose-zoo"})
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as err:
        if 400 <= err.code < 500 and err.code not in (408, 429):
            raise _Refused(f"HTTP {err.code} {err.reason}") from err
        raise
    with response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        received = 0
        with _progress(total, desc) as bar:
            while True:
                try:
                    block = response.read(_CHUNK)
                except http.client.IncompleteRead as err:
                    received += len(err.partial)
                    block = b""
                if not block:
                    break
                out.write(block)
                received += len(block)
                bar.update(len(block))
    if total is not None and received != total:
        raise ConnectionError(f"connection closed after {received} of {total} bytes")


def _drive(file_id: str, out: BinaryIO, desc: str) -> None:
    """Google Drive through gdown (it answers the large-file confirmation page), into ``out``."""
    import gdown

    result = gdown.download(id=file_id, output=out, quiet=False)
    if result is None:  # older gdown reports some failures by returning None
        raise ConnectionError("gdown could not retrieve the file")


def _reason(err: BaseException) -> str:
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    if isinstance(err, urllib.error.URLError):
        return str(getattr(err.reason, "strerror", None) or err.reason)
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


def fetch(entry: ZooModel, dest: Path, hand_hint: str) -> str:
    """Download ``entry``'s original file to ``dest`` (via ``dest.part``); return the source it came from.

    Args:
        entry: the zoo entry.
        dest: final path of the file.
        hand_hint: the sentence telling a user how to fetch it by hand (ends the error message).

    Raises:
        DownloadError: every attempt failed, or the source refused (HTTP 4xx); nothing is left at ``dest``
            or ``dest.part``.
    """
    source = source_of(entry)
    getter: Callable[[BinaryIO, str], None]
    if os.environ.get(MIRROR_ENV, "").strip():

        def getter(out: BinaryIO, desc: str) -> None:
            _http(source, out, desc)
    else:

        def getter(out: BinaryIO, desc: str) -> None:
            _drive(entry.drive_id or "", out, desc)

    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    reason = ""
    attempt = 0
    for attempt in range(1, ATTEMPTS + 1):
        log.info("downloading %s from %s (attempt %d of %d)", entry.file_name, source, attempt, ATTEMPTS)
        try:
            with open(part, "wb") as out:
                getter(out, entry.file_name)
                out.flush()
                os.fsync(out.fileno())
            if part.stat().st_size == 0:
                raise ConnectionError("the server sent an empty file")
            os.replace(part, dest)
            return source
        except _Refused as err:
            reason = str(err)
            break
        except Exception as err:  # noqa: BLE001  (network, HTTP 5xx, gdown's own errors: try again)
            reason = _reason(err)
            log.warning("download of %s failed: %s", entry.file_name, reason)
        finally:
            part.unlink(missing_ok=True)  # also on Ctrl-C
        if attempt < ATTEMPTS:
            time.sleep(BACKOFF_S * 2 ** (attempt - 1))
    tries = "1 attempt" if attempt == 1 else f"{attempt} attempts"
    raise DownloadError(f"{entry.name}: could not download {source} ({reason}; {tries}); {hand_hint}")
