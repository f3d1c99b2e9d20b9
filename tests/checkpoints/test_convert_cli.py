"""``python -m centerpose.convert``: original multi_pose files become centerpose checkpoints, strictly."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from test_convert import fake_state_dict, original_keys

from centerpose.checkpoints import read_state_dict
from centerpose.convert import (
    CheckpointMismatchError,
    convert_checkpoint,
    guess_arch,
    infer_heads,
    load_original,
    main,
    original_to_ours,
)
from centerpose.models import build_model
from centerpose.inference.predictor import Predictor
from centerpose.checkpoints import check_resumable

POSE_PREFIXES = ("hps.", "hm_hp.", "hp_offset.")


@pytest.fixture(scope="module")
def res50_file(tmp_path_factory):
    """A fake original res_50 multi_pose file as main.py saves it under DataParallel: (path, tensors)."""
    fake = fake_state_dict(original_keys("res_50"))
    path = tmp_path_factory.mktemp("orig") / "multi_pose_res50.pth"
    torch.save(
        {
            "epoch": 140,
            "state_dict": {"module." + k: v for k, v in fake.items()},
            "optimizer": {"state": {}, "param_groups": [{"lr": 5e-4, "params": [0]}]},
        },
        path,
    )
    return path, fake


@pytest.fixture(scope="module")
def res50_ckpt(res50_file, tmp_path_factory):
    dst = tmp_path_factory.mktemp("conv") / "res50.ckpt"
    assert main([str(res50_file[0]), str(dst)]) == 0
    return dst


@pytest.fixture(scope="module")
def res50_model():
    return build_model("res_50")


def save(tmp_path, state_dict, name="orig.pth", epoch=3):
    path = tmp_path / name
    torch.save({"epoch": epoch, "state_dict": state_dict}, path)
    return path


def test_converted_checkpoint_rebuilds_identical_net(res50_file, res50_ckpt):
    src, fake = res50_file
    ckpt = torch.load(res50_ckpt, map_location="cpu", weights_only=True)
    assert ckpt["epoch"] == 140 and ckpt["centerpose_source"]["arch"] == "res_50"
    config = ckpt["centerpose_config"]
    assert "hydra" not in config and "heads" not in config["model"]["net"]  # default pose heads
    assert config["model"]["net"]["backbone"] == "resnet50" and ckpt["centerpose_model"]["test_pad"] == 31
    assert all(k.startswith("net.") for k in ckpt["state_dict"]) and len(ckpt["state_dict"]) == len(fake)

    predictor = Predictor.from_checkpoint(res50_ckpt)
    assert predictor.pad == 31 and predictor.input_size == config["data"]["input_size"]
    state = predictor.net.state_dict()
    assert set(state) == {original_to_ours(k, "res_50") for k in fake}
    assert all(torch.equal(state[original_to_ours(k, "res_50")], v) for k, v in fake.items())
    # init_from= reads the same tensors back (fine-tuning from a converted checkpoint)
    init_state = read_state_dict(res50_ckpt, "res_50")
    assert set(init_state) == set(state) and all(torch.equal(init_state[k], v) for k, v in state.items())


def test_existing_destination_needs_overwrite(res50_file, res50_ckpt, capsys):
    assert main([str(res50_file[0]), str(res50_ckpt)]) == 1
    assert "--overwrite" in capsys.readouterr().err


@pytest.mark.parametrize("defect", ["missing", "shape", "extra"])
def test_load_original_refuses_one_defect(res50_file, res50_model, defect):
    _, fake = res50_file
    bad = dict(fake)
    if defect == "missing":
        del bad["hps.2.bias"]
    elif defect == "shape":
        bad["wh.2.weight"] = torch.zeros(3, 64, 1, 1)
    else:
        bad["layer4.2.extra.weight"] = torch.zeros(4)
    before = {k: v.clone() for k, v in res50_model.state_dict().items()}
    with pytest.raises(CheckpointMismatchError) as info:
        load_original(bad, res50_model)
    err = info.value
    assert (err.missing, err.unexpected, [k for k, *_ in err.mismatched]) == {
        "missing": (["hps.2.bias"], [], []),
        "shape": ([], [], ["wh.2.weight"]),
        "extra": ([], ["layer4.2.extra.weight"], []),
    }[defect]
    if defect == "shape":
        assert "wh.2.weight: file (3, 64, 1, 1), model (2, 64, 1, 1)" in str(err)
    assert all(torch.equal(before[k], v) for k, v in res50_model.state_dict().items())  # nothing loaded


def test_load_original_accepts_the_file_and_returns_epoch(res50_file, res50_model):
    src, fake = res50_file
    loaded = load_original(src, res50_model)
    assert loaded.epoch == 140
    assert torch.equal(res50_model.state_dict()["neck.deconv_layers.0.weight"], fake["deconv_layers.0.weight"])


def test_cli_lists_every_bad_key_and_writes_nothing(res50_file, tmp_path, capsys):
    bad = {"module." + k: v for k, v in res50_file[1].items() if k != "hps.2.bias"}
    bad["module.wh.2.weight"] = torch.zeros(3, 64, 1, 1)
    bad["module.extra.weight"] = torch.zeros(3)
    dst = tmp_path / "out.ckpt"
    assert main([str(save(tmp_path, bad)), str(dst)]) == 1
    err = capsys.readouterr().err
    for expected in (
        "1 missing from the file:\n    hps.2.bias",
        "1 unexpected in the file:\n    extra.weight",
        "wh.2.weight: file (3, 64, 1, 1), model (2, 64, 1, 1)",
        "orig.pth",
    ):
        assert expected in err
    assert not dst.exists() and not list(tmp_path.glob("*.part"))


def test_other_skeleton_is_refused_with_keypoints_hint(res50_file, tmp_path):
    fake = dict(res50_file[1])
    fake["hps.2.weight"], fake["hps.2.bias"] = torch.zeros(28, 64, 1, 1), torch.zeros(28)
    fake["hm_hp.2.weight"], fake["hm_hp.2.bias"] = torch.zeros(14, 64, 1, 1), torch.zeros(14)
    with pytest.raises(CheckpointMismatchError, match="14 keypoints") as info:
        convert_checkpoint(save(tmp_path, fake), tmp_path / "out.ckpt")
    assert sorted(k for k, *_ in info.value.mismatched) == [
        "hm_hp.2.bias",
        "hm_hp.2.weight",
        "hps.2.bias",
        "hps.2.weight",
    ]
    assert "keypoints=" in str(info.value)


def test_ctdet_file_is_refused_with_init_from_hint(res50_file, tmp_path, capsys):
    ctdet = {k: v for k, v in res50_file[1].items() if not k.startswith(POSE_PREFIXES)}
    ctdet["hm.2.weight"], ctdet["hm.2.bias"] = torch.zeros(80, 64, 1, 1), torch.zeros(80)
    src = save(tmp_path, ctdet, "ctdet_coco_res50.pth")
    assert infer_heads(ctdet, "res_50") == {"hm": 80, "wh": 2, "reg": 2}
    assert main([str(src), str(tmp_path / "out.ckpt")]) == 1
    err = capsys.readouterr().err
    assert "not a multi_pose checkpoint" in err and f"init_from={src}" in err and "hm 80" in err
    assert not (tmp_path / "out.ckpt").exists()


def test_variant_without_joint_heatmaps_keeps_its_heads(res50_file, tmp_path):
    """The original's --not_hm_hp model: no hm_hp / hp_offset; the checkpoint config says so."""
    fake = {k: v for k, v in res50_file[1].items() if not k.startswith(("hm_hp.", "hp_offset."))}
    dst = tmp_path / "out.ckpt"
    info = convert_checkpoint(save(tmp_path, fake), dst, arch="resnet50")
    assert info["heads"] == {"hm": 1, "wh": 2, "hps": 34, "reg": 2}
    net = Predictor.from_checkpoint(dst).net
    assert net.heads_spec == info["heads"] and len(net.state_dict()) == len(fake)


def test_wrong_arch_and_unreadable_files(res50_file, tmp_path):
    with pytest.raises(ValueError, match="keys are those of res_50, not dla34"):
        convert_checkpoint(res50_file[0], tmp_path / "a.ckpt", arch="dla34")
    (tmp_path / "notes.pth").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="notes.pth"):
        convert_checkpoint(tmp_path / "notes.pth", tmp_path / "b.ckpt")
    with pytest.raises(FileNotFoundError):
        convert_checkpoint(tmp_path / "absent.pth", tmp_path / "c.ckpt")
    with pytest.raises(SystemExit):  # argparse rejects an unknown --arch
        main([str(res50_file[0]), str(tmp_path / "d.ckpt"), "--arch", "vgg16"])


@pytest.mark.parametrize(
    "arch, expected",
    [("dla_34", "dla34"), ("res_50", "res_50"), ("resdcn_50", "resdcn_50"), ("hourglass", "hourglass")],
)
def test_guess_arch(arch, expected):
    # meta tensors: shapes without memory (Hourglass-104 has ~190M parameters)
    keys = {k: torch.empty(s, device="meta") for k, s in original_keys(arch).items()}
    assert guess_arch(keys) == expected
    assert guess_arch({"module." + k: v for k, v in keys.items()}) == expected
    pose = infer_heads(keys, expected)
    assert pose == {"hm": 1, "wh": 2, "hps": 34, "reg": 2, "hm_hp": 17, "hp_offset": 2}


def test_guess_arch_refuses_unknown_layouts():
    with pytest.raises(ValueError, match="--arch"):
        guess_arch({"features.0.weight": torch.zeros(1), "hm.2.weight": torch.zeros(1, 4, 1, 1)})
    with pytest.raises(ValueError, match="centerpose state dict already"):
        guess_arch({"net.backbone.body.conv1.weight": torch.zeros(1)})


def test_train_refuses_to_resume_from_weights_only(res50_ckpt, res50_file, tmp_path):
    with pytest.raises(ValueError, match=f"init_from={res50_ckpt}"):
        check_resumable(str(res50_ckpt))
    with pytest.raises(ValueError, match="convert an original CenterNet file"):
        check_resumable(str(res50_file[0]))
    full = tmp_path / "last.ckpt"
    torch.save({"state_dict": {}, "optimizer_states": [], "lr_schedulers": [], "loops": {}}, full)
    check_resumable(str(full))  # a Lightning training checkpoint passes
    check_resumable("last")  # Lightning's own names are left to Lightning
    check_resumable(None)


def test_module_help():
    out = subprocess.run(
        [sys.executable, "-m", "centerpose.convert", "--help"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0
    assert "--arch" in out.stdout and "dla34|hourglass|resnet50|resdcn_50" in out.stdout
    assert "init_from" in out.stdout
