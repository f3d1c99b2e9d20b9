"""Where the Hydra configs live, and composing them outside an entry point (tests, notebooks)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

_PACKAGE_DIR = Path(__file__).resolve().parent

# Config groups whose option names are numbers (`gpus=8`). Hydra parses an unquoted 8 as an int and
# rejects ints as group choices, so the entry points quote them before Hydra sees the command line.
NUMERIC_GROUPS = ("gpus",)
_NUMERIC_CHOICE = re.compile(r"^(?P<key>[+~]?(?:%s))=(?P<value>[0-9x,]+)$" % "|".join(NUMERIC_GROUPS))


def quote_numeric_choices(overrides: list[str]) -> list[str]:
    """``gpus=8`` -> ``gpus='8'`` and ``gpus=1,8`` -> ``gpus='1','8'``; other overrides unchanged."""
    quoted = []
    for item in overrides:
        match = _NUMERIC_CHOICE.match(item)
        if match:
            values = ",".join(f"'{v}'" for v in match["value"].split(","))
            item = f"{match['key']}={values}"
        quoted.append(item)
    return quoted


def config_dir() -> Path:
    """The ``configs/`` directory: inside the package for a wheel install, else the repo's top level."""
    for candidate in (_PACKAGE_DIR / "configs", _PACKAGE_DIR.parent / "configs"):
        if (candidate / "train.yaml").is_file():
            return candidate
    raise FileNotFoundError(
        f"centerpose configs not found in {_PACKAGE_DIR / 'configs'} or {_PACKAGE_DIR.parent / 'configs'}; "
        "reinstall the package (`pip install .`)"
    )


def compose(
    config_name: str = "train", overrides: list[str] | None = None, return_hydra_config: bool = True
) -> DictConfig:
    """Compose a config like the entry point would, with ``HydraConfig`` set so ``${hydra:...}`` resolves.

    Args:
        config_name: ``train``, ``evaluate`` or ``predict``.
        overrides: Hydra command-line overrides, e.g. ``["backbone=resnet50", "schedule=3x"]``.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = hydra_compose(
            config_name=config_name,
            overrides=quote_numeric_choices(list(overrides or [])),
            return_hydra_config=return_hydra_config,
        )
    if return_hydra_config:
        HydraConfig.instance().set_config(cfg)
    return cfg


def experiment_network(name: str):
    """The network ``python -m centerpose.train experiment=<name>`` builds (its composed ``model.net``), with
    random weights: benchmarks measure the recipe's network without restating its options."""
    from hydra.utils import instantiate

    return instantiate(compose("train", [f"experiment={name}"]).model.net)


def resolved_config(cfg: DictConfig) -> dict:
    """The run's config as plain containers, interpolations resolved, without Hydra's own node."""
    return {
        k: OmegaConf.to_container(cfg[k], resolve=True) if OmegaConf.is_config(cfg[k]) else cfg[k]
        for k in cfg
        if k != "hydra"
    }


def quote_argv() -> None:
    """Apply :func:`quote_numeric_choices` to ``sys.argv`` (call before ``@hydra.main`` parses it)."""
    sys.argv[1:] = quote_numeric_choices(sys.argv[1:])


# ---------------------------------------------------------------------------- config -> objects, once per run
def decode_options(cfg: DictConfig):
    """The run's :class:`~centerpose.codec.DecodeOptions`, built from the ``decode`` group (once per run)."""
    from hydra.utils import instantiate

    return instantiate(cfg.decode)


def build_codec(cfg: DictConfig, keypoints, options):
    """The run's one :class:`~centerpose.codec.CenterPoseCodec`: ``cfg.codec`` with the skeleton and the decode
    options handed in (``_partial_``: Hydra would turn the dataclasses into config nodes)."""
    from hydra.utils import instantiate

    return instantiate(cfg.codec, _partial_=True)(keypoints=keypoints, decode=options)


def model_file(cfg: DictConfig, *, required: bool = True) -> Path | None:
    """The weights file of evaluate / predict / export: ``model=`` (a file or a model-zoo name, resolved by
    :func:`centerpose.zoo.resolve_weights`), else ``ckpt_path=`` (a file, as given); None when neither is set
    and not ``required``."""
    from centerpose.errors import RunError

    model, ckpt_path = cfg.get("model"), cfg.get("ckpt_path")
    if model and ckpt_path:
        raise RunError(f"model={model} and ckpt_path={ckpt_path}: set one of them")
    if model:
        from centerpose.zoo import resolve_weights

        return resolve_weights(str(model), task="pose")
    if ckpt_path:
        return Path(str(ckpt_path))
    if required:
        raise RunError("no weights given: set model=<checkpoint file or model-zoo name> (or ckpt_path=)")
    return None
