"""ONNX / TorchScript export of a small timm backbone with DCNs in its neck, and the onnxruntime predictor.

Exports once per module (fixtures); DLA-34, ResNet-50, resdcn_50 and Hourglass are in test_export_archs.py
(slow: their dynamo exports take minutes on a 2-core CPU).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from export_helpers import assert_same_people, make_checkpoint

from centerpose.codec import CenterPoseCodec, DecodeOptions, DecodeOptionsMismatch
from centerpose.config import compose
from centerpose.export import CHECK_RTOL, example_input, export, export_onnx, export_torchscript, sidecar_path
from centerpose.inference.onnx_runtime import people_to_image, read_metadata
from centerpose.predict import predict
from centerpose.inference.predictor import Predictor, read_image

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

SMALL = [
    "experiment=quickstart",
    "backbone_name=resnet18",
    "model.net.neck=null",
    "model.net.use_dcn=true",
    "model.net.head_conv=32",
    "model.net.joint_offsets=shared",
]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "small.ckpt", SMALL)


@pytest.fixture(scope="module")
def pytorch(ckpt) -> Predictor:
    return Predictor.from_checkpoint(ckpt, score_thresh=0.0)


def _export_cfg(ckpt: Path, out: Path, *extra: str):
    return compose("export", [f"ckpt_path={ckpt}", f"output={out}", *extra])


@pytest.fixture(scope="module")
def heads_onnx(ckpt, tmp_path_factory) -> Path:
    """Raw heads, dynamic batch and size, through the Hydra entry point's function."""
    return export(_export_cfg(ckpt, tmp_path_factory.mktemp("onnx") / "heads.onnx", "dynamic=true", "input_size=128"))


@pytest.fixture(scope="module")
def decode_onnx(ckpt, tmp_path_factory) -> Path:
    """People out, flip test inside, dynamic batch and size."""
    return export(
        _export_cfg(
            ckpt,
            tmp_path_factory.mktemp("onnx") / "people.onnx",
            "dynamic=true",
            "outputs=people",
            "decode.flip_test=true",
            "input_size=128",
        )
    )


def _images(coco_mini: Path, n: int = 2) -> list[np.ndarray]:
    return [read_image(p) for p in sorted((coco_mini / "val2017").glob("*.jpg"))[:n]]


def test_heads_onnx_has_deformconv_and_matches_pytorch(heads_onnx, pytorch):
    model = onnx.load(str(heads_onnx))
    ops = {node.op_type for node in model.graph.node}
    assert "DeformConv" in ops  # the DCNs are inside, as ONNX's op (not the CPU sampling path's gathers)
    assert {"EmbeddingBag", "GatherND"}.isdisjoint(ops)
    assert model.opset_import[0].version >= 19
    meta = read_metadata(heads_onnx)
    assert meta == json.loads(sidecar_path(heads_onnx).read_text())
    assert meta["input"]["channel_order"] == "BGR" and meta["down_ratio"] == 4 and meta["input"]["dynamic"]
    assert list(meta["heads"]) == ["hm", "wh", "hps", "reg", "hm_hp", "hp_offset"]
    assert len(meta["keypoints"]["names"]) == 17

    session = ort.InferenceSession(str(heads_onnx), providers=["CPUExecutionProvider"])
    net = pytorch.net
    for shape in [(1, 3, 128, 128), (3, 3, 96, 160)]:  # other batch and size than the traced example
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            want = net(x)[-1]
        got = session.run(None, {"image": x.numpy()})
        names = [o.name for o in session.get_outputs()]
        assert names == list(want)
        for name, g in zip(names, got):
            assert np.abs(g - want[name].numpy()).max() <= 1e-4, name


def test_decode_graph_gives_the_people_of_the_codec(decode_onnx, pytorch):
    meta = read_metadata(decode_onnx)
    assert meta["decode"] and meta["decode_options"] == DecodeOptions(K=100, flip_test=True).record()
    codec = CenterPoseCodec(pytorch.keypoints, decode=DecodeOptions(flip_test=True, tie_break="stable"))
    session = ort.InferenceSession(str(decode_onnx), providers=["CPUExecutionProvider"])
    for shape in [(2, 3, 128, 128), (1, 3, 160, 96)]:
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(2))
        (people,) = session.run(None, {"image": x.numpy()})
        assert people.shape == (shape[0], 100, 5 + 3 * 17)
        b = shape[0]
        c = torch.tensor([[shape[3] / 2, shape[2] / 2]] * b)
        s = torch.tensor([float(max(shape[2:]))] * b)
        with torch.no_grad():
            heads = pytorch.net(torch.cat([x, x.flip(3)]))[-1]
        want = codec.decode(heads, {"c": c, "s": s})
        want, want_kp = want.rows(), want.joint_scores
        got, got_kp = people_to_image(torch.from_numpy(people), c, s, shape[2:])
        for i in range(b):
            assert_same_people(torch.cat([got[i], got_kp[i]], 1).numpy(), torch.cat([want[i], want_kp[i]], 1).numpy())


@pytest.mark.parametrize("kind", ["heads", "people"])
def test_predictor_from_onnx_matches_pytorch_on_coco_mini(kind, heads_onnx, decode_onnx, pytorch, coco_mini):
    onnx_path = heads_onnx if kind == "heads" else decode_onnx
    runtime = Predictor.from_onnx(onnx_path, score_thresh=0.0)
    assert runtime.keep_res and runtime.flip_test  # a dynamic export keeps the zoo's test protocol
    images = _images(coco_mini)
    got, want = runtime.predict_rows_batch(images), pytorch.predict_rows_batch(images)
    for g, w in zip(got, want):
        assert_same_people(g, w)
    poses = runtime(images[0])
    assert poses.keypoints.shape == (100, 17, 3)


def test_predict_cli_runs_an_onnx_model_on_a_folder(decode_onnx, coco_mini, tmp_path):
    source = tmp_path / "images"  # three real images keep the test fast (a full-resolution flip pass each)
    source.mkdir()
    for image in sorted((coco_mini / "val2017").glob("*.jpg"))[:3]:
        shutil.copy(image, source / image.name)
    cfg = compose(
        "predict",
        [f"model={decode_onnx}", f"source={source}", f"paths.output_dir={tmp_path / 'out'}", "score_thresh=0.0"],
    )
    out = predict(cfg)
    detections = json.loads((out / "detections.json").read_text())
    names = sorted(p.name for p in source.glob("*.jpg"))
    assert sorted(detections) == names and len(detections[names[0]]) == 100
    assert (out / f"{Path(names[0]).stem}_pose.jpg").is_file()
    with pytest.raises(DecodeOptionsMismatch, match="flip_test=true inside the graph, got flip_test=false"):
        Predictor.from_onnx(decode_onnx, flip_test=False)
    with pytest.raises(DecodeOptionsMismatch, match="K=100 inside the graph, got K=20"):
        Predictor.from_onnx(decode_onnx, decode=DecodeOptions(flip_test=True, K=20))
    # the CLI says so in one line (RunError), before reading any image
    from centerpose.errors import RunError

    with pytest.raises(RunError, match="snap=nearest inside the graph, got snap=weighted"):
        predict(
            compose(
                "predict",
                [
                    f"model={decode_onnx}",
                    f"source={source}",
                    f"paths.output_dir={tmp_path / 'bad'}",
                    "decode.snap=weighted",
                ],
            )
        )


def test_fixed_size_export_letterboxes(pytorch, tmp_path, coco_mini):
    path = export_onnx(
        pytorch.net, tmp_path / "fixed.onnx", keypoints=pytorch.keypoints, input_hw=(128, 128), batch_size=2
    )
    runtime = Predictor.from_onnx(path, score_thresh=0.0, flip_test=False)
    assert not runtime.keep_res and runtime.input_size == 128
    images = _images(coco_mini, 3)  # 3 images x batch 2: the last chunk is padded
    ref = Predictor(
        pytorch.net, keypoints=pytorch.keypoints, keep_res=False, input_size=128, flip_test=False, score_thresh=0.0
    )
    for g, w in zip(runtime.predict_rows_batch(images), ref.predict_rows_batch(images)):
        assert_same_people(g, w)
    with pytest.raises(ValueError, match="dynamic=true"):
        Predictor.from_onnx(path, keep_res=True)


@pytest.mark.parametrize("decode", [False, True])
def test_torchscript_round_trip(decode, pytorch, tmp_path):
    options = DecodeOptions(flip_test=decode, K=20)
    path = export_torchscript(
        pytorch.net,
        tmp_path / "model.pt",
        keypoints=pytorch.keypoints,
        decode=decode,
        options=options,
        input_hw=(128, 128),
    )
    extra = {"centerpose.json": ""}
    loaded = torch.jit.load(str(path), _extra_files=extra)
    assert json.loads(extra["centerpose.json"])["decode"] is decode
    x = torch.randn(1, 3, 128, 128, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        got = loaded(x)
        if decode:
            from centerpose.inference.export_graph import DecodeGraph

            want = [DecodeGraph(pytorch.net, pytorch.keypoints, options)(x)]
            got = [got]
        else:
            want = list(pytorch.net(x)[-1].values())
    for g, w in zip(got, want):
        assert torch.abs(g - w).max() <= 1e-5


def test_decode_graph_with_issue10_switches(tmp_path, coco_mini):
    """Per-joint offsets (E16), weighted snapping (E9) and rescoring (E15) inside the graph give the people of
    the PyTorch decode with the same switches; a runtime asked for other values than the graph has says so."""
    ckpt = make_checkpoint(tmp_path / "pj.ckpt", [*SMALL[:-1], "model.net.joint_offsets=per_joint"])
    pytorch = Predictor.from_checkpoint(
        ckpt, score_thresh=0.0, keep_res=False, input_size=128, snap="weighted", rescore=True
    )
    assert pytorch.net.heads_spec["hp_offset"] == 2 * 17
    path = export(
        _export_cfg(
            ckpt,
            tmp_path / "people.onnx",
            "outputs=people",
            "decode.flip_test=true",
            "input_size=128",
            "decode.snap=weighted",
            "decode.rescore=true",
        )
    )
    meta = read_metadata(path)
    assert meta["decode_options"]["snap"] == "weighted" and meta["decode_options"]["rescore"] is True
    runtime = Predictor.from_onnx(path, score_thresh=0.0)
    assert runtime.codec.options.snap == "weighted" and runtime.codec.options.rescore
    images = _images(coco_mini)
    for g, w in zip(runtime.predict_rows_batch(images), pytorch.predict_rows_batch(images)):
        assert_same_people(g, w)
    # the switches change the people: the original's decode of the same heads differs
    original = Predictor.from_checkpoint(ckpt, score_thresh=0.0, keep_res=False, input_size=128)
    assert not np.allclose(original.predict_rows(images[0]), pytorch.predict_rows(images[0]))
    with pytest.raises(DecodeOptionsMismatch, match="snap=weighted inside the graph"):
        Predictor.from_onnx(path, snap="nearest")
    with pytest.raises(DecodeOptionsMismatch, match="rescore=true inside the graph"):
        Predictor.from_onnx(path, rescore=False)


def test_export_errors_are_clear(pytorch, tmp_path):
    with pytest.raises(ValueError, match="opset 17"):
        export_onnx(pytorch.net, tmp_path / "x.onnx", opset=17)
    with pytest.raises(ValueError, match="multiple of 32"):
        export_onnx(pytorch.net, tmp_path / "x.onnx", input_hw=(100, 128))
    with pytest.raises(ValueError, match="K=100 exceeds"):
        export_onnx(pytorch.net, tmp_path / "x.onnx", decode=True, options=DecodeOptions(), input_hw=(32, 32))
    with pytest.raises(FileNotFoundError, match="missing.onnx"):
        Predictor.from_onnx(tmp_path / "missing.onnx")
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="bad.onnx"):
        Predictor.from_onnx(tmp_path / "bad.onnx")


def test_export_check_passes_a_net_whose_bn_statistics_blow_up_noise(pytorch, tmp_path, caplog):
    """A converted original's BN statistics come from photos: noise gives heads of hundreds there, so the
    check runs on drawn scenes and compares relative to each head's scale (and logs the figure)."""
    import copy
    import logging

    net = copy.deepcopy(pytorch.net)
    for m in net.modules():  # BN statistics of images: averaged over drawn scenes and their mirrors
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    scenes = example_input((128, 128), 4)
    net.train()
    with torch.no_grad():
        net(scenes)
        net(scenes.flip(3))
    net.eval()
    with torch.no_grad():
        noise = net(torch.randn(1, 3, 128, 128, generator=torch.Generator().manual_seed(4)))[-1]
        scene = net(scenes[:1])[-1]
    assert max(float(v.abs().max()) for v in noise.values()) > 100  # the premise: an absolute 1e-3 cannot hold
    assert max(float(v.abs().max()) for v in scene.values()) < 100
    with caplog.at_level(logging.INFO, logger="centerpose.export"):
        export_onnx(net, tmp_path / "bn.onnx", keypoints=pytorch.keypoints, input_hw=(128, 128), check=True)
    line = next(r.getMessage() for r in caplog.records if "export check" in r.getMessage())
    assert "max |diff| / max |PyTorch|" in line and float(line.split("= ")[1].split()[0]) <= CHECK_RTOL


def test_files_written_before_decode_options_read_as_their_options():
    from centerpose.inference.export_metadata import recorded_decode_options

    old = {"decode": True, "flip": True, "K": 50, "fix_flip_offset": False, "snap": None, "rescore": None}
    assert DecodeOptions.from_record(recorded_decode_options(old)) == DecodeOptions(K=50, flip_test=True)
    assert recorded_decode_options({"decode": False, "decode_options": None}) is None
