"""Config composition: every group and experiment composes, with the original's recipe numbers."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.errors import MissingConfigException
from omegaconf import OmegaConf

from centerpose.config import compose, config_dir, quote_numeric_choices

CONFIGS = config_dir()


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIGS / group).glob("*.yaml"))


@pytest.mark.parametrize("group", ["backbone", "schedule", "gpus", "data", "logger", "callbacks", "trainer",
                                   "paths", "keypoints", "model", "experiment"])
def test_every_option_of_every_group_composes(group):
    for option in options(group):
        cfg = compose("train", [f"{group}={option}"])
        # Every interpolation resolves (the hydra node itself is only complete inside a run).
        for key in cfg:
            if key != "hydra":
                node = cfg[key]
                if OmegaConf.is_config(node):
                    OmegaConf.to_container(node, resolve=True)


@pytest.mark.parametrize(
    "overrides, epochs, milestones, base_lr, base_batch",
    [
        (["backbone=dla", "schedule=1x"], 140, [90, 120], 5e-4, 128),
        (["backbone=dla", "schedule=3x"], 320, [270, 300], 5e-4, 128),
        (["backbone=resnet50", "schedule=1x"], 140, [90, 120], 5e-4, 128),
        (["backbone=resnet50", "schedule=3x"], 320, [270, 300], 5e-4, 128),
        (["backbone=hourglass", "schedule=1x"], 50, [40], 2.5e-4, 24),
        (["backbone=hourglass", "schedule=3x"], 150, [130], 2.5e-4, 24),
    ],
)
def test_schedule_is_resolved_per_backbone(overrides, epochs, milestones, base_lr, base_batch):
    cfg = compose("train", overrides)
    assert cfg.trainer.max_epochs == epochs
    assert list(cfg.model.scheduler.milestones) == milestones
    assert cfg.model.scheduler.gamma == pytest.approx(0.1)
    assert cfg.model.base_lr == pytest.approx(base_lr)
    assert cfg.model.base_batch_size == base_batch


@pytest.mark.parametrize(
    "backbone, gpus, batch, devices, nodes, lr",
    [
        ("dla", "8", 16, 8, 1, 5e-4),  # the original: 128 @ 5e-4
        ("dla", "1", 32, 1, 1, 1.25e-4),  # the original's documented single pair 32 @ 1.25e-4
        ("dla", "5", 25, 5, 1, 5e-4 * 125 / 128),
        ("dla", "2x8", 16, 8, 2, 1e-3),
        ("hourglass", "8", 3, 8, 1, 2.5e-4),  # 24 @ 2.5e-4
        ("hourglass", "5", 5, 5, 1, 2.5e-4 * 25 / 24),
    ],
)
def test_gpus_group_sets_batch_devices_and_linear_lr(backbone, gpus, batch, devices, nodes, lr):
    cfg = compose("train", [f"backbone={backbone}", f"gpus={gpus}"])
    assert cfg.data.batch_size == batch
    assert cfg.trainer.devices == devices and cfg.trainer.num_nodes == nodes
    if devices > 1:
        assert cfg.trainer.strategy == "ddp"
    global_batch = batch * devices * nodes
    assert cfg.model.base_lr * global_batch / cfg.model.base_batch_size == pytest.approx(lr)


@pytest.mark.parametrize(
    "experiment, backbone, epochs, milestones, devices",
    [
        ("multi_pose_dla_1x", "dla34", 140, [90, 120], 8),
        ("multi_pose_dla_3x", "dla34", 320, [270, 300], 8),
        ("multi_pose_hg_1x", "hourglass", 50, [40], 5),
        ("multi_pose_hg_3x", "hourglass", 150, [130], 5),
        ("multi_pose_resnet50", "resnet50", 320, [270, 300], 8),
    ],
)
def test_model_zoo_experiments(experiment, backbone, epochs, milestones, devices):
    cfg = compose("train", [f"experiment={experiment}"])
    assert cfg.model.net.backbone == backbone
    assert cfg.trainer.max_epochs == epochs
    assert list(cfg.model.scheduler.milestones) == milestones
    assert cfg.trainer.devices == devices
    assert cfg.model.optimizer._target_ == "torch.optim.Adam"


@pytest.mark.parametrize("backbone", options("backbone"))
def test_network_switches_override_without_plus(backbone):
    """The README's network switches are keys of every backbone's net config (a plain override, as documented),
    and their defaults are build_model's: the architecture's own neck and heads, one shared joint offset."""
    import inspect

    from centerpose.models import build_model

    defaults = {k: v.default for k, v in inspect.signature(build_model).parameters.items()}
    cfg = compose("train", [f"backbone={backbone}", "model.net.joint_offsets=per_joint", "model.net.neck=null"])
    assert cfg.model.net.joint_offsets == "per_joint"
    base = compose("train", [f"backbone={backbone}"]).model.net
    for key in ("joint_offsets", "neck", "neck_width", "head_conv"):
        if key in base:
            assert base[key] == defaults[key], key


def test_unknown_backbone_lists_valid_choices():
    with pytest.raises(MissingConfigException) as err:
        compose("train", ["backbone=nope"])
    for choice in options("backbone"):
        assert choice in str(err.value)


def test_numeric_group_choices_are_quoted():
    assert quote_numeric_choices(["gpus=8", "gpus=1,8", "gpus=2x8", "seed=3", "data.batch_size=8"]) == [
        "gpus='8'", "gpus='1','8'", "gpus='2x8'", "seed=3", "data.batch_size=8"]


def test_configs_directory_is_shipped_in_the_wheel():
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert '"configs" = "centerpose/configs"' in pyproject
    assert (CONFIGS / "train.yaml").is_file()
