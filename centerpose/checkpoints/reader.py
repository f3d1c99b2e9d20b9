"""The one place a checkpoint or weights file is read: ``torch.load(weights_only=True)``, nothing else.

* :func:`read_checkpoint` — a torch file as a dict (centerpose / Lightning ``.ckpt``, original ``.pth``),
  optionally memory-mapped (to look at keys or config without reading the tensors); a legacy non-zip
  file cannot be mapped and is read whole. ``weights_only=True`` is passed explicitly, so
  ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` cannot turn a load into arbitrary code execution.
* :func:`read_tensors` — a flat ``{name: tensor}`` from a weights file (``.safetensors`` or torch; bare,
  or wrapped in ``state_dict`` / ``model``), wrapper prefixes stripped once by :func:`strip_prefixes`.

Every failure names the file and the reason in one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from centerpose.errors import RunError

#: Prefixes a wrapper puts in front of every key: DataParallel/DDP ``module.``, a wrapping module's
#: ``model.`` / ``net.`` (a LightningModule's attribute).
WRAPPER_PREFIXES = ("module.", "model.", "net.")
#: Keys under which files nest their state dict.
STATE_DICT_KEYS = ("state_dict", "model")

MapLocation = str | torch.device | Callable[..., Any] | None


class CheckpointLoadError(RunError, ValueError):
    """A checkpoint file cannot be read (truncated, empty, not a checkpoint, unsafe to unpickle)."""


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def read_checkpoint(
    path: str | Path, mmap: bool = False, map_location: MapLocation = "cpu", what: str = "checkpoint"
) -> dict[str, Any]:
    """``torch.load(path, weights_only=True)`` of a file that must hold a dict.

    Args:
        path: the file.
        mmap: map the tensors instead of reading them (falls back to a full read for legacy files).
        map_location: where tensors go (``"cpu"``; Lightning passes its own).
        what: the file's role in error messages (``checkpoint``, ``init_from checkpoint``, ...).

    Raises:
        FileNotFoundError: no such file.
        CheckpointLoadError: (also a ValueError) empty, unreadable or not a dict.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointLoadError(f"{what} {path}: file is empty (0 bytes; an interrupted save?)")
    try:
        try:
            obj = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
        except RuntimeError:
            if not mmap:
                raise
            obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # zip / pickle / unpickler errors of every kind: the file and the reason, one line
        raise CheckpointLoadError(
            f"{what} {path} ({size} bytes) does not load with weights_only=True: {type(e).__name__}: {_first_line(e)}"
        ) from e
    if not isinstance(obj, dict):
        raise CheckpointLoadError(f"{what} {path}: holds a {type(obj).__name__}, not a checkpoint dict")
    return obj


def strip_prefixes(
    state: Mapping[str, torch.Tensor], prefixes: tuple[str, ...] = WRAPPER_PREFIXES
) -> dict[str, torch.Tensor]:
    """Remove each wrapper prefix that *every* key carries, outermost first (``module.net.x`` -> ``x``).

    A prefix only some keys carry is a real name (``model.`` of a timm ``features_only`` dict is not
    touched unless all keys have it).
    """
    state = dict(state)
    stripped = True
    while stripped and state:
        stripped = False
        for prefix in prefixes:
            if all(k.startswith(prefix) for k in state):
                state = {k[len(prefix) :]: v for k, v in state.items()}
                stripped = True
    return state


def state_dict_of(obj: Any) -> Any:
    """The state dict inside a checkpoint dict: ``obj['state_dict']`` or ``obj['model']`` if present, else obj."""
    for key in STATE_DICT_KEYS:
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    return obj


def is_tensor_dict(obj: Any) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def read_tensors(path: str | Path, what: str = "weights file") -> dict[str, torch.Tensor]:
    """The tensors of a weights file (``.safetensors`` or torch), unwrapped and with wrapper prefixes removed.

    Raises:
        FileNotFoundError: no such file.
        ValueError: unreadable (:class:`CheckpointLoadError`), or no state dict of tensors inside.
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        if not path.is_file():
            raise FileNotFoundError(f"{what} not found: {path}")
        from safetensors.torch import load_file

        obj: Any = load_file(str(path))
    else:
        obj = read_checkpoint(path, what=what)
    obj = state_dict_of(obj)
    if not is_tensor_dict(obj):
        raise ValueError(f"{path}: expected a state dict of tensors")
    return strip_prefixes(obj)
