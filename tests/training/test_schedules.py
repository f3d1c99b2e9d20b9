"""WarmupCosineLR: warm-up, cosine by steps or by wall-clock time, resume, and the schedule=cosine config."""

from __future__ import annotations

import math

import hydra
import pytest
import torch

from centerpose.training import schedules
from centerpose.config import compose
from centerpose.training.schedules import WarmupCosineLR, duration_seconds


def make(lr: float = 1.0, **kwargs) -> WarmupCosineLR:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    return WarmupCosineLR(opt, **kwargs)


def lrs(sched: WarmupCosineLR, steps: int) -> list[float]:
    out = [sched.get_last_lr()[0]]
    for _ in range(steps):
        sched.optimizer.step()
        sched.step()
        out.append(sched.get_last_lr()[0])
    return out


def test_warmup_then_cosine_by_steps():
    got = lrs(make(2.0, warmup_steps=4, total_steps=12, warmup_start_ratio=0.0), 12)
    assert got[:5] == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0])
    # cosine over steps 4..12: half way (step 8) at half the peak, zero at the end, then stays there
    assert got[8] == pytest.approx(1.0)
    assert got[12] == pytest.approx(0.0, abs=1e-12)
    assert all(a >= b for a, b in zip(got[4:], got[5:]))


def test_cosine_follows_wall_clock_time(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(schedules.time, "monotonic", lambda: now[0])
    sched = make(1.0, warmup_steps=0, max_time="00:00:01:40")  # 100 s
    now[0] += 50.0
    assert lrs(sched, 1)[-1] == pytest.approx(0.5)
    state = sched.state_dict()
    assert state["elapsed_before_s"] == pytest.approx(50.0)
    # a resumed run continues from 50 s elapsed, not from zero
    resumed = make(1.0, warmup_steps=0, max_time={"seconds": 100})
    resumed.load_state_dict(state)
    now[0] += 25.0  # 75 s in all
    assert lrs(resumed, 1)[-1] == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.75)))
    now[0] += 1000.0
    assert lrs(resumed, 1)[-1] == pytest.approx(0.0, abs=1e-12)


def test_needs_a_length_and_a_valid_duration():
    with pytest.raises(ValueError, match="trainer.max_time"):
        make()
    with pytest.raises(ValueError, match="DD:HH:MM:SS"):
        duration_seconds("8 minutes")
    assert duration_seconds("00:00:08:00") == 480.0 and duration_seconds(90) == 90.0


def test_schedule_groups_build_their_schedulers():
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    step = compose("train", ["backbone=dla", "schedule=1x"])
    assert isinstance(
        hydra.utils.instantiate(step.model.scheduler)(optimizer=opt), torch.optim.lr_scheduler.MultiStepLR
    )
    cosine = compose("train", ["schedule=cosine", "trainer.max_time=00:00:05:00"])
    sched = hydra.utils.instantiate(cosine.model.scheduler)(optimizer=opt)
    assert isinstance(sched, WarmupCosineLR) and sched.interval == "step" and sched.budget_s == 300.0
    assert cosine.trainer.max_epochs == -1
