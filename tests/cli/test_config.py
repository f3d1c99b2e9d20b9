"""Config composition: every group and experiment composes, with the original's numbers per model-zoo row; one
spelling of the decode options; configs that mirror constructors."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.errors import MissingConfigException
from omegaconf import OmegaConf

from centerpose.config import compose, config_dir, quote_numeric_choices

CONFIGS = config_dir()


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIGS / group).glob("*.yaml"))


def train_groups() -> list[str]:
    """The config groups of train.yaml: the folders of configs/ (the entry configs' own groups left out)."""
    return sorted(
        p.name
        for p in CONFIGS.iterdir()
        if p.is_dir() and p.name not in ("hydra", "hparams_search", "preset", "cluster")
    )


@pytest.mark.parametrize("group", train_groups())
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
        # Hourglass's own numbers are its zoo rows' (experiment files), not the backbone's
        (["experiment=multi_pose_hg_1x"], 50, [40], 2.5e-4, 24),
        (["experiment=multi_pose_hg_3x"], 150, [130], 2.5e-4, 24),
        (["experiment=multi_pose_dla_1x"], 140, [90, 120], 5e-4, 128),
        (["experiment=multi_pose_dla_3x"], 320, [270, 300], 5e-4, 128),
        (["experiment=multi_pose_resnet50"], 320, [270, 300], 5e-4, 128),
    ],
)
def test_schedule_and_lr_rule_per_row(overrides, epochs, milestones, base_lr, base_batch):
    cfg = compose("train", overrides)
    assert cfg.trainer.max_epochs == epochs
    assert list(cfg.model.scheduler.milestones) == milestones
    assert cfg.model.scheduler.gamma == pytest.approx(0.1)
    assert cfg.model.base_lr == pytest.approx(base_lr)
    assert cfg.model.base_batch_size == base_batch


@pytest.mark.parametrize(
    "overrides, batch, devices, nodes, lr",
    [
        (["backbone=dla", "gpus=8"], 16, 8, 1, 5e-4),  # the original: 128 @ 5e-4
        (["backbone=dla", "gpus=1"], 32, 1, 1, 1.25e-4),  # the original's documented single pair 32 @ 1.25e-4
        (["backbone=dla", "gpus=5"], 25, 5, 1, 5e-4 * 125 / 128),
        (["backbone=dla", "gpus=2x8"], 16, 8, 2, 1e-3),
        (["backbone=dla", "schedule=3x", "gpus=8"], 16, 8, 1, 5e-4),
        (["experiment=multi_pose_hg_1x"], 5, 5, 1, 2.5e-4 * 25 / 24),
        (["experiment=multi_pose_hg_1x", "gpus=8", "data.batch_size=3"], 3, 8, 1, 2.5e-4),  # 24 @ 2.5e-4
    ],
)
def test_gpus_group_sets_batch_devices_and_linear_lr(overrides, batch, devices, nodes, lr):
    cfg = compose("train", overrides)
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
        "gpus='8'",
        "gpus='1','8'",
        "gpus='2x8'",
        "seed=3",
        "data.batch_size=8",
    ]


def test_configs_directory_is_shipped_in_the_wheel():
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert '"configs" = "centerpose/configs"' in pyproject
    assert (CONFIGS / "train.yaml").is_file()


def _targets(node, path=""):
    """(path, node) of every mapping under ``node`` (a plain container)."""
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _targets(value, f"{path}.{key}" if path else key)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _targets(value, f"{path}[{i}]")


def test_no_shared_bags_and_one_decode_spelling():
    """Every top-level node of the train config is one constructor's arguments (or a group's own switches), no
    node is read by several groups (no `recipe`), and the decode options are spelled once: the decode group."""
    for name in ("train", "evaluate", "predict", "export"):
        cfg = compose(name, ["source=x"] if name == "predict" else [])
        assert "recipe" not in cfg and "gpus" not in cfg, name
        assert cfg.decode._target_ == "centerpose.codec.DecodeOptions", name
        if "codec" in cfg:
            assert "decode" not in cfg.codec and "keypoints" not in cfg.codec
    text = "\n".join(p.read_text() for p in CONFIGS.rglob("*.yaml"))
    for old in ("${codec}", "recipe:", "${recipe", "codec.decode", "flip_test: ${", "corrected_radius: ${"):
        assert old not in text, old


def test_decode_group_lists_every_field_of_decode_options():
    import dataclasses

    from centerpose.codec import DecodeOptions

    fields = {f.name for f in dataclasses.fields(DecodeOptions)}
    for option in options("decode"):
        cfg = compose("evaluate", [f"decode={option}"])
        assert set(cfg.decode) - {"_target_"} == fields, option
    test, val = compose("evaluate", []).decode, compose("train", []).decode
    assert (test.sigmoid, test.flip_test, test.K) == ("plain", True, 100)  # the original's test.py
    assert (val.sigmoid, val.flip_test) == ("clamp", False)  # the original trainer's validation


@pytest.mark.parametrize("name", ["evaluate", "predict", "export"])
def test_verbs_default_to_the_test_decode_and_take_a_model_key(name):
    cfg = compose(
        name,
        ["model=weights.ckpt", "decode.snap=weighted", "decode.K=50", *(["source=x"] if name == "predict" else [])],
    )
    assert cfg.model == "weights.ckpt" and cfg.ckpt_path is None
    assert (cfg.decode.snap, cfg.decode.K, cfg.decode.flip_test) == ("weighted", 50, True)


@pytest.mark.parametrize(
    "name, old",
    [
        ("evaluate", "test.flip=false"),
        ("evaluate", "test.K=50"),
        ("evaluate", "test.snap=weighted"),
        ("evaluate", "test.corrected_radius=true"),
        ("predict", "flip_test=false"),
        ("predict", "snap=weighted"),
        ("export", "flip=false"),
        ("export", "K=50"),
        ("export", "rescore=true"),
        ("train", "codec.decode.K=50"),
        ("train", "model.evaluator.tie_break=stable"),
    ],
)
def test_old_decode_spellings_fail(name, old):
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException):
        compose(name, [old, *(["source=x"] if name == "predict" else [])])


def test_train_options_are_declared_with_the_originals_defaults():
    import inspect

    from centerpose.data.coco import CocoPoseDataset

    params = inspect.signature(CocoPoseDataset).parameters
    declared = compose("train", []).data.train_options
    assert declared and all(declared[k] == params[k].default for k in declared)
    assert compose("train", ["data.train_options.rng=per_sample"]).data.train_options.rng == "per_sample"


def test_the_model_selection_key_resolves_files_and_keeps_ckpt_path(tmp_path):
    from centerpose.config import model_file
    from centerpose.errors import RunError

    weights = tmp_path / "w.ckpt"
    weights.write_bytes(b"")
    assert model_file(compose("evaluate", [f"model={weights}"])) == weights
    assert str(model_file(compose("evaluate", ["ckpt_path=elsewhere.ckpt"]))) == "elsewhere.ckpt"
    assert model_file(compose("evaluate", []), required=False) is None
    with pytest.raises(RunError, match="set one of them"):
        model_file(compose("evaluate", [f"model={weights}", "ckpt_path=x.ckpt"]))
    with pytest.raises(RunError, match="no-such-model"):
        model_file(compose("evaluate", ["model=no-such-model"]))


def test_hydra_itself_refuses_int_group_choices_so_the_quoting_stays():
    """Why :func:`quote_numeric_choices` exists: Hydra parses ``gpus=8`` as an int and refuses it as a choice."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with (
        initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"),
        pytest.raises(Exception, match="must be a string"),
    ):
        hydra_compose(config_name="train", overrides=["gpus=8"])
    assert compose("train", ["gpus=8"]).trainer.devices == 8
