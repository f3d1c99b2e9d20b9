"""What a centerpose checkpoint holds, and the only code that knows its layout.

A centerpose checkpoint is a Lightning checkpoint (``.ckpt``, read with ``weights_only=True``) with:

=======================  ==========================================================================
key                      holds
=======================  ==========================================================================
``state_dict``           the network's tensors under ``net.<our key>`` (the LightningModule's ``net``)
``centerpose_config``    the run config, resolved to plain containers (``model.net`` rebuilds the
                         network; ``keypoints`` is the skeleton itself, :meth:`KeypointSpec.to_config`)
``centerpose_model``     what inference needs, as plain data readable without Hydra: ``arch`` (the
                         registry entry's name, or the timm model name), ``input_size``, ``test_pad``,
                         ``build`` (``build_model``'s arguments but the skeleton and the ImageNet
                         start), ``keypoints`` (:class:`KeypointSpec`'s fields) and ``codec``
                         (:class:`CenterPoseCodec`'s arguments, ``decode`` = the run's
                         :class:`DecodeOptions` as a dict)
``centerpose_source``    converted files only: the original file, its arch, epoch and heads
``epoch``, ...           Lightning's: ``global_step``; training state (:data:`RESUME_KEYS`) if it can resume
=======================  ==========================================================================

Checkpoints written before these records existed still load: the network and skeleton are then rebuilt from the
run config (``model.net``, ``keypoints``, with Hydra), input size and test pad read from it (``data.input_size``,
the old ``recipe.test_pad``) or the architecture's registry entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from centerpose.checkpoints.reader import CheckpointLoadError, read_checkpoint
from centerpose.keypoints import COCO_PERSON, KeypointSpec

CONFIG_KEY = "centerpose_config"
MODEL_KEY = "centerpose_model"
SOURCE_KEY = "centerpose_source"
#: The LightningModule attribute holding the network: its tensors are ``net.<key>`` in ``state_dict``.
NET_PREFIX = "net."
#: The keys a checkpoint needs to resume a training (not only to load weights).
RESUME_KEYS = ("state_dict", "optimizer_states", "lr_schedulers", "loops", "epoch", "global_step")
DEFAULT_INPUT_SIZE = 512


def net_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The network's tensors of a CenterPoseModule state dict (``net.`` prefix removed, other keys dropped)."""
    return {k[len(NET_PREFIX) :]: v for k, v in state.items() if k.startswith(NET_PREFIX)}


def _test_pad_of(arch: str | None) -> int | None:
    from centerpose.models.registry import get_arch

    try:
        return get_arch(arch).test_pad if arch else None
    except ValueError:
        return None


#: ``model.net`` keys that are not the network's shape: the skeleton (recorded apart) and the ImageNet start.
_NOT_BUILD = ("_target_", "keypoints", "pretrained", "pretrained_file", "pretrained_tag")


def _plain(node: Any) -> Any:
    """``node`` without its ``_target_`` (a mapping), or None."""
    return {k: v for k, v in node.items() if k != "_target_"} if isinstance(node, Mapping) else None


def model_record(config: Mapping[str, Any], net: nn.Module | None = None) -> dict[str, Any]:
    """The ``centerpose_model`` entry: architecture, input size, test pad, and the plain-data recipe of the
    network (``build``), its skeleton (``keypoints``) and its codec (``codec``, with ``decode``).

    ``arch`` is ``net.arch`` (else the config's ``model.net.backbone``); the test pad is its registry
    entry's; the input size is the run's ``data.input_size``. A part the run config does not hold as plain
    ``_target_`` data (``keypoints=auto`` before it was resolved) is left None.
    """
    net_cfg = (config.get("model") or {}).get("net") or {}
    arch = getattr(net, "arch", "") or net_cfg.get("backbone")
    from centerpose.models.registry import canonical_arch

    arch = canonical_arch(arch) if arch else None
    keypoints = config.get("keypoints") or {}
    codec = _plain(config.get("codec"))
    if codec is not None:
        codec.pop("keypoints", None)
        codec["decode"] = _plain(config.get("decode")) or _plain(codec.get("decode"))
    return {
        "arch": arch,
        "input_size": (config.get("data") or {}).get("input_size"),
        "test_pad": _test_pad_of(arch),
        "build": {k: v for k, v in net_cfg.items() if k not in _NOT_BUILD} if net_cfg else None,
        "keypoints": _plain(keypoints) if keypoints.get("_target_") == "centerpose.keypoints.KeypointSpec" else None,
        "codec": codec,
    }


def describe(checkpoint: dict[str, Any], config: Mapping[str, Any], net: nn.Module | None = None) -> None:
    """Add the run config and the model record to a checkpoint dict (``LightningModule.on_save_checkpoint``)."""
    checkpoint[CONFIG_KEY] = config
    checkpoint[MODEL_KEY] = model_record(config, net)


def run_config(checkpoint: Mapping[str, Any]) -> dict | None:
    """The run config stored in a checkpoint dict, or None (``LightningModule.on_load_checkpoint``)."""
    return checkpoint.get(CONFIG_KEY)


def missing_resume_state(checkpoint: Mapping[str, Any]) -> list[str]:
    """The :data:`RESUME_KEYS` a checkpoint dict lacks (empty: a training can resume from it)."""
    return [k for k in RESUME_KEYS if k not in checkpoint]


@dataclass
class CenterPoseCheckpoint:
    """A centerpose checkpoint, read.

    Attributes:
        path: the file.
        state_dict: the network's tensors, our key names (no ``net.`` prefix).
        config: the run config (plain containers).
        arch: architecture name (``dla34``, ``res_50``, ``hourglass``, a timm name) or None if unknown.
        input_size: the training input side (the letterbox size at inference).
        test_pad: canvas multiple − 1 of the architecture (31; 127 for Hourglass).
        epoch: finished epochs as stored (0 if absent).
        extra: the other top-level entries (Lightning's, ``centerpose_source``, ...).
    """

    path: Path
    state_dict: dict[str, torch.Tensor]
    config: dict
    arch: str | None
    input_size: int
    test_pad: int
    epoch: int = 0
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    record: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def keypoints(self) -> KeypointSpec:
        """The skeleton the heads were trained for (COCO person for checkpoints that do not say)."""
        if self.record.get("keypoints"):
            return KeypointSpec(**self.record["keypoints"])
        if "keypoints" not in self.config:
            return COCO_PERSON
        from hydra.utils import instantiate

        return instantiate(self.config["keypoints"])

    def network(self) -> nn.Module:
        """Rebuild the network (from the plain ``build`` record; older files: ``config.model.net`` through
        Hydra) and load every tensor strictly."""
        if self.record.get("build") is not None:
            from centerpose.models.centernet import build_model

            net = build_model(**self.record["build"], keypoints=self.keypoints)
        else:
            from hydra.utils import instantiate

            net = instantiate(self.config["model"]["net"])
        net.load_state_dict(self.state_dict)
        return net

    def codec(self, **decode: Any):
        """The run's :class:`~centerpose.codec.CenterPoseCodec` (encode switches and decode options as trained and
        validated), decode options changed by name with ``decode``; None for files that do not record it."""
        record = self.record.get("codec")
        if not record:
            return None
        from centerpose.codec.codec import CenterPoseCodec, DecodeOptions

        args = {k: v for k, v in record.items() if k != "decode"}
        options = DecodeOptions(**(record.get("decode") or {})).replace(**decode)
        return CenterPoseCodec(self.keypoints, **args, decode=options)


def load(path: str | Path, mmap: bool = False) -> CenterPoseCheckpoint:
    """Read a centerpose checkpoint (``weights_only=True``).

    Raises:
        FileNotFoundError: no such file.
        ValueError: unreadable (:class:`~centerpose.checkpoints.reader.CheckpointLoadError`), or not
            written by centerpose (no run config; original files go through ``centerpose.convert``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: '{path}'")
    ckpt = read_checkpoint(path, mmap=mmap)
    config = ckpt.get(CONFIG_KEY)
    if not config:
        raise ValueError(
            f"'{path}' has no {CONFIG_KEY}: not a checkpoint written by centerpose.train "
            "(convert original CenterNet files with centerpose.convert)"
        )
    record = ckpt.get(MODEL_KEY) or {}
    arch = record.get("arch") or (config.get("model") or {}).get("net", {}).get("backbone")
    test_pad = record.get("test_pad")
    if test_pad is None:  # written before centerpose_model: the config's recipe, else the architecture's
        test_pad = (config.get("recipe") or {}).get("test_pad") or _test_pad_of(arch) or 31
    input_size = record.get("input_size") or (config.get("data") or {}).get("input_size") or DEFAULT_INPUT_SIZE
    extra = {k: v for k, v in ckpt.items() if k not in ("state_dict", CONFIG_KEY, MODEL_KEY)}
    return CenterPoseCheckpoint(
        path,
        net_state_dict(ckpt.get("state_dict") or {}),
        config,
        arch,
        int(input_size),
        int(test_pad),
        int(ckpt.get("epoch") or 0),
        extra,
        dict(record),
    )


def load_network(path: str | Path) -> tuple[nn.Module, KeypointSpec]:
    """The network of a centerpose checkpoint, weights loaded strictly, and the skeleton its heads predict."""
    ckpt = load(path)
    return ckpt.network(), ckpt.keypoints


def checkpoint_keypoints(path: str | Path) -> KeypointSpec | None:
    """The skeleton a centerpose checkpoint was trained for (its plain record, else its stored ``keypoints``
    config), or None."""
    if not Path(path).is_file():
        return None  # the loader that follows names the missing file
    ckpt = read_checkpoint(path, mmap=True)  # mmap: only the records are read
    recorded = (ckpt.get(MODEL_KEY) or {}).get("keypoints")
    if recorded:
        return KeypointSpec(**recorded)
    config = ckpt.get(CONFIG_KEY)
    if not config or "keypoints" not in config:
        return None
    from hydra.utils import instantiate

    return instantiate(config["keypoints"])


def save(
    path: str | Path, net: nn.Module, config: Mapping[str, Any], epoch: int = 0, source: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Write a weights-only centerpose checkpoint (no optimizer or loop state) atomically; returns the dict.

    It serves ``ckpt_path=`` of evaluate / predict / ``train=false`` and ``init_from=``; training refuses to
    resume from it (:func:`check_resumable`).
    """
    import pytorch_lightning as pl

    from centerpose.checkpoints.safe_io import SafeCheckpointIO

    checkpoint: dict[str, Any] = {
        "epoch": int(epoch),
        "global_step": 0,
        "pytorch-lightning_version": pl.__version__,
        "state_dict": {f"{NET_PREFIX}{k}": v for k, v in net.state_dict().items()},
    }
    describe(checkpoint, dict(config), net)
    if source is not None:
        checkpoint[SOURCE_KEY] = dict(source)
    SafeCheckpointIO().save_checkpoint(checkpoint, path)  # temporary file + rename: never half-written
    return checkpoint


def check_resumable(ckpt_path: str | None) -> None:
    """Refuse a weights-only file as ``ckpt_path=`` of a training, which Lightning would fail on with a KeyError.

    Converted original checkpoints (``centerpose.convert``) and original ``.pth`` files hold no optimizer,
    scheduler or loop state: they start a training through ``init_from=``. Lightning's own names (``last``,
    ``best``, ``hpc``) and unreadable files are left for Lightning to handle.
    """
    if not ckpt_path or not Path(ckpt_path).is_file():
        return
    # mmap: only the top-level keys are looked at (Lightning reads the file again). A file that does not
    # load is left for the resume path's own error.
    try:
        ckpt = read_checkpoint(ckpt_path, mmap=True)
    except CheckpointLoadError:
        return
    if not {"optimizer_states", "lr_schedulers"} <= set(ckpt):
        other_uses = (
            "evaluate, predict and train=false accept it as ckpt_path="
            if CONFIG_KEY in ckpt
            else "for evaluate / predict, convert an original CenterNet file with centerpose.convert"
        )
        raise ValueError(
            f"ckpt_path={ckpt_path} holds weights only (no optimizer, LR-scheduler or loop "
            "state), so training cannot resume from it. Start a training from its weights with "
            f"init_from={ckpt_path} instead ({other_uses})."
        )
