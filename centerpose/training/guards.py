"""Divergence guard: a training whose loss, gradients or weights stop being finite is stopped (or the step
skipped) at once, and a non-finite model is never written as ``last`` or ``best``.

The original trains on through NaN: a whole epoch of NaN losses, a checkpoint of NaN weights, then a crash
in validation. :class:`DivergenceGuard` (in ``configs/callbacks/default.yaml``) checks, every step:

* the loss and each of its terms, before the backward pass (``on_before_backward``);
* the loss against ``explode_factor`` times the first loss of the run (``model.lr=1e3`` drives a finite
  loss from ~10 to 1e9 and the weights to 1e27 without a single NaN);
* the gradients, before the optimizer step (one fused norm per step);
* the weights, after the optimizer step;
* every tensor of a checkpoint before it is written.

``action=stop`` (default) raises :class:`DivergenceError` naming the step, the non-finite loss terms, the
learning rate and what to try; the run exits with code 1 and keeps its last finite checkpoint.
``action=skip`` drops the gradients of a step whose loss or gradients are non-finite (the optimizer leaves
the weights as they are), counts it (``train/skipped_steps``) and goes on; an exploding loss or
non-finite weights still stop the run.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import pytorch_lightning as pl
import torch

from centerpose.errors import RunError

log = logging.getLogger("centerpose.training.guards")

ADVICE = (
    "lower the learning rate (model.lr=... or model.base_lr=...), clip gradients "
    "(trainer.gradient_clip_val=...), check the data (python -m centerpose.check_data), then resume from "
    "the last finite checkpoint (ckpt_path=auto); callbacks.divergence_guard.action=skip skips "
    "non-finite steps instead of stopping"
)


class DivergenceError(RunError):
    """The training produced a non-finite (or exploding) loss, gradient or weight."""


def all_finite(tensors: list[torch.Tensor]) -> bool:
    """Whether every element of ``tensors`` is finite, with one device sync."""
    tensors = [t.detach() for t in tensors if t is not None and t.numel()]
    if not tensors:
        return True
    norms = torch._foreach_norm(tensors)
    return bool(torch.isfinite(torch.stack([n.float() for n in norms])).all())


def nonfinite_names(named: list[tuple[str, torch.Tensor]], limit: int = 5) -> list[str]:
    bad = [name for name, t in named if t is not None and not bool(torch.isfinite(t.detach()).all())]
    return bad[:limit] + ([f"... {len(bad) - limit} more"] if len(bad) > limit else [])


class DivergenceGuard(pl.Callback):
    """Stop (or skip) on non-finite loss / gradients / weights; refuse non-finite checkpoints.

    Args:
        action: ``stop`` (raise :class:`DivergenceError`, exit 1) or ``skip`` (drop the step's gradients).
        explode_factor: stop when the loss exceeds this many times the run's first loss (None: off).
        check_grads: check the gradients before every optimizer step.
        check_weights: check the weights after every optimizer step.
    """

    def __init__(
        self,
        action: str = "stop",
        explode_factor: float | None = 1e3,
        check_grads: bool = True,
        check_weights: bool = True,
    ) -> None:
        if action not in ("stop", "skip"):
            raise ValueError(f"DivergenceGuard action must be 'stop' or 'skip', got {action!r}")
        self.action = action
        self.explode_factor = explode_factor
        self.check_grads = check_grads
        self.check_weights = check_weights
        self.first_loss: float | None = None
        self.skipped = 0
        self._terms: dict[str, torch.Tensor] = {}
        self._skip_step = False
        self._hook = None

    # ------------------------------------------------------------------ state (kept across a resume)
    def state_dict(self) -> dict[str, Any]:
        return {"first_loss": self.first_loss, "skipped": self.skipped}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.first_loss = state_dict.get("first_loss")
        self.skipped = int(state_dict.get("skipped", 0))

    # ------------------------------------------------------------------ capture the loss terms
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        loss_module = getattr(pl_module, "loss", None)
        if isinstance(loss_module, torch.nn.Module) and self._hook is None:
            self._hook = loss_module.register_forward_hook(self._remember_terms)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None

    def _remember_terms(self, module: Any, inputs: Any, output: Any) -> None:
        if isinstance(output, tuple) and len(output) == 2 and isinstance(output[1], dict):
            self._terms = {k: v for k, v in output[1].items() if isinstance(v, torch.Tensor)}

    # ------------------------------------------------------------------ checks
    def _where(self, trainer: pl.Trainer) -> str:
        lr = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else float("nan")
        return (
            f"step {trainer.global_step} (epoch {trainer.current_epoch}, batch "
            f"{trainer.fit_loop.epoch_loop.batch_progress.current.ready - 1}), lr {lr:.3g}"
        )

    def _fail(self, trainer: pl.Trainer, what: str) -> None:
        raise DivergenceError(
            f"training diverged at {self._where(trainer)}: {what}. Nothing after the last "
            f"finite checkpoint was saved. Advice: {ADVICE}"
        )

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._skip_step = False
        self._terms = {}

    def on_before_backward(self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: torch.Tensor) -> None:
        value = float(loss.detach())
        if not math.isfinite(value):
            bad = [f"{k}={float(v):.4g}" for k, v in self._terms.items() if not math.isfinite(float(v))]
            what = f"loss {value} (non-finite terms: {', '.join(bad) or 'the total only'})"
            if self.action == "stop":
                self._fail(trainer, what)
            self._skip(trainer, what)
            return
        if self.first_loss is None:
            self.first_loss = value
        elif self.explode_factor and value > self.explode_factor * max(self.first_loss, 1e-12):
            terms = ", ".join(f"{k}={float(v):.4g}" for k, v in self._terms.items())
            self._fail(
                trainer,
                f"loss {value:.4g} exploded to more than {self.explode_factor:g} x the first "
                f"loss {self.first_loss:.4g} ({terms})",
            )

    def _skip(self, trainer: pl.Trainer, what: str) -> None:
        self._skip_step = True
        self.skipped += 1
        log.warning("skipping the update of %s: %s (%d skipped so far)", self._where(trainer), what, self.skipped)

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        if not self._skip_step and self.check_grads and not all_finite([p.grad for p in params]):
            names = nonfinite_names([(n, p.grad) for n, p in pl_module.named_parameters()])
            what = f"non-finite gradients in {', '.join(names)}"
            if self.action == "stop":
                self._fail(trainer, what)
            self._skip(trainer, what)
        if self._skip_step:
            for p in params:  # optimizers skip parameters without a gradient: the weights stay as they are
                p.grad = None

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self.check_weights and not all_finite(list(pl_module.parameters())):
            names = nonfinite_names(list(pl_module.named_parameters()))
            self._fail(trainer, f"non-finite weights after the optimizer step in {', '.join(names)}")
        if self.action == "skip":
            pl_module.log("train/skipped_steps", float(self.skipped), on_step=False, on_epoch=True, reduce_fx="max")

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        state = checkpoint.get("state_dict", {})
        floats = [(k, v) for k, v in state.items() if isinstance(v, torch.Tensor) and v.is_floating_point()]
        if not all_finite([v for _, v in floats]):
            names = nonfinite_names(floats)
            self._fail(trainer, f"refusing to save a checkpoint with non-finite tensors ({', '.join(names)})")
