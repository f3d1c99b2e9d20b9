"""How a training run is launched: ranks, Hydra run directories under DDP, sweeps and auto-resume.

Lightning, torchrun, SLURM and Hydra do the launching; this module only makes them agree:

* ``${cp.rank_zero:...}`` / ``${cp.rank_zero_log:...}`` config resolvers let ranks > 0 skip Hydra's
  output artefacts (``.hydra/``, the job log) when every rank runs Hydra itself (torchrun, srun, submitit).
* :func:`hydra_ddp_job` makes Lightning's DDP subprocess launcher re-run *this job* in *this job's
  directory*, also inside a ``--multirun`` sweep (Lightning re-runs ``sys.argv`` in ``hydra.run.dir``,
  which in a sweep is neither the job's directory nor a single job), and cleans up between sweep jobs.
* ``ckpt_path=auto`` (SLURM requeue, torchrun restart) and the rank are
  :mod:`centerpose.training.run_folder`'s.
* :func:`apply_sweep_defaults` puts the runs of one sweep into one wandb group.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import Any, Iterator

from omegaconf import DictConfig, OmegaConf, open_dict, read_write

# the run-folder facts training shares with the launch (re-exported: launch.env_global_rank, ...)
from centerpose.training.run_folder import env_global_rank, resolve_ckpt_path  # noqa: F401

log = logging.getLogger(__name__)

# Environment variables Lightning's subprocess launcher sets in the launching process itself; a later
# sweep job in the same process would otherwise believe its processes were created externally.
_DDP_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")
# Hydra overrides that DDP child processes keep; sweep, launcher and run-directory settings are dropped.
_CHILD_HYDRA_OVERRIDES = (
    "hydra.job.chdir",
    "hydra.job.env_set",
    "hydra.verbose",
    "hydra/job_logging",
    "hydra/hydra_logging",
    "hydra.job_logging",
    "hydra.hydra_logging",
)


def _rank_zero(value: Any, otherwise: Any = None) -> Any:
    return value if env_global_rank() == 0 else otherwise


def _rank_zero_log(path: str) -> str:
    return path if env_global_rank() == 0 else os.devnull


def register_resolvers() -> None:
    """Register ``cp.rank_zero`` (value on rank 0, else the second argument or null) and ``cp.rank_zero_log``
    (the path on rank 0, else ``os.devnull``). Idempotent."""
    OmegaConf.register_new_resolver("cp.rank_zero", _rank_zero, replace=True)
    OmegaConf.register_new_resolver("cp.rank_zero_log", _rank_zero_log, replace=True)


register_resolvers()


# ---------------------------------------------------------------------------------------------- sweeps
def hydra_mode() -> str | None:
    """``RUN`` or ``MULTIRUN`` inside a Hydra job, else None."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    mode = HydraConfig.get().mode
    return getattr(mode, "name", None if mode is None else str(mode))


def apply_sweep_defaults(cfg: DictConfig) -> None:
    """Inside a sweep, give the wandb logger (when configured) a shared ``group`` and a per-job ``name``.

    The group defaults to ``<task_name>/<sweep folder>`` and the name to ``<job number>:<swept overrides>``,
    so a sweep's runs land together on the dashboard; explicit values win.
    """
    wandb = (cfg.get("logger") or {}).get("wandb")
    if not wandb or hydra_mode() != "MULTIRUN":
        return
    from hydra.core.hydra_config import HydraConfig

    hc = HydraConfig.get()
    with open_dict(wandb):
        if wandb.get("group") is None:
            wandb.group = f"{cfg.get('task_name', 'train')}/{Path(hc.sweep.dir).name}"
        if wandb.get("name") is None:
            # What this job varies: its overrides that are not on the sweep's command line as typed.
            varied = [o for o in hc.overrides.task if o not in sys.argv[1:]]
            wandb.name = f"{hc.job.num}:{','.join(varied)}" if varied else f"job{hc.job.num}"


# ---------------------------------------------------------------------------------------------- DDP
def _spawns_hydra_children(trainer: Any) -> bool:
    from hydra.core.hydra_config import HydraConfig
    from lightning_fabric.strategies.launchers.subprocess_script import _SubprocessScriptLauncher as FabricLauncher
    from pytorch_lightning.strategies.launchers.subprocess_script import _SubprocessScriptLauncher

    launcher = getattr(trainer.strategy, "launcher", None)
    if not isinstance(launcher, (_SubprocessScriptLauncher, FabricLauncher)) or not HydraConfig.initialized():
        return False
    return not launcher.cluster_environment.creates_processes_externally


def child_argv(argv0: str) -> list[str]:
    """The command line a DDP child process re-runs: this job's own overrides, in run mode.

    Lightning appends ``hydra.run.dir``, ``hydra.job.name`` and ``hydra.output_subdir=null``; the job log
    of the children goes to the console only, so rank 0 alone writes into the run directory.
    """
    from hydra.core.hydra_config import HydraConfig

    hc = HydraConfig.get()
    kept = [o for o in hc.overrides.hydra if o.lstrip("+~").startswith(_CHILD_HYDRA_OVERRIDES)]
    return [argv0, *hc.overrides.task, *kept, "hydra.mode=RUN", "hydra/job_logging=stdout"]


@contextlib.contextmanager
def hydra_ddp_job(trainer: Any) -> Iterator[None]:
    """Wrap ``trainer.fit``/``validate`` so Lightning's DDP children join this Hydra job.

    When Lightning will start the other local ranks itself (``strategy=ddp``, ``devices>1``, no torchrun or
    SLURM), the children re-run this job's overrides with ``hydra.run.dir`` = this job's output directory
    (one output directory, also in sweeps). Afterwards the launcher's environment variables, ``sys.argv``
    and the process group are restored/torn down so the next job of a sweep can launch its own ranks.
    """
    if not _spawns_hydra_children(trainer):
        yield
        return
    from hydra.core.hydra_config import HydraConfig

    hc = HydraConfig.get()
    saved_argv, saved_dir = list(sys.argv), hc.run.dir
    saved_env = {k: os.environ.get(k) for k in _DDP_ENV}
    sys.argv = child_argv(sys.argv[0])
    with read_write(hc.run):
        hc.run.dir = hc.runtime.output_dir
    try:
        yield
    finally:
        sys.argv = saved_argv
        with read_write(hc.run):
            hc.run.dir = saved_dir
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


def finish_loggers(trainer: Any) -> None:
    """Close the wandb run of a finished job: Lightning leaves it open, and the next job of an in-process
    sweep would otherwise log into it instead of starting its own run."""
    from pytorch_lightning.loggers import WandbLogger

    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger) and getattr(logger, "_experiment", None) is not None:
            logger.experiment.finish()
