"""The model zoo by name, end to end against a loopback HTTP mirror (127.0.0.1 only; no internet, ever).

The mirror serves original-layout files made from random weights through ``CENTERPOSE_ZOO_URL``: a
DLA-34 multi_pose file (resolved, converted, predicted with), broken transfers and wrong files.
"""

from __future__ import annotations

import http.server
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from centerpose.checkpoints import init_from_checkpoint
from centerpose.checkpoints.original import to_original_state_dict
from centerpose.errors import RunError
from centerpose.inference.predictor import Predictor
from centerpose.models import build_model
from centerpose.zoo import (
    MODELS,
    DownloadError,
    NoPublishedWeightsError,
    UnknownModelError,
    WrongTaskError,
    ZooFileError,
    ZooModel,
    cache,
    download,
    main,
    resolve_weights,
)

REPO = Path(__file__).resolve().parents[2]
POSE = "multi_pose_dla_3x"


# ------------------------------------------------------------------------------------------ fixtures
def _original_bytes(heads=None, drop: str | None = None, seed: int = 0) -> tuple[bytes, dict]:
    """An original-layout ``{'epoch', 'state_dict'}`` file of a random-weight DLA-34 (our registry's network)."""
    torch.manual_seed(seed)
    net = build_model("dla34", heads=heads)
    state = to_original_state_dict(net.state_dict(), "dla34")
    if drop:
        del state[drop]
    buf = io.BytesIO()
    torch.save({"epoch": 7, "state_dict": state}, buf)
    return buf.getvalue(), state


@pytest.fixture(scope="module")
def pose_file() -> tuple[bytes, dict]:
    return _original_bytes()


class Mirror(http.server.ThreadingHTTPServer):
    """A file server on 127.0.0.1: ``files`` by path, ``truncate[path]`` responses cut off mid-body."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, bytes] = {}
        self.truncate: Counter = Counter()
        self.hits: Counter = Counter()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"


class _Handler(http.server.BaseHTTPRequestHandler):
    timeout = 30  # a stuck client cannot hold a server thread

    def do_GET(self) -> None:
        server: Mirror = self.server  # type: ignore[assignment]
        name = self.path.lstrip("/")
        server.hits[name] += 1
        body = server.files.get(name)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if server.truncate[name] > 0:  # announce everything, send half, hang up
            server.truncate[name] -= 1
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def mirror():
    server = Mirror()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    stop = threading.Timer(300, server.shutdown)  # bounded: it stops by itself if teardown never comes
    stop.daemon = True
    stop.start()
    yield server
    stop.cancel()
    server.shutdown()
    server.server_close()
    thread.join(10)


def _use(mp: pytest.MonkeyPatch, home: Path, mirror_url: str | None) -> None:
    mp.setenv("CENTERPOSE_HOME", str(home))
    if mirror_url is None:
        mp.delenv("CENTERPOSE_ZOO_URL", raising=False)
    else:
        mp.setenv("CENTERPOSE_ZOO_URL", mirror_url)
    mp.setattr(download, "BACKOFF_S", 0.0)


@pytest.fixture()
def zoo_env(tmp_path, mirror, monkeypatch):
    """A fresh cache and the loopback mirror; the mirror's files and counters reset."""
    mirror.files.clear()
    mirror.truncate.clear()
    mirror.hits.clear()
    _use(monkeypatch, tmp_path / "home", mirror.url)
    return tmp_path / "home" / "zoo"


@pytest.fixture(scope="module")
def resolved(tmp_path_factory, mirror, pose_file):
    """``multi_pose_dla_3x`` resolved once through the mirror: (cache folder, checkpoint path, hits)."""
    home = tmp_path_factory.mktemp("zoo_home")
    mirror.files[MODELS[POSE].file_name] = pose_file[0]
    with pytest.MonkeyPatch.context() as mp:
        _use(mp, home, mirror.url)
        path = resolve_weights(POSE)
    hits = mirror.hits[MODELS[POSE].file_name]
    return home, path, hits


def _files(folder: Path) -> list[str]:
    """What a failed resolve may leave in the cache: only lock files (nothing that looks like a checkpoint)."""
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock")) if folder.is_dir() else []


def _one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message and isinstance(err.value, RunError)
    return message


def _image(path: Path) -> Path:
    rng = np.random.default_rng(0)
    cv2.imwrite(str(path), rng.integers(0, 255, (96, 128, 3), dtype=np.uint8))
    return path


# ---------------------------------------------------------------------------------------------- tests
def test_name_resolves_to_converted_checkpoint_and_predicts(resolved, pose_file, mirror, monkeypatch, tmp_path):
    home, path, hits = resolved
    folder = home / "zoo"
    entry = MODELS[POSE]
    assert path == folder / f"{POSE}.ckpt" and hits == 1
    assert _files(folder) == sorted([entry.file_name, entry.file_name + ".sha256", path.name, path.name + ".sha256"])
    for f in (path, folder / entry.file_name):  # sha256sum format, and it matches
        digest, name = (folder / f"{f.name}.sha256").read_text().split()
        assert name == f.name and digest == cache.sha256_of(f)
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    assert ckpt["epoch"] == 7 and ckpt["centerpose_source"]["arch"] == "dla34"

    _use(monkeypatch, home, mirror.url)
    assert resolve_weights(POSE) == path and mirror.hits[entry.file_name] == hits  # cached: no new request
    predictor = Predictor.from_pretrained(POSE, score_thresh=0.0, K=5)
    served = pose_file[1]["hm_hp.2.weight"]
    assert torch.equal(predictor.net.state_dict()["heads.hm_hp.2.weight"], served)
    poses = predictor(_image(tmp_path / "street.jpg"))
    assert len(poses) == 5 and poses.keypoints.shape[1:] == (17, 3)


def test_predict_cli_runs_a_zoo_name(resolved, mirror, tmp_path):
    """`centerpose predict model=<zoo name>` end to end: the name resolves through the mirror's cache."""
    home, _, _ = resolved
    image = _image(tmp_path / "one.jpg")
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "CUDA_VISIBLE_DEVICES": "",
        "CENTERPOSE_HOME": str(home),
        "CENTERPOSE_ZOO_URL": mirror.url,
    }
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "centerpose",
            "predict",
            f"model={POSE}",
            f"source={image}",
            f"hydra.run.dir={tmp_path / 'run'}",
            "device=cpu",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    detections = json.loads((tmp_path / "run" / "detections.json").read_text())
    assert detections


def test_corrupt_cached_checkpoint_is_rebuilt_and_original_refetched(
    resolved, pose_file, mirror, monkeypatch, tmp_path, caplog
):
    mirror.files[MODELS[POSE].file_name] = pose_file[0]
    home = tmp_path / "home"
    shutil.copytree(resolved[0], home)
    _use(monkeypatch, home, mirror.url)
    entry, folder = MODELS[POSE], home / "zoo"
    ckpt, original = folder / f"{POSE}.ckpt", folder / entry.file_name
    good = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    hits = mirror.hits[entry.file_name]
    with open(ckpt, "r+b") as f:  # one flipped byte in the middle
        f.seek(ckpt.stat().st_size // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))
    with caplog.at_level("WARNING", logger="centerpose.zoo"):
        assert resolve_weights(POSE) == ckpt
    assert "is corrupt" in caplog.text and str(ckpt) in caplog.text
    again = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    assert cache.check(ckpt)[0] is cache.State.OK and again.keys() == good.keys()
    assert all(torch.equal(again[k], good[k]) for k in good)  # converted again from the checked original...
    assert mirror.hits[entry.file_name] == hits  # ... with no download

    original.write_bytes(os.urandom(1000))  # both damaged: the original is fetched again
    ckpt.write_bytes(b"")
    assert resolve_weights(POSE) == ckpt and cache.check(ckpt)[0] is cache.State.OK
    assert mirror.hits[entry.file_name] == hits + 1
    assert cache.check(original)[0] is cache.State.OK


def test_interrupted_transfer_leaves_nothing_and_reports_the_drive_url(zoo_env, mirror):
    entry = MODELS["multi_pose_dla_1x"]
    mirror.files[entry.file_name] = os.urandom(200_000)
    mirror.truncate[entry.file_name] = 99
    with pytest.raises(DownloadError) as err:
        resolve_weights(entry.name)
    message = _one_line(err)
    assert mirror.hits[entry.file_name] == download.ATTEMPTS  # retried, then given up
    assert "closed after 100000 of 200000 bytes" in message
    assert entry.url in message and str(zoo_env / entry.file_name) in message
    assert _files(zoo_env) == []  # no .part, nothing under the final name


def test_a_transfer_cut_once_is_retried_to_completion(zoo_env, mirror):
    entry = ZooModel("blob", "dla34", "pose", "x", "blob.bin")
    body = os.urandom(300_001)
    mirror.files["blob.bin"], mirror.truncate["blob.bin"] = body, 1
    dest = zoo_env / "blob.bin"
    assert download.fetch(entry, dest, "by hand") == mirror.url + "blob.bin"
    assert dest.read_bytes() == body and mirror.hits["blob.bin"] == 2 and _files(zoo_env) == ["blob.bin"]


def test_refused_connection_is_one_line_naming_file_and_folder(zoo_env, monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("CENTERPOSE_ZOO_URL", f"http://127.0.0.1:{port}")
    entry = MODELS["multi_pose_hg_1x"]
    with pytest.raises(DownloadError) as err:
        resolve_weights(entry.name)
    message = _one_line(err)
    assert "refused" in message.lower() and f"http://127.0.0.1:{port}/{entry.file_name}" in message
    assert f"fetch {entry.url} by hand and save it as {zoo_env / entry.file_name}" in message
    assert _files(zoo_env) == []
    assert main(["download", entry.name]) == 1  # the CLI: one line, exit 1


def test_not_found_on_the_mirror_is_not_retried(zoo_env, mirror):
    with pytest.raises(DownloadError, match="HTTP 404") as err:
        resolve_weights("multi_pose_dla_1x")
    assert "1 attempt" in _one_line(err) and mirror.hits["multi_pose_dla_1x.pth"] == 1


def test_corrupt_file_is_refused_and_removed(zoo_env, mirror):
    entry = MODELS["multi_pose_dla_1x"]
    mirror.files[entry.file_name] = os.urandom(50_000)
    with pytest.raises(ZooFileError) as err:
        resolve_weights(entry.name)
    message = _one_line(err)
    assert "not a readable checkpoint" in message and mirror.url in message and entry.url in message
    assert _files(zoo_env) == []


def test_wrong_architecture_is_refused_and_removed(zoo_env, mirror):
    # an hourglass-keyed file under a DLA-34 name
    state = {
        "pre.0.conv.weight": torch.randn(128, 3, 7, 7),
        "kps.0.up1.0.conv1.weight": torch.randn(4, 4, 3, 3),
        "hps.0.0.weight": torch.randn(256, 256, 3, 3),
    }
    buf = io.BytesIO()
    torch.save({"epoch": 1, "state_dict": state}, buf)
    entry = MODELS["multi_pose_dla_1x"]
    mirror.files[entry.file_name] = buf.getvalue()
    with pytest.raises(ZooFileError) as err:
        resolve_weights(entry.name)
    assert "holds a hourglass network, not dla34" in _one_line(err)
    assert _files(zoo_env) == []


def test_missing_tensor_fails_the_key_list_check(zoo_env, mirror):
    body, _ = _original_bytes(drop="hps.2.bias")
    entry = MODELS["multi_pose_dla_1x"]
    mirror.files[entry.file_name] = body
    with pytest.raises(ZooFileError) as err:
        resolve_weights(entry.name)
    assert "1 missing tensors, e.g. hps.2.bias" in _one_line(err)
    assert _files(zoo_env) == []


def test_drive_download_through_gdown_for_init_from(zoo_env, monkeypatch):
    """No mirror set: the Drive id goes to gdown (faked here); a ctdet file stays original, for init_from."""
    import gdown

    monkeypatch.delenv("CENTERPOSE_ZOO_URL")
    entry = MODELS["ctdet_coco_dla_2x"]
    body, state = _original_bytes(heads={"hm": 80, "wh": 2, "reg": 2}, seed=1)
    calls = []

    def fake_download(id=None, output=None, quiet=False, **kwargs):
        calls.append((id, Path(output.name).name))
        if len(calls) == 1:
            raise gdown.exceptions.FileURLRetrievalError("Too many users have viewed or downloaded this file")
        output.write(body)
        return output

    monkeypatch.setattr(gdown, "download", fake_download)
    net = build_model("dla34")
    report = init_from_checkpoint(net, entry.name)  # train init_from=ctdet_coco_dla_2x
    assert calls == [(entry.drive_id, entry.file_name + ".part")] * 2
    assert _files(zoo_env) == sorted([entry.file_name, entry.file_name + ".sha256"])
    assert ("heads.hm.2.weight", (80, 256, 1, 1), (1, 256, 1, 1)) in report.skipped
    assert torch.equal(net.state_dict()["heads.wh.2.weight"], state["wh.2.weight"])

    def offline(**kwargs):
        raise ConnectionError("Failed to resolve 'drive.google.com'")

    monkeypatch.setattr(gdown, "download", offline)
    with pytest.raises(DownloadError) as err:
        resolve_weights("ctdet_coco_hg")
    message = _one_line(err)
    assert MODELS["ctdet_coco_hg"].url in message and "3 attempts" in message and "resolve" in message


def test_names_that_do_not_download(zoo_env, mirror, tmp_path, monkeypatch):
    with pytest.raises(UnknownModelError, match="did you mean multi_pose_dla_3x") as err:
        resolve_weights("multi_pose_dla3x")
    assert isinstance(err.value, FileNotFoundError)
    with pytest.raises(NoPublishedWeightsError, match="experiment=multi_pose_resnet50"):
        resolve_weights("multi_pose_resnet50")
    with pytest.raises(WrongTaskError, match="init_from=ctdet_coco_dla_2x"):
        Predictor.from_pretrained("ctdet_coco_dla_2x")
    assert sum(mirror.hits.values()) == 0
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    monkeypatch.setenv("CENTERPOSE_HOME", str(blocker))  # a file where the cache folder should go
    with pytest.raises(RunError, match="cannot create the zoo cache folder .*CENTERPOSE_HOME"):
        resolve_weights("multi_pose_dla_1x")
    own = tmp_path / "mine.ckpt"
    own.write_bytes(b"x")
    assert resolve_weights(own) == own and resolve_weights(str(own)) == own


def test_zoo_cli_list_and_path(resolved, monkeypatch, mirror, capsys):
    home, path, _ = resolved
    _use(monkeypatch, home, mirror.url)
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines()[2:] if line.split()[0] in MODELS}
    assert set(rows) == set(MODELS)
    assert rows[POSE].split()[-1] == "yes" and rows["multi_pose_dla_1x"].split()[-1] == "no"
    assert "58.9 (keypoint)" in rows[POSE] and "no published weights" in rows["multi_pose_resnet50"]
    assert main(["path", POSE]) == 0 and capsys.readouterr().out.strip() == str(path)
    assert main(["path", "multi_pose_hg_3x"]) == 1
    assert "centerpose zoo download multi_pose_hg_3x" in capsys.readouterr().err
