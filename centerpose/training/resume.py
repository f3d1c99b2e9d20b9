"""Exact resume: the random state a training's sample stream depends on, saved in every checkpoint.

Lightning restores weights, optimizer, LR scheduler and loop counters, but not the random generators. The
order and augmentation of the next epoch's samples come from:

* torch's global generator: the ``RandomSampler`` permutation and the DataLoader's worker base seed (from
  which Lightning's ``worker_init_fn`` seeds numpy / ``random`` / torch in every worker);
* with ``num_workers=0`` in ``rng=original`` mode, numpy's and Python's global generators (geometry, colour-op
  order) and the dataset's own ``RandomState(123)`` (colour magnitudes, QUIRK D14), all in this process;
* in ``rng=per_sample`` mode, only (seed, epoch, index) besides the sampler.

:class:`ResumeState` stores all of them in the checkpoint (plain tensors and ints: ``weights_only=True``
loads them) when it is written at the end of an epoch, and puts them back when a resumed fit starts, before
the first loader is iterated. Checkpoints are written at epoch ends, so a run killed anywhere in epoch
``e`` resumes from the end of epoch ``e - 1`` and replays epoch ``e`` exactly: resume is exact at epoch
boundaries. Not exact: persistent DataLoader workers in ``rng=original`` mode (their generators live in the
worker processes; the data configs used for exactness turn ``persistent_workers`` off), mid-epoch
checkpoints (``every_n_train_steps``, SLURM's ``hpc_ckpt``), and non-deterministic GPU kernels.
"""

from __future__ import annotations

import logging
import random
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch

log = logging.getLogger("centerpose.training.resume")


def numpy_state_to_plain(state: tuple) -> dict[str, Any]:
    """``np.random.RandomState.get_state()`` as a dict of a tensor and plain numbers (``weights_only``-safe)."""
    name, keys, pos, has_gauss, cached_gauss = state
    return {
        "name": str(name),
        "keys": torch.from_numpy(np.asarray(keys, np.uint32).astype(np.int64)),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "cached_gauss": float(cached_gauss),
    }


def numpy_state_from_plain(state: dict[str, Any]) -> tuple:
    keys = state["keys"].numpy().astype(np.uint32)
    return state["name"], keys, state["pos"], state["has_gauss"], state["cached_gauss"]


def python_state_to_plain(state: tuple) -> dict[str, Any]:
    version, internal, gauss_next = state
    return {"version": int(version), "internal": torch.tensor(internal, dtype=torch.int64), "gauss_next": gauss_next}


def python_state_from_plain(state: dict[str, Any]) -> tuple:
    return state["version"], tuple(int(v) for v in state["internal"].tolist()), state["gauss_next"]


def train_dataset(trainer: pl.Trainer) -> Any:
    datamodule = getattr(trainer, "datamodule", None)
    return getattr(datamodule, "train_set", None)


def capture_rng_state(dataset: Any = None) -> dict[str, Any]:
    """Every generator the sample stream of the next epoch depends on, in checkpoint-safe form."""
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": numpy_state_to_plain(np.random.get_state()),
        "python": python_state_to_plain(random.getstate()),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    data_rng = getattr(dataset, "data_rng", None)
    if isinstance(data_rng, np.random.RandomState):
        state["dataset_color"] = numpy_state_to_plain(data_rng.get_state())
    return state


def restore_rng_state(state: dict[str, Any], dataset: Any = None) -> None:
    """Put back what :func:`capture_rng_state` saved."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(numpy_state_from_plain(state["numpy"]))
    random.setstate(python_state_from_plain(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = state["cuda"]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
    data_rng = getattr(dataset, "data_rng", None)
    if "dataset_color" in state and isinstance(data_rng, np.random.RandomState):
        data_rng.set_state(numpy_state_from_plain(state["dataset_color"]))


def epoch_row(trainer: pl.Trainer) -> dict[str, Any]:
    """The epoch-level training metrics Lightning logs right *after* the end-of-epoch checkpoint is written.

    A kill between the save and that log would lose the row from ``metrics.csv``; the checkpoint keeps it
    (``{"epoch_row": {name: value}, "epoch_row_step": step}``) so a resume can write it.
    """
    loop = trainer.fit_loop.epoch_loop
    results = getattr(loop, "_results", None)
    if results is None or not trainer.training:
        return {}
    row = {
        name: float(value)
        for name, value in results.metrics(on_step=False)["log"].items()
        if isinstance(value, torch.Tensor) and value.numel() == 1
    }
    return {"epoch_row": row, "epoch_row_step": int(loop._batches_that_stepped) - 1} if row else {}


class ResumeState(pl.Callback):
    """Saves the random state of this rank in every checkpoint and restores it when a fit resumes.

    The state is captured when the checkpoint is written (after the epoch's training and validation, which
    is also where the next epoch would start) and restored when Lightning hands the callback its state on
    resume: after the model was built (which draws random numbers), before the first loader is iterated.
    The checkpoint also keeps the epoch's metrics row (:func:`epoch_row`).
    """

    def __init__(self) -> None:
        self._trainer: pl.Trainer | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._trainer = trainer

    def state_dict(self) -> dict[str, Any]:
        trainer = self._trainer
        if trainer is None:
            return {}
        # Rank 0 writes the file, so it holds rank 0's state; with one process that is the whole state.
        return {
            "rank": trainer.global_rank,
            "epoch": trainer.current_epoch,
            "rng": capture_rng_state(train_dataset(trainer)),
            **epoch_row(trainer),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # Lightning calls this after building the model (which draws random numbers) and before the first
        # loader of the resumed fit is iterated (FitLoop.setup_data): the place to put the state back.
        if not state_dict or self._trainer is None:
            return
        trainer, dataset = self._trainer, train_dataset(self._trainer)
        if state_dict.get("rank", 0) == trainer.global_rank:
            restore_rng_state(state_dict["rng"], dataset)
        # Other DDP ranks keep their freshly seeded generators (the checkpoint holds rank 0's).
        # rng=per_sample seeds from the epoch; Lightning skips on_train_epoch_start when it resumes on an
        # epoch end, so the next epoch is set here.
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(int(state_dict.get("epoch", -1)) + 1)
        log.info("resume: random state of the checkpoint restored (end of epoch %s)", state_dict.get("epoch"))
