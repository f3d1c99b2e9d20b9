"""Learning-rate schedules beyond the original's step schedule (``schedule=cosine``).

The original drops the LR x0.1 at fixed epochs (``MultiStepLR``, ``schedule=1x|3x``). A short run on a small
machine (the CPU quickstart) learns faster with a higher LR that is warmed up and then annealed to zero
exactly when the run ends. Such a run is usually bounded by wall-clock time (``trainer.max_time``), not by a
number of epochs known in advance, so the cosine here can follow elapsed time as well as optimizer steps.
"""

from __future__ import annotations

import math
import re
import time
from datetime import timedelta
from typing import Any, Mapping

import torch
from torch.optim.lr_scheduler import LRScheduler

__all__ = ["WarmupCosineLR", "duration_seconds"]


def duration_seconds(duration: str | int | float | Mapping[str, int] | timedelta | None) -> float | None:
    """Seconds of a Lightning ``Trainer(max_time=...)`` value.

    Accepts what Lightning accepts (``"DD:HH:MM:SS"``, ``{"minutes": 8}``, a ``timedelta``) plus plain seconds.

    Raises:
        ValueError: a string that is not ``DD:HH:MM:SS`` or a non-positive duration.
    """
    if duration is None:
        return None
    if isinstance(duration, str):
        match = re.fullmatch(r"(\d+):(\d\d):(\d\d):(\d\d)", duration.strip())
        if not match:
            raise ValueError(f"max_time {duration!r} is not a duration in the format DD:HH:MM:SS")
        days, hours, minutes, seconds = (int(g) for g in match.groups())
        duration = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    elif isinstance(duration, Mapping):
        duration = timedelta(**{k: float(v) for k, v in duration.items()})
    seconds = duration.total_seconds() if isinstance(duration, timedelta) else float(duration)
    if seconds <= 0:
        raise ValueError(f"max_time must be positive, got {duration!r}")
    return seconds


class WarmupCosineLR(LRScheduler):
    """Linear warm-up from ``warmup_start_ratio * lr`` to ``lr``, then a cosine down to ``final_lr_ratio * lr``.

    Stepped after every optimizer step (``interval = "step"``). Progress through the cosine is the larger of
    the step fraction ``step / total_steps`` and the time fraction ``elapsed / max_time``, so a run bounded
    by wall-clock time reaches the final LR when its time is up on a slow machine as on a fast one. Elapsed
    time is kept in the state dict: a resumed run continues where it stopped.

    Args:
        optimizer: the wrapped optimizer; its current LRs are the peak LRs.
        warmup_steps: optimizer steps of linear warm-up.
        total_steps: steps of the whole schedule (warm-up included), or None.
        max_time: wall-clock length of the schedule (a ``trainer.max_time`` value), or None.
        time_fraction: the cosine ends after this fraction of ``max_time`` (leave room for a last validation).
        warmup_start_ratio: LR at step 0 relative to the peak.
        final_lr_ratio: LR at the end relative to the peak.

    Raises:
        ValueError: neither ``total_steps`` nor ``max_time`` is given (the length of the cosine is unknown).
    """

    interval = "step"

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        warmup_steps: int = 0,
        total_steps: int | None = None,
        max_time: Any = None,
        time_fraction: float = 1.0,
        warmup_start_ratio: float = 0.01,
        final_lr_ratio: float = 0.0,
        last_epoch: int = -1,
    ) -> None:
        seconds = duration_seconds(max_time)
        if total_steps is None and seconds is None:
            raise ValueError(
                "WarmupCosineLR needs total_steps or max_time to know where the cosine ends: pass "
                "trainer.max_time=DD:HH:MM:SS (or schedule.total_steps=N) with schedule=cosine"
            )
        if total_steps is not None and total_steps <= warmup_steps:
            raise ValueError(f"total_steps ({total_steps}) must exceed warmup_steps ({warmup_steps})")
        self.warmup_steps = int(warmup_steps)
        self.total_steps = None if total_steps is None else int(total_steps)
        self.budget_s = None if seconds is None else seconds * float(time_fraction)
        self.warmup_start_ratio = float(warmup_start_ratio)
        self.final_lr_ratio = float(final_lr_ratio)
        self.elapsed_before_s = 0.0  # time spent before a resume
        self._clock_start = time.monotonic()
        super().__init__(optimizer, last_epoch)

    def elapsed_s(self) -> float:
        return self.elapsed_before_s + time.monotonic() - self._clock_start

    def progress(self) -> float:
        """Fraction of the cosine done, in [0, 1]."""
        fractions = [0.0]
        if self.total_steps is not None:
            fractions.append((self.last_epoch - self.warmup_steps) / (self.total_steps - self.warmup_steps))
        if self.budget_s is not None:
            fractions.append(self.elapsed_s() / self.budget_s)
        return min(max(fractions), 1.0)

    def factor(self) -> float:
        """The LR multiplier at the current step."""
        step = self.last_epoch
        if step < self.warmup_steps:
            return self.warmup_start_ratio + (1.0 - self.warmup_start_ratio) * step / self.warmup_steps
        cosine = 0.5 * (1.0 + math.cos(math.pi * self.progress()))
        return self.final_lr_ratio + (1.0 - self.final_lr_ratio) * cosine

    def get_lr(self) -> list[float]:
        f = self.factor()
        return [base * f for base in self.base_lrs]

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state.pop("_clock_start", None)
        state["elapsed_before_s"] = self.elapsed_s()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self._clock_start = time.monotonic()
