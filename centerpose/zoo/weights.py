"""A zoo name becomes a checked file in the cache: fetched, checked against its key lists, recorded.

Pose entries end as a converted centerpose checkpoint (``<name>.ckpt``, written by
:func:`centerpose.convert.convert_checkpoint`, which loads every tensor strictly); detection entries stay
the original file, checked the same way against the network built with the file's own heads (they serve
``init_from=``, whose reader takes original files). Every cached file is re-hashed on use: a file whose
sha256 no longer matches its record is reported and rebuilt (converted again, or fetched again).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from centerpose.zoo import cache
from centerpose.zoo.cache import State
from centerpose.zoo.download import MIRROR_ENV, fetch, source_of
from centerpose.zoo.errors import WrongTaskError, ZooError, ZooFileError
from centerpose.zoo.models import MODELS, ZooModel, get_model

__all__ = ["cached_path", "ensure", "resolve_weights"]

log = logging.getLogger("centerpose.zoo")


def resolve_weights(name_or_path: str | Path, task: str | None = None) -> Path:
    """The checkpoint file for a ``model=`` / ``init_from=`` value.

    Args:
        name_or_path: an existing file (returned as it is) or a zoo name (``centerpose zoo list``).
        task: ``"pose"`` refuses a detection zoo name (``predict`` / ``evaluate`` need pose heads);
            None accepts both.

    Returns:
        A file path: the file itself, a converted centerpose checkpoint (pose entries) or the original
        detection file (detection entries) in ``$CENTERPOSE_HOME/zoo``; fetched and converted on first use.

    Raises:
        UnknownModelError: neither a file nor a zoo name. NoPublishedWeightsError: a row without weights.
        WrongTaskError: a detection model where ``task="pose"``. DownloadError: fetching failed (the message
        names the file to fetch by hand and the folder). ZooFileError: the file is corrupt or another
        network. All are :class:`~centerpose.errors.RunError`.
    """
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    entry = get_model(str(name_or_path))  # unknown names and rows without weights raise here
    if task is not None and entry.task != task:
        pose = ", ".join(n for n, m in MODELS.items() if m.task == "pose" and m.drive_id)
        raise WrongTaskError(
            f"model '{entry.name}' is the original's {entry.task} model (for "
            f"`centerpose train init_from={entry.name}`), not a {task} model; choose one of {pose}"
        )
    return ensure(entry)


def cached_path(entry: ZooModel) -> Path:
    """Where :func:`resolve_weights` keeps ``entry``'s file (it may not exist yet)."""
    return cache.zoo_dir() / entry.cached_name


def _hand_hint(entry: ZooModel, folder: Path) -> str:
    return f"fetch {entry.url} by hand and save it as {folder / entry.file_name}, then run again"


def ensure(entry: ZooModel) -> Path:
    """Fetch / convert / re-check ``entry`` in the cache (one process at a time) and return its file."""
    from filelock import FileLock

    folder = cache.zoo_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ZooError(
            f"{entry.name}: cannot create the zoo cache folder {folder} ({err.strerror or err}); "
            "set CENTERPOSE_HOME to a writable folder"
        ) from None
    with FileLock(str(folder / f".{entry.name}.lock")):  # DDP ranks asking at once: one fetches, all wait
        if entry.task == "detection":
            path, origin = _original(entry, folder)
            if origin is not None:  # new: checked against the key lists once, then trusted by its digest
                _checked(path, origin, lambda: _check_detection(entry, path, origin))
            return path
        ckpt = folder / entry.cached_name
        if _trusted(ckpt):
            return ckpt
        original, origin = _original(entry, folder)
        _checked(original, origin, lambda: _convert(entry, original, ckpt, origin))  # the strict check
        cache.record(ckpt)
        return ckpt


def _trusted(path: Path) -> bool:
    """``path`` is present and matches its record; a mismatch is reported and the file removed."""
    state, expected, actual = cache.check(path)
    if state is State.MISMATCH:
        log.warning(
            "%s is corrupt (sha256 %s, recorded %s); it is removed and made again",
            path,
            actual[:12] if actual else "?",
            expected[:12] if expected else "?",
        )
        cache.forget(path)
    return state is State.OK


def _original(entry: ZooModel, folder: Path) -> tuple[Path, str | None]:
    """The original file of ``entry`` in ``folder`` and how it got there (None: checked and recorded before).

    A trusted file is used as it is; an unrecorded one (saved by hand, or a run stopped before its check)
    and a fresh download are returned for the caller to check.
    """
    path = folder / entry.file_name
    if _trusted(path):
        return path, None
    if path.is_file():
        log.info("checking %s (no sha256 record yet)", path)
        return path, "saved by hand"
    source = fetch(entry, path, _hand_hint(entry, folder))
    log.info("downloaded %s from %s", path, source)
    return path, f"downloaded from {source}"


def _checked(path: Path, origin: str | None, check: Callable[[], None]) -> None:
    """Run ``check`` on an original file and record a new one; a bad file is removed (the next run fetches)."""
    try:
        check()
    except ZooFileError:
        cache.forget(path)
        raise
    if origin is not None:
        cache.record(path)


# ------------------------------------------------------------------------------------------ file checks
def _file_error(entry: ZooModel, path: Path, origin: str | None, problem: str) -> ZooFileError:
    """One line: which file, where it came from, what is wrong with it, what to do."""
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    todo = f"check the copy at {source_of(entry)}, or " if mirror and origin and "downloaded" in origin else ""
    return ZooFileError(
        f"{entry.name}: {path.name} ({origin or 'cached'}) {problem} (expected the original's "
        f"{entry.arch} {entry.task} model); removed it; {todo}{_hand_hint(entry, path.parent)}"
    )


def _mismatch_summary(err) -> str:
    parts = [
        f"{len(v)} {k}"
        for k, v in (("missing", err.missing), ("unexpected", err.unexpected), ("mis-shaped", err.mismatched))
        if v
    ]
    first = (err.missing or err.unexpected or [m[0] for m in err.mismatched] or ["?"])[0]
    hint = f"; {err.hint.splitlines()[0]}" if err.hint else ""
    return f"does not match the {err.arch} key lists ({', '.join(parts)} tensors, e.g. {first}{hint})"


def _read_state(entry: ZooModel, path: Path, origin: str | None):
    """The original state dict of ``path``, checked to be of ``entry.arch``."""
    from centerpose.checkpoints.reader import CheckpointLoadError
    from centerpose.convert import guess_arch, read_original
    from centerpose.models.registry import canonical_arch

    try:
        state, _ = read_original(path)
    except CheckpointLoadError as err:
        why = type(err.__cause__).__name__ if err.__cause__ else str(err).rsplit(": ", 1)[-1]
        raise _file_error(entry, path, origin, f"is not a readable checkpoint ({why})") from None
    try:
        arch = canonical_arch(guess_arch(state))
    except ValueError:
        raise _file_error(entry, path, origin, "has none of the original CenterNet architectures' keys") from None
    if arch != canonical_arch(entry.arch):
        raise _file_error(entry, path, origin, f"holds a {arch} network, not {entry.arch}")
    return state


def _check_detection(entry: ZooModel, path: Path, origin: str | None) -> None:
    """A ctdet file: the right architecture, no pose heads, every tensor of the network it describes."""
    from centerpose.convert import CheckpointMismatchError, infer_heads, load_original
    from centerpose.models import build_model

    state = _read_state(entry, path, origin)
    heads = infer_heads(state, entry.arch)
    if "hps" in heads or "hm" not in heads:
        raise _file_error(entry, path, origin, f"has the heads {sorted(heads)}, not a detection model's (hm, wh, reg)")
    try:
        load_original(state, build_model(entry.arch, heads=heads), entry.arch)  # strict: every tensor
    except CheckpointMismatchError as err:
        raise _file_error(entry, path, origin, _mismatch_summary(err)) from None


def _convert(entry: ZooModel, original: Path, ckpt: Path, origin: str | None) -> None:
    """Convert a multi_pose file with the strict converter; any failure becomes one :class:`ZooFileError`."""
    from centerpose.convert import CheckpointMismatchError, convert_checkpoint

    try:
        info = convert_checkpoint(original, ckpt, arch=entry.arch, overwrite=True)
    except CheckpointMismatchError as err:
        raise _file_error(entry, original, origin, _mismatch_summary(err)) from None
    except ValueError as err:  # unreadable, another network, a ctdet file: say which, from the file itself
        _read_state(entry, original, origin)  # raises the precise error for the first two
        reason = str(err).splitlines()[0].split(". ")[0].replace(f"{original} ", "")
        raise _file_error(entry, original, origin, f"does not convert ({reason})") from None
    log.info("converted %s -> %s (%s, %d tensors)", original, ckpt, info["arch"], info["num_tensors"])
