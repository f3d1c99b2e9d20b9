"""Experiment-logger factories used by the ``logger`` config group."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pytorch_lightning.loggers import WandbLogger


def wandb_has_credentials() -> bool:
    """True when an API key is configured (environment variable or ``wandb login``'s netrc entry)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        return "api.wandb.ai" in netrc.read_text()
    except OSError:
        return False


def wandb_logger(project: str = "centerpose", group: str | None = None, name: str | None = None,
                 tags: list[str] | None = None, save_dir: str = ".", mode: str = "auto",
                 log_model: bool | str = False, **kwargs: Any) -> WandbLogger:
    """A :class:`WandbLogger` that goes offline instead of failing when wandb can't be reached.

    Args:
        mode: ``online``, ``offline`` or ``auto`` (online only with credentials; ``WANDB_MODE`` wins).
        group: runs of one sweep share a group, so the dashboard shows them together.
        log_model: upload checkpoints as artifacts (``True`` at the end, ``"all"`` as they are saved).
    """
    if mode not in ("auto", "online", "offline"):
        raise ValueError(f"logger.wandb.mode must be auto, online or offline, not {mode!r}")
    env_mode = os.environ.get("WANDB_MODE")
    if env_mode in ("offline", "dryrun", "disabled"):
        offline = True
    elif mode == "auto":
        offline = env_mode != "online" and not wandb_has_credentials()
    else:
        offline = mode == "offline"
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    return WandbLogger(project=project, group=group, name=name, tags=list(tags or []), save_dir=str(save_dir),
                       offline=offline, log_model=False if offline else log_model, **kwargs)
