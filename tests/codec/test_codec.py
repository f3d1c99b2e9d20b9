"""CenterPoseCodec, DecodeOptions and Poses: one configured codec, bit-for-bit the functions it wraps."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from centerpose.codec import (
    CenterPoseCodec,
    DecodeOptions,
    DecodeOptionsMismatch,
    Poses,
    decode,
    flip_merge,
    sigmoid_outputs,
    to_image_coords,
)
from centerpose.codec.encode import encode_pose_targets
from centerpose.codec.pipeline import decode_heads, decode_probabilities, stack_with_mirrors
from centerpose.errors import RunError
from centerpose.keypoints import COCO_PERSON

J = COCO_PERSON.num_joints


def _heads(batch: int, h: int = 16, w: int = 20, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "hm": torch.randn(batch, 1, h, w, generator=g),
        "wh": torch.rand(batch, 2, h, w, generator=g) * 8,
        "hps": torch.randn(batch, 2 * J, h, w, generator=g),
        "reg": torch.rand(batch, 2, h, w, generator=g),
        "hm_hp": torch.randn(batch, J, h, w, generator=g),
        "hp_offset": torch.rand(batch, 2, h, w, generator=g),
    }


META = {"c": torch.tensor([[40.0, 30.0], [50.0, 20.0]]), "s": torch.tensor([80.0, 64.0], dtype=torch.float64)}


@pytest.mark.parametrize(
    "options",
    [
        DecodeOptions(K=30),
        DecodeOptions(K=30, sigmoid="clamp", tie_break="stable"),
        DecodeOptions(K=30, flip_test=True, fix_flip_offset=True, snap="nearest_valid"),
        DecodeOptions(K=20, hm_hp_thresh=0.3, nms_kernel=5, rescore=True),
    ],
)
def test_codec_decode_is_the_decode_function_bit_for_bit(options):
    codec = CenterPoseCodec(input_size=64, decode=options)
    heads = _heads(4 if options.flip_test else 2)
    poses = codec.decode(heads, META, scale=1.5)
    probs = (
        flip_merge(sigmoid_outputs(heads), fix_offset=options.fix_flip_offset)
        if options.flip_test
        else sigmoid_outputs(heads, clamp=options.sigmoid == "clamp")
    )
    dets, kp = decode(
        probs,
        K=options.K,
        hm_hp_thresh=options.hm_hp_thresh,
        tie_break=options.tie_break,
        snap=options.snap,
        rescore=options.rescore,
        nms_kernel=options.nms_kernel,
        return_kp_scores=True,
    )
    rows = to_image_coords(dets, META["c"], META["s"], (16, 20), scale=1.5)
    assert poses.boxes.shape == (2, options.K, 4) and poses.keypoints.shape == (2, options.K, J, 3)
    assert torch.equal(poses.rows(), rows) and torch.equal(poses.joint_scores, kp)
    cells, cell_kp = decode_heads(heads, options, COCO_PERSON)
    assert torch.equal(cells, dets) and torch.equal(cell_kp, kp)


def test_decode_options_change_the_people():
    heads = _heads(2)
    heads["wh"] = heads["wh"] * 4  # boxes large enough for joints to snap
    base = CenterPoseCodec(input_size=64, decode=DecodeOptions(K=30)).decode(heads, META).rows()
    for change in (dict(hm_hp_thresh=0.9), dict(nms_kernel=5)):
        other = CenterPoseCodec(input_size=64, decode=DecodeOptions(K=30, **change)).decode(heads, META).rows()
        assert not torch.equal(other, base), change


def test_decode_options_record_and_check():
    options = DecodeOptions(K=50, flip_test=True, snap="weighted")
    assert options.record() == dataclasses.asdict(options) and DecodeOptions.from_record(options.record()) == options
    assert DecodeOptions.from_record({"K": 50}) == DecodeOptions(K=50)  # files written before a field existed
    options.check_matches(options.record(), "m.onnx")
    with pytest.raises(
        DecodeOptionsMismatch,
        match=r"^'m.onnx' was exported with snap=nearest inside the graph, "
        r"got snap=weighted; export again with snap=weighted$",
    ):
        options.check_matches(DecodeOptions(K=50, flip_test=True).record(), "m.onnx")
    assert issubclass(DecodeOptionsMismatch, RunError)
    options.check_matches(DecodeOptions(K=50, flip_test=True).record(), "m.onnx", names=["K", "flip_test"])
    with pytest.raises(ValueError, match="nms_kernel"):
        DecodeOptions(nms_kernel=4)
    with pytest.raises(ValueError, match="unknown"):
        DecodeOptions.from_record({"flip": True})


def test_flip_merge_gets_the_configured_down_ratio():
    heads = _heads(4)
    codec = CenterPoseCodec(input_size=64, down_ratio=2, decode=DecodeOptions(flip_test=True, fix_flip_offset=True))
    want = flip_merge(sigmoid_outputs(heads), COCO_PERSON, fix_offset=True, down_ratio=2)
    got = codec.probabilities(heads)
    assert all(torch.equal(got[k], want[k]) for k in want)
    four = CenterPoseCodec(input_size=64, down_ratio=4, decode=DecodeOptions(flip_test=True, fix_flip_offset=True))
    assert not torch.equal(four.probabilities(heads)["hps"], got["hps"])
    dets, _ = decode_probabilities(want, codec.options)
    assert torch.equal(codec.decode(heads, META).rows(), to_image_coords(dets, META["c"], META["s"], (16, 20)))


def test_encode_is_encode_pose_targets_with_the_codec_settings():
    boxes = np.array([[10, 12, 40, 60]], np.float32)
    kps = np.zeros((1, J, 3), np.float32)
    kps[0, :5] = [[20, 20, 2], [22, 18, 2], [18, 18, 2], [25, 20, 1], [15, 20, 1]]
    trans = np.array([[0.25, 0, 0], [0, 0.25, 0]], np.float32)
    codec = CenterPoseCodec(input_size=64, down_ratio=4, max_objs=8, corrected_radius=True)
    got = codec.encode(boxes, kps, trans, trans)
    want = encode_pose_targets(boxes, kps, trans, trans, output_size=16, max_objs=8, corrected_radius=True)
    assert got.keys() == want.keys() and all(np.array_equal(got[k], want[k]) for k in want)
    assert codec.output_size == 16 and got["ind"].shape == (8,)


def test_options_are_checked_and_replaced_by_name():
    with pytest.raises(ValueError, match="tie_break"):
        DecodeOptions(tie_break="random")
    with pytest.raises(ValueError, match="multiple of down_ratio"):
        CenterPoseCodec(input_size=30, down_ratio=4)
    codec = CenterPoseCodec(decode={"K": 7, "sigmoid": "clamp"})
    changed = codec.replace(K=3, max_objs=5)
    assert (changed.options.K, changed.options.sigmoid, changed.max_objs) == (3, "clamp", 5)
    assert codec.options.K == 7 and codec.max_objs == 32  # the original is untouched
    with pytest.raises(dataclasses.FrozenInstanceError):
        codec.options.K = 1  # type: ignore[misc]


def test_poses_layouts_round_trip():
    rng = np.random.default_rng(0)
    boxes, scores, kps = rng.random((3, 4), np.float32), rng.random(3, np.float32), rng.random((3, J, 3), np.float32)
    poses = Poses(boxes, scores, kps)
    rows = poses.rows(joint_scores=True)
    assert rows.shape == (3, 5 + 3 * J)
    back = Poses.from_rows(rows, num_joints=J)
    assert all(np.array_equal(a, b) for a, b in zip((back.boxes, back.scores, back.keypoints), (boxes, scores, kps)))
    people = Poses.from_people(poses.people())
    assert np.array_equal(people.keypoints, kps) and np.array_equal(people.boxes, boxes)
    no_scores = Poses.from_rows(poses.rows())  # without joint scores each joint takes the person score
    np.testing.assert_array_equal(no_scores.joint_scores, np.repeat(scores[:, None], J, 1))
    kept = poses[poses.scores > 0.5]
    assert len(kept) == int((scores > 0.5).sum()) and kept.num_joints == J
    both = Poses.concat([poses, Poses.empty(J)])
    assert len(both) == 3 and len(Poses.empty(J)) == 0
    assert poses.scaled(2.0).boxes.tolist() == (boxes * 2).tolist()
    batch = Poses(torch.from_numpy(boxes)[None], torch.from_numpy(scores)[None], torch.from_numpy(kps)[None])
    (one,) = batch.numpy().unbind()
    assert np.array_equal(one.keypoints, kps)
    with pytest.raises(ValueError, match="Poses"):
        Poses(boxes, scores[:2], kps)
    with pytest.raises(ValueError, match="5 \\+ 2J"):
        Poses.from_rows(np.zeros((2, 6), np.float32))


class _Recorder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        self.inputs.append(x)
        b = x.shape[0]
        heads = _heads(2)
        return [{k: v[:1].expand(b, *v.shape[1:]) + x.mean() for k, v in heads.items()}]


def test_the_module_runs_the_flip_pass_and_the_codec_decodes():
    from centerpose.training.module import CenterPoseModule

    net = _Recorder()
    codec = CenterPoseCodec(input_size=64, decode=DecodeOptions(K=10, flip_test=True))
    module = CenterPoseModule(net=net, loss=nn.Identity(), optimizer=torch.optim.SGD, codec=codec)
    x = torch.randn(2, 3, 64, 80)
    outputs = net(x)
    poses = module.decode_batch(outputs, {"input": x, "meta": META})
    assert len(net.inputs) == 2 and torch.equal(net.inputs[1], x.flip(3))
    want = codec.decode(stack_with_mirrors(outputs, net(x.flip(3))), META)
    assert torch.equal(poses.rows(joint_scores=True), want.rows(joint_scores=True))
    default = CenterPoseModule(net=net, loss=nn.Identity(), optimizer=torch.optim.SGD).codec.options
    assert (default.sigmoid, default.flip_test, default.K) == ("clamp", False, 100)  # the trainer's validation


def test_evaluator_scores_the_poses_it_is_given(coco_mini):
    import contextlib
    import io

    from pycocotools.coco import COCO

    from centerpose.evaluation.evaluator import CocoPoseEvaluator

    ann_file = coco_mini / "annotations" / "person_keypoints_val2017.json"
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(ann_file))
    ids = [
        i
        for i in sorted(coco.getImgIds())
        if any(a["num_keypoints"] > 0 and not a["iscrowd"] for a in coco.loadAnns(coco.getAnnIds(imgIds=i)))
    ][:3]
    evaluator = CocoPoseEvaluator(ann_file, image_ids=ids)
    for img_id in ids:
        anns = [a for a in coco.loadAnns(coco.getAnnIds(imgIds=img_id)) if not a["iscrowd"]]
        boxes = np.array(
            [[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]] for a in anns],
            np.float32,
        )
        kps = np.array([a["keypoints"] for a in anns], np.float32).reshape(len(anns), J, 3)
        # People without keypoints (ignored by the keypoint eval) score lower, so they rank after the others.
        scores = torch.tensor([[1.0 if a["num_keypoints"] else 0.5 for a in anns]])
        poses = Poses(torch.from_numpy(boxes)[None], scores, torch.from_numpy(kps)[None])
        evaluator.process({"meta": {"img_id": torch.tensor([img_id])}}, poses)
    stats = evaluator.evaluate()
    assert stats["AP"] == pytest.approx(1.0) and stats["bbox_AP"] == pytest.approx(1.0)
    evaluator.reset()
    assert evaluator.evaluate()["AP"] == 0.0  # nothing kept after reset
