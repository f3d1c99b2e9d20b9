"""The ``centerpose`` command: verbs listed, each verb's own help, overrides passed through, errors in one line.

Real interpreters (``python -m centerpose`` / ``python -m centerpose.<verb>``): the four that import torch run
side by side, started once for the module.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from centerpose import __version__
from centerpose.cli import VERBS, _with_track, main

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
for _key in ("HYDRA_FULL_ERROR", "CENTERPOSE_DEBUG"):
    ENV.pop(_key, None)


def python(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300, env=ENV, cwd=cwd)


@pytest.fixture(scope="module")
def heavy(tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    """The commands that import the whole stack, run concurrently: name -> finished process."""
    cwd = tmp_path_factory.mktemp("cli")
    commands = {
        "predict_help": ["-m", "centerpose", "predict", "--help"],
        "convert_help": ["-m", "centerpose", "convert", "--help"],
        "track_cfg": [
            "-m",
            "centerpose.cli",
            "track",
            "--cfg",
            "job",
            "source=clip.mp4",
            "ckpt_path=a.ckpt",
            "score_thresh=0.5",
            "tracker.max_age=7",
        ],
        "module_error": [
            "-m",
            "centerpose.predict",
            "ckpt_path=a.ckpt",
            f"source={cwd / 'missing.jpg'}",
            f"hydra.run.dir={cwd / 'run'}",
        ],
    }
    procs = {
        name: subprocess.Popen(
            [sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=cwd
        )
        for name, args in commands.items()
    }
    done = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        done[name] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    return done


@pytest.mark.parametrize("args", [["--help"], []], ids=["--help", "no arguments"])
def test_help_lists_every_verb_with_one_line(args):
    out = python("-m", "centerpose", *args)
    assert out.returncode == 0 and out.stderr == ""
    listed = [line.split()[0] for line in out.stdout.splitlines() if line.startswith("  ") and line.split()[0] in VERBS]
    assert listed == list(VERBS) == ["train", "evaluate", "predict", "track", "export", "convert", "check-data", "zoo"]
    assert "--debug" in out.stdout and "--version" in out.stdout


def test_version_and_unknown_verb():
    out = python("-m", "centerpose", "--version")
    assert out.returncode == 0 and out.stdout.strip() == f"centerpose {__version__}"
    out = python("-m", "centerpose.cli", "evalute")
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.splitlines() == [
        "centerpose: error: unknown command 'evalute' (choose from train, evaluate, "
        "predict, track, export, convert, check-data, zoo); did you mean "
        "'evaluate'?"
    ]


def test_console_script_entry_point():
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"centerpose": "centerpose.cli:main"}


def test_verb_help_is_hydras_with_the_config(heavy):
    out = heavy["predict_help"]
    assert out.returncode == 0, out.stderr[-2000:]
    assert "predict is powered by Hydra" in out.stdout and "source: ???" in out.stdout
    assert "tracker:" in out.stdout


def test_convert_help_is_its_argparse_help(heavy):
    out = heavy["convert_help"]
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("usage: centerpose convert") and "--arch" in out.stdout


def test_track_passes_overrides_through_with_track_on(heavy):
    out = heavy["track_cfg"]
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    for expected in ("track: true", "source: clip.mp4", "ckpt_path: a.ckpt", "score_thresh: 0.5", "  max_age: 7"):
        assert expected in lines, expected


def test_python_m_verb_still_works_and_errors_in_one_line(heavy):
    out = heavy["module_error"]
    source = next(a for a in out.args if a.startswith("source=")).split("=", 1)[1]
    run_dir = Path(next(a for a in out.args if a.startswith("hydra.run.dir=")).split("=", 1)[1])
    assert out.returncode == 1
    assert out.stderr.splitlines() == [f"centerpose.predict: error: source '{source}' does not exist"]
    assert not (run_dir / "detections.json").exists()


def test_track_keeps_an_explicit_track_value():
    assert _with_track(["--cfg", "job", "source=x.mp4"]) == ["--cfg", "job", "track=true", "source=x.mp4"]
    assert _with_track(["source=x.mp4", "track=false"]) == ["source=x.mp4", "track=false"]
    assert _with_track(["--help"]) == ["--help", "track=true"]


def test_zoo_verb_passes_its_arguments(monkeypatch):
    import centerpose.zoo as zoo

    seen = []
    monkeypatch.setattr(zoo, "main", lambda argv: seen.append(argv) or 3, raising=False)
    assert main(["zoo", "download", "multi_pose_dla_3x"]) == 3
    assert seen == [["download", "multi_pose_dla_3x"]]


def test_zoo_without_a_command_line_says_so(monkeypatch, capsys):
    import centerpose.zoo as zoo

    monkeypatch.delattr(zoo, "main", raising=False)
    assert main(["zoo", "list"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("centerpose zoo: error: ")
