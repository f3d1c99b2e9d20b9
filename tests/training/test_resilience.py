"""Faults injected into training, evaluation and prediction: each row of issue 11's table, new behaviour."""

from __future__ import annotations

import csv
import json
import os
import pickle
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from centerpose.checkpoints import CheckpointLoadError, CheckpointSaveError, SafeCheckpointIO
from centerpose.config import compose
from centerpose.training.launch import resolve_ckpt_path
from centerpose.errors import RunError

REPO = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture()
def data_root(tmp_path) -> Path:
    from centerpose.data.synthetic import write_synthetic_coco

    root = tmp_path / "data"
    write_synthetic_coco(root, num_train=4, num_val=2, image_size=(96, 96), seed=3)
    return root


def tiny_cfg(root: Path, out: Path, *overrides: str):
    return compose(
        "train",
        [
            "experiment=quickstart",
            f"data.root={root}",
            "data.synthetic=null",
            "data.input_size=64",
            "data.batch_size=2",
            "data.val_batch_size=2",
            "data.num_workers=0",
            f"paths.output_dir={out}",
            "logger=csv",
            "trainer.max_epochs=1",
            "trainer.check_val_every_n_epoch=1",
            "trainer.enable_progress_bar=false",
            "callbacks.rich_progress_bar=null",
            "callbacks.pose_images=null",
            *overrides,
        ],
    )


def resume_ckpt(path: Path, epoch: int = 0, **extra) -> Path:
    """A minimal file with everything a resume needs (what resolve_ckpt_path looks for)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "state_dict": {"w": torch.ones(2)},
            "optimizer_states": [],
            "lr_schedulers": [],
            "loops": {},
            "epoch": epoch,
            "global_step": 4 * (epoch + 1),
            **extra,
        },
        path,
    )
    return path


# ---------------------------------------------------------------------------------------------- exact resume
def test_rng_state_round_trips_through_a_weights_only_checkpoint(tmp_path):
    from centerpose.training.resume import capture_rng_state, restore_rng_state

    class Dataset:
        data_rng = np.random.RandomState(123)

    ds = Dataset()
    torch.manual_seed(1), np.random.seed(2), random.seed(3), ds.data_rng.rand(5)
    state = capture_rng_state(ds)
    expected = (torch.rand(3), np.random.rand(3), random.random(), ds.data_rng.rand(3), np.random.randn())
    torch.save({"rng": state}, tmp_path / "s.ckpt")
    loaded = torch.load(tmp_path / "s.ckpt", weights_only=True)["rng"]  # plain tensors and numbers only
    torch.manual_seed(9), np.random.seed(9), random.seed(9), ds.data_rng.rand(7)
    restore_rng_state(loaded, ds)
    again = (torch.rand(3), np.random.rand(3), random.random(), ds.data_rng.rand(3), np.random.randn())
    torch.testing.assert_close(again[0], expected[0], rtol=0, atol=0)
    np.testing.assert_array_equal(again[1], expected[1])
    assert again[2] == expected[2] and again[4] == expected[4]
    np.testing.assert_array_equal(again[3], expected[3])


@pytest.mark.slow  # four trainings of 4 epochs, two of them killed with SIGKILL and resumed (minutes on CPU)
@pytest.mark.parametrize("num_workers", [0, 2])
@pytest.mark.parametrize("rng", ["original", "per_sample"])
def test_kill_9_and_resume_equals_an_uninterrupted_run(tmp_path, num_workers, rng):
    sys.path.insert(0, str(REPO / "scripts"))
    from kill_resume_check import check

    result = check(tmp_path, num_workers, rng, epochs=4, kill_after_epoch=1)
    assert result["resumed_after_epoch"] >= 0, result
    assert result["max_abs_diff"] == 0.0, result  # every tensor of state_dict and optimizer state
    assert result["metrics_identical"], result  # metrics.csv rows, earlier epochs included


# ---------------------------------------------------------------------------------------------- history
def test_auto_skips_truncated_and_empty_checkpoints_and_says_why(tmp_path, caplog):
    good = resume_ckpt(tmp_path / "checkpoints" / "best_epoch000.ckpt", epoch=0)
    last = tmp_path / "checkpoints" / "last.ckpt"
    resume_ckpt(last, epoch=1)
    last.write_bytes(last.read_bytes()[:200])  # killed mid-write by an old, non-atomic saver
    hpc = tmp_path / "hpc_ckpt_1.ckpt"
    hpc.write_bytes(b"")
    weights_only = tmp_path / "checkpoints" / "converted.ckpt"
    torch.save({"state_dict": {}}, weights_only)
    partial = tmp_path / "checkpoints" / "last.ckpt.tmp-123"
    partial.write_bytes(b"half")
    for i, p in enumerate([good, last, hpc, weights_only]):
        os.utime(p, (100 + i, 100 + i))
    with caplog.at_level("WARNING"):
        assert resolve_ckpt_path("auto", tmp_path) == str(good)
    text = caplog.text
    assert "last.ckpt" in text and "does not load" in text
    assert "hpc_ckpt_1.ckpt" in text and "empty" in text
    assert "converted.ckpt" in text and "no training state" in text
    assert not partial.exists()  # temporary file of an interrupted save removed


def test_csv_history_is_continued_not_overwritten(tmp_path):
    from centerpose.training.loggers import RunCSVLogger

    first = RunCSVLogger(save_dir=str(tmp_path), name="csv", version="")
    for epoch, step in ((0, 3), (1, 7), (2, 11)):
        first.log_metrics({"train/loss": 10.0 - epoch, "epoch": epoch}, step=step)
        first.log_metrics({"lr-Adam": 0.1}, step=step + 1)
    first.save()
    resumed = RunCSVLogger(save_dir=str(tmp_path), name="csv", version="")
    # The checkpoint holds epochs 0-1 (8 steps); epoch 2's rows were written by the killed process.
    assert resumed.continue_history(epoch=1, global_step=8) == 3
    resumed.log_metrics({"train/loss": 7.5, "epoch": 2}, step=11)
    resumed.save()
    with open(tmp_path / "csv" / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["epoch"], r["train/loss"]) for r in rows if r["epoch"]] == [("0", "10.0"), ("1", "9.0"), ("2", "7.5")]
    assert [r["step"] for r in rows if r["lr-Adam"]] == ["4"]  # the lr row of epoch 2's start is logged again


def test_wandb_resumes_the_run_id_of_the_run_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    from centerpose.training.loggers import wandb_logger

    a = wandb_logger(save_dir=str(tmp_path))
    b = wandb_logger(save_dir=str(tmp_path))
    assert a._wandb_init["id"] == b._wandb_init["id"] == (tmp_path / "wandb_run_id.txt").read_text().strip()
    assert b._wandb_init["resume"] == "allow"


# ---------------------------------------------------------------------------------------------- checkpoints
def test_save_is_atomic_verified_and_fails_loudly(tmp_path):
    io = SafeCheckpointIO()
    target = tmp_path / "checkpoints" / "last.ckpt"
    io.save_checkpoint({"epoch": 1, "state_dict": {"w": torch.ones(3)}}, target)
    io.save_checkpoint({"epoch": 2, "state_dict": {"w": torch.zeros(3)}}, target)
    assert io.load_checkpoint(target)["epoch"] == 2
    assert [p.name for p in target.parent.iterdir()] == ["last.ckpt"]  # no temporary file left
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the checkpoint folder should be")
    with pytest.raises(CheckpointSaveError, match="could not save checkpoint .*blocked"):
        io.save_checkpoint({"epoch": 3}, blocked / "last.ckpt")


def test_unwritable_checkpoint_folder_stops_before_training(data_root, tmp_path):
    from centerpose.train import train

    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoints").write_text("not a folder")  # root ignores permissions; a file blocks any user
    with pytest.raises(RunError, match=r"cannot write to '.*checkpoints'"):
        train(tiny_cfg(data_root, out))
    assert not (out / "csv").exists()  # nothing ran


def test_cli_exit_codes_for_unwritable_run_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = subprocess.run(
        [sys.executable, "-m", "centerpose.train", f"hydra.run.dir={blocker}/run"],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "cannot create the run folder" in proc.stderr.strip().splitlines()[-1]


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_resume_load_is_weights_only_even_when_forced_off(tmp_path, monkeypatch):
    evil = tmp_path / "evil.ckpt"
    with open(evil, "wb") as f:
        torch.save({"state_dict": {}, "x": _Payload()}, f, pickle_module=pickle)
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointLoadError, match="weights_only=True"):
        SafeCheckpointIO().load_checkpoint(evil)
    assert not (tmp_path / "PWNED").exists()


# ---------------------------------------------------------------------------------------------- divergence
def test_nonfinite_training_stops_within_a_step_and_saves_nothing_nonfinite(data_root, tmp_path):
    from centerpose.training.guards import DivergenceError
    from centerpose.train import train

    with pytest.raises(DivergenceError) as err:
        train(tiny_cfg(data_root, tmp_path, "model.lr=1e30"))
    message = str(err.value)
    # the LR named is the step's (a warm-up schedule scales the configured 1e30 down)
    assert "diverged at step" in message and "e+" in message.split(", lr ")[1].split(":")[0]
    assert "lower the learning rate" in message
    step = int(message.split("diverged at step ")[1].split()[0])
    assert step <= 1
    for ckpt in tmp_path.rglob("*.ckpt"):  # nothing, or only finite tensors
        state = torch.load(ckpt, weights_only=True)["state_dict"]
        assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point()), ckpt


def test_skip_mode_skips_nonfinite_steps_and_counts_them(data_root, tmp_path):
    from centerpose.training.guards import DivergenceGuard

    guard = DivergenceGuard(action="skip")

    class Trainer:
        global_step, current_epoch, optimizers = 3, 0, []

        class fit_loop:  # noqa: N801
            class epoch_loop:  # noqa: N801
                class batch_progress:  # noqa: N801
                    class current:  # noqa: N801
                        ready = 1

    param = torch.nn.Parameter(torch.ones(2))
    optimizer = torch.optim.SGD([param], lr=1.0)
    guard.on_train_batch_start(Trainer, None, None, 0)
    guard.on_before_backward(Trainer, None, torch.tensor(float("nan")))
    param.grad = torch.full((2,), float("nan"))
    module = torch.nn.Module()
    module.p = param
    guard.on_before_optimizer_step(Trainer, module, optimizer)
    optimizer.step()
    assert guard.skipped == 1 and torch.equal(param.detach(), torch.ones(2))


def test_exploding_loss_stops(data_root, tmp_path):
    from centerpose.training.guards import DivergenceError, DivergenceGuard

    guard = DivergenceGuard(explode_factor=100)
    trainer = type(
        "T",
        (),
        {"global_step": 5, "current_epoch": 0, "optimizers": [], "fit_loop": type("F", (), {"epoch_loop": None})},
    )
    guard._where = lambda t: "step 5"  # the loop counters are not what is tested here
    guard.on_before_backward(trainer, None, torch.tensor(10.0))
    guard.on_before_backward(trainer, None, torch.tensor(900.0))
    with pytest.raises(DivergenceError, match="exploded"):
        guard.on_before_backward(trainer, None, torch.tensor(1e9))


# ---------------------------------------------------------------------------------------------- bad data
def corrupt(root: Path, split: str, index: int, how: str) -> Path:
    files = sorted((root / f"{split}2017").glob("*.jpg"))
    path = files[index]
    if how == "random":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8).tobytes())
    elif how == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif how == "missing":
        path.unlink()
    elif how == "empty":
        path.write_bytes(b"")
    return path


@pytest.mark.parametrize(
    "how,reason",
    [
        ("random", "cannot decode"),
        ("truncated", "truncated JPEG"),
        ("missing", "file not found"),
        ("empty", "empty file"),
    ],
)
def test_unreadable_image_is_replaced_and_reported(data_root, how, reason):
    from centerpose.data.coco import CocoPoseDataset
    from centerpose.data.image_io import BadImageError

    path = corrupt(data_root, "train", 1, how)
    ds = CocoPoseDataset(
        data_root / "train2017",
        data_root / "annotations" / "person_keypoints_train2017.json",
        train=True,
        augment=False,
        input_size=64,
    )
    bad_index = next(i for i in range(len(ds)) if ds.image_path(i) == path)
    with pytest.raises(BadImageError, match=reason):  # the dataset's default: fail fast
        ds[bad_index]
    ds.on_bad_sample = "skip"
    ds.bad_sample_log = str(data_root / "bad.jsonl")
    sample = ds[bad_index]
    assert sample["meta"]["img_id"] == ds.ids[(bad_index + 1) % len(ds)]  # the next sample replaces it
    record = json.loads((data_root / "bad.jsonl").read_text().splitlines()[0])
    assert record["file"] == str(path) and reason in record["reason"] and record["image_id"] == ds.ids[bad_index]


def test_training_skips_a_corrupt_image_and_writes_bad_samples_json(data_root, tmp_path):
    from centerpose.train import train

    path = corrupt(data_root, "train", 0, "random")
    train(tiny_cfg(data_root, tmp_path, "+trainer.limit_val_batches=0"))
    report = json.loads((tmp_path / "bad_samples.json").read_text())
    assert [(e["file"], e["split"]) for e in report] == [(str(path), "train")]
    assert "cannot decode" in report[0]["reason"]
    rows = list(csv.DictReader(open(tmp_path / "csv" / "metrics.csv", newline="")))
    assert any(r.get("data/bad_samples") == "1.0" for r in rows)
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()


def test_on_bad_sample_raise_restores_fail_fast(data_root, tmp_path):
    from centerpose.data.image_io import BadImageError
    from centerpose.train import train

    corrupt(data_root, "train", 0, "truncated")
    with pytest.raises(BadImageError, match="truncated JPEG"):
        train(tiny_cfg(data_root, tmp_path, "data.on_bad_sample=raise", "+trainer.limit_val_batches=0"))


def test_preflight_reports_every_problem_with_ids(data_root):
    from centerpose.data.preflight import check_split

    ann_file = data_root / "annotations" / "person_keypoints_train2017.json"
    data = json.loads(ann_file.read_text())
    data["annotations"][0]["keypoints"][4] = float("nan")
    data["annotations"][1]["bbox"] = [1, 2, -3, 4]
    data["annotations"][2]["keypoints"] = data["annotations"][2]["keypoints"][:-3]
    ann_file.write_text(json.dumps(data))  # json writes NaN, as a buggy converter would
    missing = corrupt(data_root, "train", 2, "missing")
    report = check_split(ann_file, data_root / "train2017", 17)
    text = [str(p) for p in report.problems]
    a0, a1, a2 = (data["annotations"][i] for i in range(3))
    assert any(f"image {a0['image_id']}, annotation {a0['id']}: 'keypoints' holds non-finite" in t for t in text)
    assert any(f"annotation {a1['id']}: 'bbox' width and height must be >= 0" in t for t in text)
    assert any(f"annotation {a2['id']}: 'keypoints' must hold 51 numbers, got 48" in t for t in text)
    assert any(str(missing) in t and "image file not found" in t and t.startswith("warning") for t in text)
    assert len(report.fatal) == 3


def test_preflight_refuses_to_start_training(data_root, tmp_path):
    from centerpose.data.preflight import PreflightError
    from centerpose.train import train

    ann_file = data_root / "annotations" / "person_keypoints_train2017.json"
    data = json.loads(ann_file.read_text())
    data["annotations"][0]["keypoints"][0] = float("nan")
    ann_file.write_text(json.dumps(data))
    with pytest.raises(PreflightError, match="1 fatal problem") as err:
        train(tiny_cfg(data_root, tmp_path))
    assert "non-finite" in str(err.value)
    assert json.loads((tmp_path / "preflight.json").read_text())[0]["problems"]


def test_empty_dataset_says_so_in_one_line(data_root):
    from centerpose.data.preflight import PreflightError, check_split, enforce

    ann_file = data_root / "annotations" / "person_keypoints_train2017.json"
    data = json.loads(ann_file.read_text())
    data["annotations"] = []
    ann_file.write_text(json.dumps(data))
    with pytest.raises(PreflightError, match="empty dataset: no image with annotations"):
        enforce([check_split(ann_file, data_root / "train2017", 17)])


def test_check_data_cli_scans_and_exits_1_on_a_truncated_image(data_root, tmp_path):
    path = corrupt(data_root, "val", 0, "truncated")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "centerpose.check_data",
            f"data.root={data_root}",
            "scan=true",
            f"hydra.run.dir={tmp_path / 'check'}",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    report = json.loads((tmp_path / "check" / "check_data.json").read_text())
    problems = [p for r in report for p in r["problems"]]
    assert [(p["file"], p["message"]) for p in problems] == [
        (str(path), "truncated JPEG (no end-of-image marker; an interrupted copy or download?)")
    ]


# ---------------------------------------------------------------------------------------------- mismatches
def test_wrong_typed_config_values_fail_at_start_naming_the_key(data_root, tmp_path):
    from centerpose.config_check import ConfigTypeError
    from centerpose.train import train

    with pytest.raises(ConfigTypeError, match=r"data.batch_size='abc': expected int"):
        train(tiny_cfg(data_root, tmp_path, "data.batch_size=abc"))
    with pytest.raises(ConfigTypeError, match=r"model.lr='abc': expected None or float"):
        train(tiny_cfg(data_root, tmp_path, "model.lr=abc"))


def test_every_shipped_config_passes_the_type_check():
    from centerpose.config_check import type_errors

    for overrides in (
        [],
        ["experiment=quickstart"],
        ["experiment=multi_pose_hg_3x", "gpus=8"],
        ["experiment=multi_pose_resnet50", "cluster=slurm", "logger=wandb"],
    ):
        assert type_errors(compose("train", [*overrides, "paths.output_dir=/tmp/x"])) == [], overrides


def test_evaluate_refuses_a_checkpoint_of_another_skeleton_before_the_first_image(tmp_path, monkeypatch):
    from centerpose import evaluate as evaluate_module
    from centerpose.keypoints import COCO_PERSON, KeypointSpec

    five = KeypointSpec(names=COCO_PERSON.names[:5], flip_pairs=((1, 2), (3, 4)), skeleton=((0, 1),))
    with pytest.raises(RunError, match="predicts 5 joints .* has 17"):
        evaluate_module.check_skeleton_fits(five, COCO_PERSON, "other.ckpt")
    evaluate_module.check_skeleton_fits(COCO_PERSON, COCO_PERSON, "same.ckpt")


def test_predict_exits_nonzero_when_no_input_reads(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "text.jpg").write_text("not an image")
    (folder / "empty.jpg").write_bytes(b"")
    from centerpose import predict as predict_module

    class FakePredictor:
        @classmethod
        def from_checkpoint(cls, *args, **kwargs):
            return cls()

    cfg = compose("predict", ["ckpt_path=x.ckpt", f"source={folder}", f"paths.output_dir={tmp_path / 'out'}"])
    original = predict_module.Predictor
    predict_module.Predictor = FakePredictor
    try:
        with pytest.raises(RunError, match=r"no input could be read.*empty.jpg \(empty file.*text.jpg \(cannot decode"):
            predict_module.predict(cfg)
    finally:
        predict_module.Predictor = original
