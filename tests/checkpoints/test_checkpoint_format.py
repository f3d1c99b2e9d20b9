"""The checkpoint module: one reader, one format (save / load / load_network), old files still load."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from centerpose.checkpoints import CheckpointLoadError, load, load_network, read_checkpoint, read_tensors, save
from centerpose.checkpoints.reader import strip_prefixes
from centerpose.config import compose, resolved_config
from centerpose.keypoints import KeypointSpec

PACKAGE = Path(__file__).resolve().parents[2] / "centerpose"
TINY = ["backbone=timm", "backbone_name=resnet18", "model.net.head_conv=8", "data.input_size=128", "paths.output_dir=."]


def test_one_module_loads_files_and_one_names_the_config_key():
    sources = {p: p.read_text() for p in PACKAGE.rglob("*.py")}
    loads = sorted(str(p.relative_to(PACKAGE)) for p, s in sources.items() if re.search(r"torch\.load\(", s))
    keys = sorted(str(p.relative_to(PACKAGE)) for p, s in sources.items() if '"centerpose_config"' in s)
    assert loads == ["checkpoints/reader.py"] and keys == ["checkpoints/format.py"]


def test_reader_unwraps_and_strips_wrapper_prefixes_once(tmp_path):
    t = torch.arange(3.0)
    torch.save({"state_dict": {"module.net.a.weight": t, "module.net.b": t}, "epoch": 2}, tmp_path / "w.pth")
    assert set(read_tensors(tmp_path / "w.pth")) == {"a.weight", "b"}
    # a prefix only some keys carry is part of the name
    assert set(strip_prefixes({"model.x": t, "y": t})) == {"model.x", "y"}
    (tmp_path / "empty.ckpt").write_bytes(b"")
    with pytest.raises(CheckpointLoadError, match="empty.ckpt: file is empty"):
        read_checkpoint(tmp_path / "empty.ckpt")
    (tmp_path / "junk.ckpt").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="junk.ckpt .* does not load with weights_only=True"):
        read_tensors(tmp_path / "junk.ckpt")
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        read_tensors(tmp_path / "nope.pth")


def test_save_load_roundtrip_carries_what_inference_needs(tmp_path):
    config = resolved_config(compose("train", [*TINY, "keypoints=crowdpose"]))
    config["keypoints"] = instantiate(config["keypoints"]).to_config()
    net = instantiate(config["model"]["net"])
    save(tmp_path / "c.ckpt", net, config, epoch=7, source={"format": "test"})
    ckpt = load(tmp_path / "c.ckpt")
    assert (ckpt.arch, ckpt.input_size, ckpt.test_pad, ckpt.epoch) == ("resnet18", 128, 31, 7)
    assert ckpt.extra["centerpose_source"] == {"format": "test"}
    rebuilt, keypoints = load_network(tmp_path / "c.ckpt")
    assert isinstance(keypoints, KeypointSpec) and keypoints.num_joints == 14
    for (k, a), (k2, b) in zip(net.state_dict().items(), rebuilt.state_dict().items()):
        assert k == k2 and torch.equal(a, b)


def test_checkpoints_written_before_the_model_record_still_load(tmp_path):
    """The layout the current trainer wrote (state_dict + run config only): input size from the config,
    test pad from the config's recipe if it has one, else from the architecture's registry entry."""
    config = resolved_config(compose("train", TINY))
    net = instantiate(config["model"]["net"])
    state = {f"net.{k}": v for k, v in net.state_dict().items()}
    torch.save({"state_dict": state, "centerpose_config": {**config, "recipe": {"test_pad": 63}}}, tmp_path / "a.ckpt")
    assert (load(tmp_path / "a.ckpt").test_pad, load(tmp_path / "a.ckpt").input_size) == (63, 128)
    hg = {**config, "model": {**config["model"], "net": {**config["model"]["net"], "backbone": "hg"}}}
    torch.save({"state_dict": state, "centerpose_config": hg}, tmp_path / "b.ckpt")
    assert load(tmp_path / "b.ckpt").test_pad == 127
    torch.save({"state_dict": state}, tmp_path / "bare.ckpt")
    with pytest.raises(ValueError, match="has no centerpose_config"):
        load(tmp_path / "bare.ckpt")


def test_the_model_record_is_plain_data_that_rebuilds_without_hydra(tmp_path, monkeypatch):
    """Network build arguments, skeleton and codec (with the run's decode options) are recorded as plain data;
    the network, skeleton and codec come back from them with Hydra unavailable."""
    import dataclasses
    import json

    import hydra.utils

    from centerpose.checkpoints.format import MODEL_KEY

    config = resolved_config(
        compose("train", [*TINY, "keypoints=crowdpose", "decode.snap=weighted", "codec.joint_radius=sigma"])
    )
    config["keypoints"] = instantiate(config["keypoints"]).to_config()
    net = instantiate(config["model"]["net"])
    save(tmp_path / "c.ckpt", net, config)
    record = read_checkpoint(tmp_path / "c.ckpt")[MODEL_KEY]
    json.dumps(record)  # plain containers only
    assert record["build"]["backbone"] == "resnet18" and "_target_" not in record["build"]
    assert record["codec"]["joint_radius"] == "sigma" and record["codec"]["decode"]["snap"] == "weighted"

    def no_hydra(*args, **kwargs):
        raise AssertionError("rebuilt through Hydra")

    monkeypatch.setattr(hydra.utils, "instantiate", no_hydra)
    ckpt = load(tmp_path / "c.ckpt")
    assert ckpt.keypoints.num_joints == 14
    rebuilt = ckpt.network()
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), rebuilt.state_dict().values()))
    codec = ckpt.codec(flip_test=True)
    assert codec.joint_radius == "sigma" and codec.keypoints == ckpt.keypoints
    assert dataclasses.asdict(codec.options) == {**record["codec"]["decode"], "flip_test": True}
