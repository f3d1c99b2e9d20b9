"""`init_from`: start from an original ctdet/multi_pose file or a centerpose checkpoint, reporting skips."""

from __future__ import annotations

import logging

import pytest
import torch
from test_convert import fake_state_dict, original_keys

from centerpose.checkpoints import init_from_checkpoint, read_state_dict
from centerpose.models import build_model


def ctdet_keys(arch: str) -> dict[str, tuple[int, ...]]:
    """The original ctdet tensor set (METHOD.md §2.5): the pose trunk with heads hm 80, wh, reg only."""
    keys = {k: s for k, s in original_keys(arch).items() if not k.startswith(("hps.", "hm_hp.", "hp_offset."))}
    for k, s in list(keys.items()):
        if k.startswith("hm.2."):  # the output conv: 80 classes instead of 1
            keys[k] = (80, *s[1:])
    return keys


def test_init_from_ctdet_checkpoint_skips_hm_head_and_loads_the_rest(tmp_path, caplog):
    keys = ctdet_keys("res_50")
    assert len(keys) == 348  # METHOD.md §2.5: res_50 ctdet checkpoints hold 348 keys
    state = {f"module.{k}": v for k, v in fake_state_dict(keys).items()}  # DataParallel-saved, as released
    path = tmp_path / "ctdet_coco_res50.pth"
    torch.save({"epoch": 140, "state_dict": state}, path)

    net = build_model("resnet50")
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with caplog.at_level(logging.INFO, logger="centerpose.checkpoints"):
        report = init_from_checkpoint(net, path)

    assert sorted(k for k, *_ in report.skipped) == ["heads.hm.2.bias", "heads.hm.2.weight"]
    assert {k.split(".")[1] for k in report.missing} == {"hps", "hm_hp", "hp_offset"}
    assert report.unexpected == [] and len(report.loaded) == 346
    after = net.state_dict()
    assert torch.equal(after["heads.hm.2.weight"], before["heads.hm.2.weight"])  # fresh init kept
    assert torch.equal(after["heads.wh.2.weight"], state["module.wh.2.weight"])
    assert torch.equal(after["backbone.body.layer4.2.conv3.weight"], state["module.layer4.2.conv3.weight"])
    assert "skipped heads.hm.2.weight" in caplog.text


def test_init_from_centerpose_checkpoint_round_trip(tmp_path):
    src = build_model("resnet18")
    torch.save({"state_dict": {f"net.{k}": v for k, v in src.state_dict().items()}, "epoch": 3}, tmp_path / "last.ckpt")
    dst = build_model("resnet18")
    report = init_from_checkpoint(dst, tmp_path / "last.ckpt")
    assert not report.skipped and not report.missing
    assert all(torch.equal(a, b) for a, b in zip(src.state_dict().values(), dst.state_dict().values()))


def test_init_from_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="init_from=null"):
        read_state_dict(tmp_path / "missing.pth", "dla34")
    torch.save({"state_dict": {"something.else": torch.zeros(1)}}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="no tensor"):
        init_from_checkpoint(build_model("resnet50"), tmp_path / "other.pth")
