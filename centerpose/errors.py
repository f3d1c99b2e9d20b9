"""The errors a user must act on, and the one boundary that reports them: a leaf module (imports nothing of
centerpose) that every layer may raise from and every command goes through.

:class:`RunError` is the base of every error that ends a command with one line naming the file or key and the
problem (bad file, bad checkpoint, bad config value, missing dataset, unsupported source, failed download,
divergence).

Every command (``centerpose <verb>``, ``python -m centerpose.<verb>``) runs inside :func:`error_boundary`, and
the task function of every Hydra entry point inside :func:`task_errors`. A *known* error (:func:`describe`:
a :class:`RunError`, a missing or unwritable file, a Hydra composition or override error, an OmegaConf
type or key error) prints ONE line ``<program>: error: <message>`` to stderr and exits with code 1; anything
else is a bug and keeps its traceback. ``--debug`` on the command line, ``HYDRA_FULL_ERROR=1`` or
``CENTERPOSE_DEBUG=1`` re-raise known errors too, with the full traceback.

Hydra reports composition errors and task exceptions itself (several lines plus "Set the environment variable
HYDRA_FULL_ERROR=1 ..."), inside ``@hydra.main``. :func:`error_boundary` therefore sets ``HYDRA_FULL_ERROR=1``
while the command runs, which makes Hydra hand every exception on unchanged, and records the user's own choice
in ``CENTERPOSE_DEBUG`` (inherited by DDP child processes, which re-run the command).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
from typing import Iterator

__all__ = ["RunError", "debug_enabled", "describe", "error_boundary", "one_line", "print_error", "task_errors"]

DEBUG_FLAG = "--debug"
DEBUG_ENV = "CENTERPOSE_DEBUG"
# File errors that name what the user has to fix; other OSErrors count only when they carry a filename.
_FILE_ERRORS = (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError, PermissionError)
# The programs of the boundaries now active, outermost first: `centerpose predict` names itself even where
# the module it runs opens its own boundary.
_programs: list[str] = []


class RunError(RuntimeError):
    """An error a user must act on; the message says what and how, in one line where possible.

    ``details``: optional lines printed after the one error line (e.g. the keys of a checkpoint that does
    not fit a model); the first line of the message is then the error line.
    """

    details: tuple[str, ...] = ()


def one_line(text: str) -> str:
    """``text`` on one line: lines joined with "; " (or a space after ``.``/``:``), the indented items listed
    under a line ending with ``:`` joined with ", "."""
    out, listing = "", False
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if not out:
            out = line
        elif out.endswith(":"):
            out += " " + line
            listing = raw[:1].isspace() or listing
        elif listing and raw[:1].isspace():
            out += ", " + line
        else:
            listing = False
            out += (" " if out[-1] in ".;," else "; ") + line
        if line.endswith(":"):
            listing = True
    return out


# OmegaConf's context lines (the key is named once, in the message) and Hydra's search-path listing
_NOISE = re.compile(r"^\s*(full_key:|object_type=|reference_type=|Config search path:)")


def _without_noise(text: str) -> str:
    lines = text.splitlines()
    cut = next((i for i, line in enumerate(lines) if line.strip().startswith("Config search path:")), len(lines))
    return "\n".join(line for line in lines[:cut] if not _NOISE.match(line))


def _omegaconf_message(error: Exception) -> str:
    msg = one_line(_without_noise(getattr(error, "msg", None) or str(error)))
    key = getattr(error, "full_key", None)
    return f"{msg} (key '{key}')" if key and key not in msg else msg


def describe(error: BaseException) -> str | None:
    """The one-line message of a known error (see the module docstring), None for anything else."""
    if isinstance(error, RunError):
        return one_line(str(error).splitlines()[0] if error.details else str(error))
    if isinstance(error, OSError) and (isinstance(error, _FILE_ERRORS) or error.filename):
        if error.filename is not None and error.strerror:
            return f"'{error.filename}': {error.strerror}"
        return one_line(str(error))
    try:  # both are dependencies of every command; imported late so this module stays a cheap leaf
        from hydra.errors import HydraException
        from omegaconf.errors import OmegaConfBaseException
    except ImportError:  # pragma: no cover
        return None
    if isinstance(error, OmegaConfBaseException):
        return _omegaconf_message(error)
    if isinstance(error, HydraException):
        message = one_line(_without_noise(str(error)))
        cause = error.__cause__
        if isinstance(cause, (OmegaConfBaseException, HydraException)):
            message = f"{message}{'' if message.endswith(('.', ':')) else ';'} {describe(cause)}"
        return message
    return None


def debug_enabled() -> bool:
    """Whether known errors keep their traceback: ``CENTERPOSE_DEBUG`` when set (``--debug`` sets it), else
    Hydra's own switch ``HYDRA_FULL_ERROR=1``."""
    flag = os.environ.get(DEBUG_ENV)
    if flag is not None:
        return flag not in ("", "0")
    return os.environ.get("HYDRA_FULL_ERROR") == "1"


def program_name(default: str) -> str:
    """The name errors are reported under: the outermost active boundary's, else ``default``."""
    return _programs[0] if _programs else default


def print_error(error: BaseException, program: str) -> None:
    """Print ``<program>: error: <message>`` (one line; then the error's ``details`` lines, if any) to stderr."""
    message = describe(error) or one_line(str(error)) or type(error).__name__
    sys.stderr.write(f"{program_name(program)}: error: {message}\n")
    for line in getattr(error, "details", ()) or ():
        sys.stderr.write(f"{line}\n")
    sys.stderr.flush()


def _log_to_files(program: str, message: str) -> None:
    """Record the error in the run's log files (Hydra's job log) without a second console line."""
    record = logging.LogRecord(program, logging.ERROR, __file__, 0, "%s", (message,), None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


@contextlib.contextmanager
def task_errors(program: str) -> Iterator[None]:
    """Inside a Hydra task function: a known error becomes one stderr line (also written to the run's log
    file) and exit code 1, before Hydra wraps it into its own report."""
    try:
        yield
    except Exception as error:
        message = describe(error)
        if message is None or debug_enabled():
            raise
        _log_to_files(program, message)
        print_error(error, program)
        sys.exit(1)


def strip_debug_flag(argv: list[str]) -> tuple[list[str], bool]:
    """``argv`` without ``--debug``, and whether it was there."""
    kept = [a for a in argv if a != DEBUG_FLAG]
    return kept, len(kept) != len(argv)


@contextlib.contextmanager
def error_boundary(program: str) -> Iterator[None]:
    """Around a whole command (its ``__main__`` block, outside ``@hydra.main``): ``--debug`` is taken off
    ``sys.argv``; a known error, from Hydra's composition too, prints one line and exits with code 1.

    While it runs, ``HYDRA_FULL_ERROR=1`` makes Hydra pass exceptions on instead of printing them, and
    ``CENTERPOSE_DEBUG`` holds the user's choice (see the module docstring); both are restored afterwards.
    """
    sys.argv[1:], flag = strip_debug_flag(sys.argv[1:])
    saved = {key: os.environ.get(key) for key in (DEBUG_ENV, "HYDRA_FULL_ERROR")}
    os.environ[DEBUG_ENV] = "1" if flag or debug_enabled() else "0"
    os.environ["HYDRA_FULL_ERROR"] = "1"
    _programs.append(program)
    try:
        yield
    except Exception as error:
        if describe(error) is None or debug_enabled():
            raise
        print_error(error, program)
        sys.exit(1)
    finally:
        _programs.pop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
