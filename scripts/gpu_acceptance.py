"""GPU acceptance run: one table of training, loader, flip-test, ONNX and DDP figures on one CUDA GPU (<= 8 min).

Rows (each with its own time budget; a row that fails or runs out of time is reported in the table and the
script exits 1, the other rows still run):

- **train** — DLA-34 + DCN full training steps (loader, device-side photometrics, forward, ``PoseLoss``,
  backward, Adam; :func:`scripts.bench_train.run_variant`) at 512², batch 32: fp32, bf16-mixed,
  bf16-mixed + channels_last, and ``torch.compile`` on for fp32 and for bf16-mixed + channels_last.
- **loader** — the default data path (uint8 + sparse joint heatmaps, the module's ``on_after_batch_transfer`` on
  the GPU) with N workers, images/s, beside the best training row's images/s.
- **flip test** — :class:`centerpose.inference.Predictor` (flip test on, the detector's protocol at a 512 input):
  latency at batch 1 and throughput at batch 32.
- **ONNX** — the raw-heads graph (:func:`centerpose.export.export_onnx`) on onnxruntime's CUDA provider and, where
  installed, its TensorRT provider (fp16); "skipped: ... not installed" otherwise.
- **DDP** — ``torchrun --nproc-per-node 1 -m centerpose.train`` for a few steps on the package's synthetic data.

``--smoke`` runs every row at tiny sizes (a few seconds each) on whatever device there is: on a CPU the GPU-only
rows (onnxruntime CUDA / TensorRT) say "skipped: no CUDA", the compile rows are skipped (inductor builds take
minutes on a CPU), the others run on the CPU. Data: coco-mini when found (``--root``), else a synthetic set
written to a temporary folder.

Usage:
    python scripts/gpu_acceptance.py                 # on a GPU node: the table (about 5-8 minutes)
    python scripts/gpu_acceptance.py --smoke         # anywhere: every row at tiny sizes (seconds)
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling bench scripts, imported for reuse
import bench_train  # noqa: E402

from centerpose.data.coco import CocoPoseDataset  # noqa: E402
from centerpose.data.collate import collate_samples  # noqa: E402
from centerpose.data.datamodule import worker_init  # noqa: E402
from centerpose.models import build_model  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


class Skip(Exception):
    """A row that cannot run here (no CUDA, provider not installed): reported, not a failure."""


@dataclass
class Settings:
    """Sizes of one run: the acceptance sizes on a GPU, tiny ones with ``--smoke``."""

    device: torch.device
    smoke: bool
    size: int = 512
    batch: int = 32
    warmup: int = 3
    steps: int = 10
    workers: int = 8
    loader_seconds: float = 15.0
    flip_runs: int = 10
    ort_runs: int = 20
    root: Path | None = None
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="centerpose_acceptance_")))
    best_train: float = 0.0  # images/s of the fastest training row, for the loader row's comparison

    @classmethod
    def make(cls, args: argparse.Namespace) -> "Settings":
        device = torch.device("cuda" if torch.cuda.is_available() and not args.cpu else "cpu")
        if args.smoke:
            s = cls(
                device,
                True,
                size=32,
                batch=2,
                warmup=1,
                steps=1,
                workers=min(2, os.cpu_count() or 1),
                loader_seconds=1.0,
                flip_runs=2,
                ort_runs=2,
            )
        else:
            s = cls(device, False, workers=args.workers or min(8, os.cpu_count() or 1))
        s.root = args.root
        return s

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"


# ------------------------------------------------------------------ data
def data_root(s: Settings) -> Path:
    """coco-mini when present, else a synthetic COCO-layout set (written once per run)."""
    if s.root is not None and (s.root / "annotations" / "person_keypoints_train2017.json").is_file():
        return s.root
    from centerpose.data.synthetic import ensure_synthetic_coco

    side = max(s.size, 128)
    return ensure_synthetic_coco(
        s.tmp / "synthetic", num_train=max(2 * s.batch, 8), num_val=4, image_size=[side, side], seed=0
    )


def train_loader(s: Settings, workers: int) -> torch.utils.data.DataLoader:
    root = data_root(s)
    ds = CocoPoseDataset(
        root / "train2017",
        root / "annotations" / "person_keypoints_train2017.json",
        input_size=s.size,
        input_format="uint8",
        joint_heatmaps="sparse",
        rng="per_sample",
    )
    if len(ds) < s.batch:
        raise RuntimeError(f"{root}: {len(ds)} training images, fewer than the batch {s.batch}")
    # coco-mini is 36 images: repeated so that every worker has batches of its own in each epoch.
    repeat = max(1, -(-2 * s.batch * max(workers, 1) // len(ds)))
    ds = torch.utils.data.ConcatDataset([ds] * repeat) if repeat > 1 else ds
    return torch.utils.data.DataLoader(
        ds,
        batch_size=s.batch,
        shuffle=True,
        drop_last=True,
        num_workers=workers,
        worker_init_fn=worker_init,
        persistent_workers=workers > 0,
        pin_memory=s.cuda,
        collate_fn=collate_samples,
    )


_NET: dict[str, torch.nn.Module] = {}


def dla34() -> torch.nn.Module:
    """One DLA-34 (random weights, fixed seed) that every row copies."""
    if "dla34" not in _NET:
        torch.manual_seed(0)
        _NET["dla34"] = build_model("dla34")
    return _NET["dla34"]


# ------------------------------------------------------------------ rows
def train_row(variant: str, compiled: bool) -> Callable[[Settings], str]:
    def run(s: Settings) -> str:
        if compiled and s.smoke and not s.cuda:
            raise Skip("smoke mode on a CPU (an inductor build takes minutes there)")
        if variant.startswith("bf16") and s.cuda and not torch.cuda.is_bf16_supported():
            raise Skip("this GPU has no bf16")
        loader = train_loader(s, s.workers if s.cuda else 0)
        r = bench_train.run_variant(variant, dla34(), loader, s.device, s.warmup, s.steps, compiled)
        s.best_train = max(s.best_train, r["images_per_s"])
        peak = f", peak {r['peak_gib']:.2f} GiB" if s.cuda else ""
        return f"{r['images_per_s']:.1f} images/s ({r['steps']} steps, first loss {r['first_loss']:.4f}{peak})"

    return run


def loader_row(s: Settings) -> str:
    """Images/s of the default data path with N workers, finished on the device by the module's hook."""
    module = bench_train.CenterPoseModule(net=torch.nn.Identity(), loss=torch.nn.Identity(), optimizer=torch.optim.SGD)
    loader = train_loader(s, s.workers)
    n, t0, started = 0, None, time.perf_counter()
    while True:
        for batch in loader:
            batch = module.on_after_batch_transfer(bench_train.to_device(batch, s.device), 0)
            if s.cuda:
                torch.cuda.synchronize()
            if t0 is None:  # the first batch pays the worker start-up
                t0 = time.perf_counter()
                continue
            n += batch["input"].shape[0]
        if t0 is not None and (time.perf_counter() - t0 >= s.loader_seconds or time.perf_counter() - started > 60):
            break
    rate = n / (time.perf_counter() - t0) if n else float("nan")
    beside = (
        f"; training steps ran at {s.best_train:.1f} images/s (best train row): loader/train x{rate / s.best_train:.2f}"
        if s.best_train
        else ""
    )
    return f"{rate:.1f} images/s with {s.workers} workers, batch {s.batch}{beside}"


def flip_row(s: Settings) -> str:
    """Flip-test latency (batch 1) and throughput (batch ``s.batch``) of the Predictor."""
    from centerpose.inference.predictor import Predictor

    pred = Predictor(dla34(), device=s.device, keep_res=False, input_size=s.size)
    rng = np.random.default_rng(0)
    h, w = (480, 640) if not s.smoke else (s.size * 3 // 4, s.size)
    images = [rng.integers(0, 255, (h, w, 3), dtype=np.uint8) for _ in range(s.batch)]
    pred.predict_rows(images[0])  # warm-up (cudnn, allocator)
    one = []
    for _ in range(s.flip_runs):
        t0 = time.perf_counter()
        pred.predict_rows(images[0])
        one.append(time.perf_counter() - t0)
    many = []
    for _ in range(max(2, s.flip_runs // 3)):
        t0 = time.perf_counter()
        pred.predict_rows_batch(images)
        many.append(time.perf_counter() - t0)
    return (
        f"batch 1: {1e3 * statistics.median(one):.1f} ms/image; batch {s.batch}: "
        f"{s.batch / statistics.median(many):.1f} images/s (flip test on, {s.size}² input)"
    )


def onnx_model(s: Settings) -> Path:
    """The raw-heads ONNX graph of the DLA-34, exported once per run."""
    path = s.tmp / f"dla34_{s.size}.onnx"
    if not path.is_file():
        from centerpose.export import export_onnx

        export_onnx(dla34().cpu().eval(), path, input_hw=(s.size, s.size), check=False)
    return path


def onnx_row(provider: str) -> Callable[[Settings], str]:
    def run(s: Settings) -> str:
        try:
            import onnxruntime as ort
        except ImportError:
            raise Skip("onnxruntime not installed") from None
        if provider != "CPUExecutionProvider" and not s.cuda:
            raise Skip("no CUDA")
        if provider not in ort.get_available_providers():
            raise Skip(
                f"{provider} not installed (onnxruntime {ort.__version__} has "
                f"{', '.join(ort.get_available_providers())})"
            )
        providers: list = [provider]
        if provider == "TensorrtExecutionProvider":
            providers = [(provider, {"trt_fp16_enable": True}), "CUDAExecutionProvider"]
        path = onnx_model(s)
        t0 = time.perf_counter()
        session = ort.InferenceSession(str(path), providers=providers)
        build = time.perf_counter() - t0
        feed = {
            session.get_inputs()[0].name: np.random.default_rng(0).standard_normal(
                (1, 3, s.size, s.size), dtype=np.float32
            )
        }
        session.run(None, feed)
        times = []
        for _ in range(s.ort_runs if provider != "CPUExecutionProvider" or s.smoke else 5):
            t0 = time.perf_counter()
            session.run(None, feed)
            times.append(time.perf_counter() - t0)
        used = session.get_providers()[0]
        return f"{1e3 * statistics.median(times):.1f} ms, batch 1, {s.size}² (session {build:.1f} s; runs on {used})"

    return run


_DDP: dict[str, object] = {}


def ddp_start(s: Settings) -> None:
    """Launch ``torchrun --nproc-per-node 1 -m centerpose.train`` (a few steps on synthetic data) in the background;
    :func:`ddp_row` waits for it. Smoke runs start it first, beside the other rows (it is mostly start-up)."""
    torchrun = shutil.which("torchrun")
    launcher = [torchrun] if torchrun else [sys.executable, "-m", "torch.distributed.run"]
    from centerpose.data.synthetic import write_synthetic_coco

    root = s.tmp / "ddp_data"
    write_synthetic_coco(root, num_train=8, num_val=4, image_size=(128, 128), seed=0)
    accel = "gpu" if s.cuda else "cpu"
    cmd = launcher + [
        "--standalone",
        "--nproc-per-node",
        "1",
        "-m",
        "centerpose.train",
        "experiment=quickstart",
        "data.synthetic=null",
        f"data.root={root}",
        f"data.input_size={64 if s.smoke else 128}",
        "data.num_workers=0",
        "data.batch_size=2",
        "data.val_batch_size=1",
        "trainer.max_epochs=1",
        "trainer.enable_progress_bar=false",
        "backbone=timm",
        "backbone_name=resnet18",
        "callbacks=none",
        "logger=none",
        "+trainer.limit_val_batches=0",
        "+trainer.max_steps=3",
        f"trainer.accelerator={accel}",
        "trainer.devices=1",
        "trainer.strategy=ddp",
        f"hydra.run.dir={s.tmp / 'ddp_run'}",
    ]
    env = {
        **os.environ,
        "WANDB_MODE": "offline",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
    }
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    log = open(s.tmp / "ddp.log", "w")  # a file, not a pipe: a chatty child cannot block on a full pipe
    _DDP.update(
        proc=subprocess.Popen(cmd, cwd=s.tmp, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True),
        log=log,
        t0=time.perf_counter(),
        accel=accel,
    )


def ddp_row(s: Settings, timeout: float) -> str:
    """Wait for the torchrun run (started here unless already running) and check it wrote a checkpoint."""
    if "proc" not in _DDP:
        ddp_start(s)
    proc: subprocess.Popen = _DDP["proc"]  # type: ignore[assignment]
    try:
        proc.wait(timeout=max(1.0, timeout - (time.perf_counter() - _DDP["t0"]) if s.smoke else timeout))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)  # torchrun and its worker: the session started for them
        raise TimeoutError(f"torchrun did not finish in {timeout:.0f} s") from None
    finally:
        _DDP["log"].close()
    if proc.returncode != 0:
        lines = (s.tmp / "ddp.log").read_text(errors="replace").strip().splitlines() or ["(no output)"]
        raise RuntimeError(f"torchrun exit {proc.returncode}: {lines[-1][:200]}")
    ckpts = list((s.tmp / "ddp_run" / "checkpoints").glob("*.ckpt"))
    if not ckpts:
        raise RuntimeError("torchrun finished but wrote no checkpoint")
    return (
        f"ok: 3 steps, {_DDP['accel']} x1, strategy=ddp, {time.perf_counter() - _DDP['t0']:.0f} s from launch "
        f"({ckpts[0].name})"
    )


@dataclass
class Row:
    name: str
    run: Callable[..., str]
    budget_s: float  # on a GPU; smoke rows get ``smoke_s``
    smoke_s: float = 60.0
    takes_timeout: bool = False  # the row enforces its own timeout (a subprocess)


ROWS = [
    Row("train fp32", train_row("fp32", False), 45),
    Row("train bf16-mixed", train_row("bf16-mixed", False), 45),
    Row("train bf16-mixed + channels_last", train_row("bf16-mixed+channels_last", False), 45),
    Row("train fp32 + torch.compile", train_row("fp32", True), 120),
    Row("train bf16-mixed + channels_last + compile", train_row("bf16-mixed+channels_last", True), 120),
    Row("loader, N workers (GPU hook)", loader_row, 45),
    Row("flip test (Predictor)", flip_row, 45),
    Row("ONNX onnxruntime CPU", onnx_row("CPUExecutionProvider"), 60),
    Row("ONNX onnxruntime CUDA", onnx_row("CUDAExecutionProvider"), 60),
    Row("DDP torchrun x1 centerpose.train", ddp_row, 120, smoke_s=90, takes_timeout=True),
    # Last: a TensorRT engine build runs inside onnxruntime and cannot be interrupted from Python.
    Row("ONNX onnxruntime TensorRT fp16", onnx_row("TensorrtExecutionProvider"), 150),
]


def run_row(row: Row, s: Settings, limit: float) -> tuple[str, str]:
    """(status, text) of one row, run in a thread that is abandoned when it passes ``limit`` seconds."""
    result: dict[str, tuple[str, str]] = {}

    def target() -> None:
        try:
            text = row.run(s, limit) if row.takes_timeout else row.run(s)
            result["r"] = ("ok", text)
        except Skip as e:
            result["r"] = ("skipped", f"skipped: {e}")
        except Exception as e:  # reported in the table; the traceback goes to stderr
            traceback.print_exc(file=sys.stderr)
            result["r"] = ("FAILED", f"FAILED: {type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}")

    thread = threading.Thread(target=target, daemon=True, name=row.name)
    thread.start()
    thread.join(limit + (15 if row.takes_timeout else 0))
    if thread.is_alive():
        return "FAILED", f"FAILED: timeout after {limit:.0f} s (row abandoned; later rows may be slowed by it)"
    return result["r"]


def hardware(s: Settings) -> str:
    if s.cuda:
        p = torch.cuda.get_device_properties(s.device)
        return f"{p.name}, {p.total_memory / 2**30:.0f} GiB, CUDA {torch.version.cuda}"
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    return f"no CUDA: {cpu}, {os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads"


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    shared = Path(os.environ.get("CENTERPOSE_SHARED", REPO.parent / "shared"))
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, seconds per row, any device")
    ap.add_argument("--cpu", action="store_true", help="run on the CPU even where CUDA is present")
    ap.add_argument(
        "--root", type=Path, default=shared / "data/coco-mini", help="coco-mini root (else a synthetic set is written)"
    )
    ap.add_argument("--workers", type=int, default=None, help="loader workers (default: min(8, CPUs))")
    ap.add_argument(
        "--total-budget",
        type=float,
        default=None,
        help="seconds for all rows (default: 470 on a GPU, 110 with --smoke); later rows are not run",
    )
    ap.add_argument("--rows", nargs="*", default=None, help="only rows whose name contains one of these words")
    args = ap.parse_args()
    s = Settings.make(args)
    total = args.total_budget or (110.0 if s.smoke else 470.0)
    rows = [r for r in ROWS if not args.rows or any(w.lower() in r.name.lower() for w in args.rows)]
    start = time.perf_counter()
    if s.smoke and any(r.run is ddp_row for r in rows):
        ddp_start(s)  # beside the other rows: on a CPU it is mostly interpreter start-up
    print(
        f"# centerpose GPU acceptance{' (smoke)' if s.smoke else ''}: {hardware(s)}; torch {torch.__version__}; "
        f"input {s.size}², batch {s.batch}, {s.warmup} warm-up + {s.steps} timed steps per train row",
        flush=True,
    )
    results = []
    for row in rows:
        left = total - (time.perf_counter() - start)
        limit = min(row.smoke_s if s.smoke else row.budget_s, left)
        if limit < 5:
            results.append((row.name, "FAILED", "FAILED: not run, the total budget was spent", 0.0))
            continue
        t0 = time.perf_counter()
        status, text = run_row(row, s, limit)
        results.append((row.name, status, text, time.perf_counter() - t0))
        print(f"  [{time.perf_counter() - start:6.1f} s] {row.name}: {text}", file=sys.stderr, flush=True)
    width = max(len(r[0]) for r in results)
    print(f"\n| {'row':<{width}} | time | result |")
    print(f"|{'-' * (width + 2)}|------|--------|")
    for name, _, text, dt in results:
        print(f"| {name:<{width}} | {dt:4.0f} s | {text} |")
    failed = [r[0] for r in results if r[1] == "FAILED"]
    print(
        f"\n{len(results) - len(failed)} of {len(results)} rows ok or skipped; "
        f"{'failed: ' + ', '.join(failed) if failed else 'none failed'}; {time.perf_counter() - start:.0f} s in all",
        flush=True,
    )
    sys.stdout.flush()
    sys.stderr.flush()
    if "proc" in _DDP and _DDP["proc"].poll() is None:  # type: ignore[union-attr]
        os.killpg(_DDP["proc"].pid, 9)  # type: ignore[union-attr]
    shutil.rmtree(s.tmp, ignore_errors=True)
    os._exit(1 if failed else 0)  # abandoned row threads (a hung kernel or engine build) must not keep us alive


if __name__ == "__main__":
    main()
