"""Type check of a composed config against the constructors it maps onto, before anything is built.

Every node with a ``_target_`` is a call: each of its keys whose parameter is annotated with a simple type
(``int``, ``float``, ``bool``, ``str``, their ``Optional`` / unions) must hold a value of that type.
``data.batch_size=abc`` then fails at start with the key, the value and the expected type, instead of
after "global batch abc x 1 = abc" deep inside Lightning (an int is accepted for a float, a bool is not
accepted for a number).
"""

from __future__ import annotations

import inspect
import types
import typing
from typing import Any, Iterator

from hydra.utils import get_method
from omegaconf import DictConfig, ListConfig, OmegaConf

from centerpose.errors import RunError

_SIMPLE = (bool, int, float, str, type(None))


class ConfigTypeError(RunError, TypeError):
    """A config value does not have the type its constructor parameter expects."""


def simple_types(annotation: Any) -> tuple[type, ...] | None:
    """The accepted simple types of an annotation, or None when it is not (only) simple types."""
    if annotation in _SIMPLE:
        return (annotation,)
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        parts = [simple_types(a) for a in typing.get_args(annotation)]
        if all(parts):
            return tuple(t for p in parts for t in p)
    return None


def accepts(value: Any, allowed: tuple[type, ...]) -> bool:
    if value is None:
        return type(None) in allowed
    if isinstance(value, bool):
        return bool in allowed
    if isinstance(value, int):
        return int in allowed or float in allowed
    if isinstance(value, float):
        return float in allowed
    if isinstance(value, str):
        return str in allowed
    return True  # containers, objects: not this check's business


def _hints(target: str) -> dict[str, Any]:
    try:
        fn = get_method(target)
    except Exception:
        return {}
    call = fn.__init__ if inspect.isclass(fn) else fn
    try:
        hints = typing.get_type_hints(call)
    except Exception:  # unresolvable forward references: check nothing rather than guess
        return {}
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return {}
    return {name: hints[name] for name in params if name in hints}


def _nodes(cfg: Any, path: str) -> Iterator[tuple[str, DictConfig]]:
    if isinstance(cfg, DictConfig):
        if "_target_" in cfg:
            yield path, cfg
        for key in cfg:
            if key == "hydra":
                continue
            try:
                child = cfg._get_node(key)
            except Exception:
                continue
            if isinstance(child, (DictConfig, ListConfig)):
                yield from _nodes(child, f"{path}.{key}" if path else str(key))
    elif isinstance(cfg, ListConfig):
        for i, child in enumerate(cfg._iter_ex(resolve=False)):
            if isinstance(child, (DictConfig, ListConfig)):
                yield from _nodes(child, f"{path}[{i}]")


def type_errors(cfg: DictConfig) -> list[str]:
    """One line per config value whose type does not fit its constructor parameter."""
    errors = []
    for path, node in _nodes(cfg, ""):
        target = node.get("_target_")
        hints = _hints(target) if isinstance(target, str) else {}
        for key, annotation in hints.items():
            if key not in node:
                continue
            allowed = simple_types(annotation)
            if not allowed:
                continue
            try:
                value = OmegaConf.select(node, key, throw_on_missing=False)
            except Exception:
                continue  # an interpolation that does not resolve here is reported by its user
            if OmegaConf.is_config(value) or value == "???":
                continue
            if not accepts(value, allowed):
                names = " or ".join(sorted({"None" if t is type(None) else t.__name__ for t in allowed}))
                full = f"{path}.{key}" if path else key
                errors.append(
                    f"{full}={value!r}: expected {names} ({target.rsplit('.', 1)[-1]}'s "
                    f"'{key}' parameter), got {type(value).__name__}"
                )
    return errors


def check_config_types(cfg: DictConfig) -> None:
    """Raise :class:`ConfigTypeError` listing every wrongly typed value of ``cfg``."""
    errors = type_errors(cfg)
    if errors:
        raise ConfigTypeError("wrong config value type: " + "; ".join(errors))
