"""Every verb ends bad input with one line ``centerpose <verb>: error: <message>``, exit 1, and no output.

Each case is its own process running the real command line (``centerpose.cli.main`` with that ``sys.argv``):
forked from this test process after the heavy libraries are imported once, so the ~40 cases fit the 2 CI
cores (a fresh interpreter per case costs 5-15 s of imports there). ``python -m centerpose.<verb>`` itself,
with a fresh interpreter, is covered by tests/cli/test_cli.py.
"""

from __future__ import annotations

import os
import random
import re
import signal
import sys
from pathlib import Path

import pytest
import torch

from centerpose.data.synthetic import write_synthetic_coco
from centerpose.errors import RunError, describe, one_line
from centerpose.outputs import discard_on_error

# Lightning's own start-up notes on stderr (train builds its Trainer before some checks run)
LIGHTNING_NOTES = re.compile(r"^(Seed set to|GPU available|TPU available|HPU available|IPU available|💡)")


@pytest.fixture(scope="module", autouse=True)
def warm_imports():
    """Import what every entry point needs once, before forking (not the entry modules themselves: runpy
    runs those as ``__main__``)."""
    import cv2  # noqa: F401
    import hydra  # noqa: F401
    import pytorch_lightning  # noqa: F401
    import timm  # noqa: F401

    import centerpose.checkpoints.format  # noqa: F401
    import centerpose.data.datamodule  # noqa: F401
    import centerpose.inference.predictor  # noqa: F401
    import centerpose.training.module  # noqa: F401


def run(argv: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 240) -> tuple[int, str, str]:
    """``centerpose <argv>`` in a forked process in ``cwd`` (debug switches unset, then ``env`` set);
    (exit code, stdout, stderr)."""
    out, err = cwd / ".stdout", cwd / ".stderr"
    pid = os.fork()
    if pid == 0:  # child: never returns into pytest
        code = 1
        try:
            signal.alarm(timeout)
            os.chdir(cwd)
            for key in ("HYDRA_FULL_ERROR", "CENTERPOSE_DEBUG"):
                os.environ.pop(key, None)
            os.environ.update(env or {})
            for fd, path in ((1, out), (2, err)):
                handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
                os.dup2(handle, fd)
                os.close(handle)
            sys.stdout = open(1, "w", buffering=1, closefd=False)
            sys.stderr = open(2, "w", buffering=1, closefd=False)
            torch.set_num_threads(1)
            from centerpose.cli import main

            sys.argv = ["centerpose", *argv]
            try:
                code = main()
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out.read_text(), err.read_text()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    """Bad inputs: a truncated checkpoint, random bytes, a file of an unknown type, a missing path."""
    folder = tmp_path_factory.mktemp("inputs")
    whole = folder / "whole.ckpt"
    torch.save({"state_dict": {"net.w": torch.zeros(4096)}, "centerpose_config": {}}, whole)
    data = whole.read_bytes()
    (folder / "truncated.ckpt").write_bytes(data[: len(data) // 2])
    (folder / "random.ckpt").write_bytes(random.Random(0).randbytes(4096))
    (folder / "notes.txt").write_text("not an image")
    write_synthetic_coco(folder / "dataset", num_train=1, num_val=1, image_size=(64, 64), max_people=1)
    return {
        "truncated": folder / "truncated.ckpt",
        "random": folder / "random.ckpt",
        "folder": folder,
        "notes": folder / "notes.txt",
        "missing": folder / "absent.ckpt",
        "nodata": folder / "no_dataset",
        "dataset": folder / "dataset",
    }


QUICK = ["experiment=quickstart", "data.synthetic=null"]
# what train writes about a run before its data is read (the resolved config, versions; the CSV logger's
# hyper-parameters): records, not results
TRAIN_RECORDS = {"run/run_info.json", "run/config_resolved.yaml", "run/csv/hparams.yaml"}
# (verb, fault, argv with {truncated} {random} {notes} {missing} {nodata} filled in, what the line must name)
CASES = [
    ("train", "mistyped value", [*QUICK, "data.batch_size=abc"], "data.batch_size"),
    ("train", "unknown key", [*QUICK, "no_such_key=1"], "no_such_key"),
    ("train", "missing dataset", [*QUICK, "data.root={nodata}"], "{nodata}"),
    ("train", "missing file", [*QUICK, "data.root={dataset}", "init_from={missing}"], "{missing}"),
    ("evaluate", "missing file", ["ckpt_path={missing}", "data.root={dataset}"], "{missing}"),
    ("evaluate", "truncated checkpoint", ["ckpt_path={truncated}", "data.root={dataset}"], "{truncated}"),
    ("evaluate", "random-bytes checkpoint", ["ckpt_path={random}", "data.root={dataset}"], "{random}"),
    ("evaluate", "mistyped value", ["ckpt_path={truncated}", "test.flip=abc"], "flip"),
    ("evaluate", "unknown key", ["ckpt_path={truncated}", "no_such_key=1"], "no_such_key"),
    ("evaluate", "missing dataset", ["ckpt_path={missing}", "data.root={nodata}"], "{nodata}"),
    ("evaluate", "unknown config group option", ["ckpt_path={truncated}", "data=no_such_data"], "no_such_data"),
    ("predict", "missing file", ["ckpt_path={missing}", "source={folder}"], "{missing}"),
    ("predict", "truncated checkpoint", ["ckpt_path={truncated}", "source={folder}"], "{truncated}"),
    ("predict", "random-bytes checkpoint", ["ckpt_path={random}", "source={folder}"], "{random}"),
    (
        "predict",
        "mistyped value",
        ["ckpt_path={truncated}", "source={folder}", "tracker.max_age=abc"],
        "tracker.max_age",
    ),
    ("predict", "unknown key", ["ckpt_path={truncated}", "source={notes}", "no_such_key=1"], "no_such_key"),
    ("predict", "unsupported source", ["ckpt_path={truncated}", "source={notes}"], "{notes}"),
    ("predict", "missing source", ["ckpt_path={truncated}", "source={missing}.jpg"], "{missing}.jpg"),
    ("predict", "missing mandatory key", ["ckpt_path={truncated}"], "source"),
    ("predict", "not a model file", ["model={notes}", "source={folder}"], "{notes}"),
    ("track", "truncated checkpoint", ["ckpt_path={truncated}", "source={folder}"], "{truncated}"),
    (
        "track",
        "mistyped value",
        ["ckpt_path={truncated}", "source={folder}", "tracker.high_thresh=abc"],
        "tracker.high_thresh",
    ),
    ("track", "unsupported source", ["ckpt_path={truncated}", "source={notes}"], "{notes}"),
    ("track", "missing source", ["ckpt_path={truncated}", "source={missing}.mp4"], "{missing}.mp4"),
    ("export", "missing file", ["ckpt_path={missing}"], "{missing}"),
    ("export", "truncated checkpoint", ["ckpt_path={truncated}"], "{truncated}"),
    ("export", "random-bytes checkpoint", ["ckpt_path={random}"], "{random}"),
    ("export", "bad value", ["ckpt_path={truncated}", "format=abc"], "format"),
    ("export", "unknown key", ["ckpt_path={truncated}", "no_such_key=1"], "no_such_key"),
    ("export", "missing mandatory key", [], "ckpt_path"),
    ("convert", "missing file", ["{missing}", "out.ckpt"], "{missing}"),
    ("convert", "truncated checkpoint", ["{truncated}", "out.ckpt"], "{truncated}"),
    ("convert", "random-bytes checkpoint", ["{random}", "out.ckpt"], "{random}"),
    ("check-data", "missing dataset", ["data.root={nodata}"], "{nodata}"),
    ("check-data", "unknown config group option", ["data=no_such_data"], "no_such_data"),
    ("check-data", "unknown key", ["data.root={nodata}", "no_such_key=1"], "no_such_key"),
]


def _fill(text: str, inputs: dict[str, Path]) -> str:
    return text.format(**{k: str(v) for k, v in inputs.items()})


@pytest.mark.parametrize("verb, fault, argv, named", CASES, ids=[f"{v}-{f}" for v, f, *_ in CASES])
def test_bad_input_ends_with_one_line(verb, fault, argv, named, inputs, tmp_path):
    argv = [_fill(a, inputs) for a in argv]
    if verb != "convert":
        argv.append(f"hydra.run.dir={tmp_path / 'run'}")
    code, stdout, stderr = run([verb, *argv], tmp_path)
    lines = [line for line in stderr.splitlines() if line.strip() and not LIGHTNING_NOTES.match(line)]
    assert code == 1, stderr[-3000:]
    assert len(lines) == 1, stderr[-3000:]
    assert lines[0].startswith(f"centerpose {verb}: error: "), lines
    assert _fill(named, inputs) in lines[0], lines[0]
    # nothing but the records of the run (Hydra's .hydra/ and job log; train's) is left behind
    left = [
        p.relative_to(tmp_path).as_posix()
        for p in tmp_path.rglob("*")
        if p.is_file() and not p.name.startswith(".std") and ".hydra" not in p.parts and p.suffix != ".log"
    ]
    assert sorted(set(left) - TRAIN_RECORDS) == [], left


def test_unknown_zoo_name(tmp_path):
    """A failed download (here: a name the zoo does not have) ends with one line naming it."""
    import centerpose.zoo as zoo

    code, _, stderr = run(["zoo", "path", "no_such_model"], tmp_path)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code != 0 and len(lines) == 1 and lines[0].startswith("centerpose zoo: error: "), stderr
    if hasattr(zoo, "main"):
        assert "no_such_model" in lines[0]
    with pytest.raises(RunError, match="no_such_model"):
        zoo.resolve_weights("no_such_model")


@pytest.mark.parametrize("switch", ["--debug", "HYDRA_FULL_ERROR"])
def test_debug_keeps_the_traceback(switch, inputs, tmp_path):
    argv = [
        "predict",
        f"ckpt_path={inputs['truncated']}",
        f"source={inputs['notes']}",
        f"hydra.run.dir={tmp_path / 'run'}",
    ]
    if switch == "--debug":
        argv.insert(1, "--debug")
    code, _, stderr = run(argv, tmp_path, env={"HYDRA_FULL_ERROR": "1"} if switch == "HYDRA_FULL_ERROR" else None)
    assert code == 1
    assert "Traceback (most recent call last)" in stderr and "UnsupportedSourceError" in stderr


def test_unknown_command_and_option(tmp_path):
    code, _, stderr = run(["predcit"], tmp_path)
    assert code == 2 and stderr.count("\n") == 1
    assert "unknown command 'predcit'" in stderr and "did you mean 'predict'" in stderr and "check-data" in stderr
    code, _, stderr = run(["--verbose", "train"], tmp_path)
    assert code == 2 and "unknown option '--verbose'" in stderr


def test_one_line_flattens_lists():
    text = "data not found under '/x'. Missing:\n  /x/a\n  /x/b\nExpected layout:\n  /x/c\nGet it."
    assert one_line(text) == "data not found under '/x'. Missing: /x/a, /x/b; Expected layout: /x/c; Get it."
    assert one_line("In 'train': Could not find 'data/x'\n\nAvailable options in 'data':\n\tcoco\n\tsynthetic") == (
        "In 'train': Could not find 'data/x'; Available options in 'data': coco, synthetic"
    )


def test_describe_knows_file_errors_but_not_bugs():
    assert describe(FileNotFoundError(2, "No such file or directory", "/x/y.jpg")) == (
        "'/x/y.jpg': No such file or directory"
    )
    assert describe(KeyError("bug")) is None and describe(TypeError("bug")) is None


def test_discard_on_error_removes_only_what_the_run_wrote(tmp_path):
    kept, changed = tmp_path / "old.jpg", tmp_path / "model.onnx"
    kept.write_text("a good result of an earlier run")
    changed.write_text("old")
    (tmp_path / "run.log").write_text("")
    with pytest.raises(RuntimeError), discard_on_error(tmp_path):
        (tmp_path / "new_pose.jpg").write_text("half a folder of drawings")
        changed.write_text("half-written")
        (tmp_path / "run.log").write_text("why it failed")
        raise RuntimeError("failed mid-way")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.jpg", "run.log"]
    out = tmp_path / "sub" / "model.onnx"
    with pytest.raises(RuntimeError), discard_on_error(out):
        out.parent.mkdir()
        out.write_text("partial")
        raise RuntimeError
    assert not out.exists()
    with discard_on_error(tmp_path):  # success keeps everything
        (tmp_path / "done.json").write_text("{}")
    assert (tmp_path / "done.json").is_file()
