"""End of a training run: a short table of what it reached, where its files are, what to run next, and a plot.

:class:`RunHistory` (a callback, ``callbacks.run_history``) keeps the epoch-level losses and COCO metrics of
the fit. :func:`finish` (called by ``centerpose.train`` after the fit) validates the final weights if the last
epoch did not, draws ``curves.png`` (loss and AP over epochs) into the run folder (and into wandb when that is
a logger), writes ``metrics.json`` and prints the summary.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from functools import partial
from pathlib import Path
from typing import Any, Mapping

import pytorch_lightning as pl
from pytorch_lightning.trainer.states import TrainerFn
from rich.console import Console
from rich.table import Table

from centerpose.codec.codec import DecodeOptions
from centerpose.training.callbacks import batch_images

log = logging.getLogger("centerpose.training.summary")

__all__ = ["RunHistory", "finish", "plot_curves", "silence_lightning_tips"]

LOSS_KEYS = ("loss", "hm_loss", "hp_loss", "hm_hp_loss", "hp_offset_loss", "wh_loss", "off_loss")
AP_KEYS = ("AP", "AP50", "bbox_AP")


def _floats(metrics: Mapping[str, Any], prefix: str) -> dict[str, float]:
    """``{name without prefix and _epoch suffix: value}`` of the scalar metrics under ``prefix``."""
    out = {}
    for key, value in metrics.items():
        if key.startswith(prefix) and not key.endswith("_step"):
            try:
                out[key[len(prefix) :].removesuffix("_epoch")] = float(value)
            except (TypeError, ValueError):
                continue
    return out


class RunHistory(pl.Callback):
    """Epoch-level history of a fit: training losses, validation losses and COCO metrics, images and time.

    Attributes:
        train: ``{epoch: {"loss": ..., "hm_loss": ..., "images_per_s": ...}}`` of every finished training epoch.
        val: ``{epoch: {"loss": ..., "AP": ..., "bbox_AP": ...}}`` of every validation (a validation after the
            fit is filed under the last trained epoch: same weights).
        images: training images seen (this rank).
        fit_seconds: wall time of the fit (training + validations inside it).
    """

    def __init__(self) -> None:
        self.train: dict[int, dict[str, float]] = {}
        self.val: dict[int, dict[str, float]] = {}
        self.images = 0
        self.fit_seconds = 0.0
        self._fit_start: float | None = None

    @property
    def last_train_epoch(self) -> int | None:
        return max(self.train) if self.train else None

    def final_weights_validated(self) -> bool:
        """Whether the last validation saw the weights the fit ended with."""
        last = self.last_train_epoch
        return last is None or last in self.val

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._fit_start = time.perf_counter()

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._fit_start is not None:
            self.fit_seconds += time.perf_counter() - self._fit_start
            self._fit_start = None

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self.images += batch_images(batch)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        row = _floats(trainer.callback_metrics, "train/")
        perf = _floats(trainer.callback_metrics, "perf/")
        if "train_images_per_s" in perf:
            row["images_per_s"] = perf["train_images_per_s"]
        self.train[trainer.current_epoch] = row

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        # Inside the fit the epoch is the current one; a validation after it belongs to the last trained epoch.
        fitting = trainer.state.fn == TrainerFn.FITTING
        epoch = trainer.current_epoch if fitting or self.last_train_epoch is None else self.last_train_epoch
        row = _floats(trainer.callback_metrics, "val/")
        # when these weights were reached: fit seconds and training images so far (AP vs minutes)
        row["fit_s"] = self.fit_seconds + (time.perf_counter() - self._fit_start if self._fit_start else 0.0)
        row["images_seen"] = float(self.images)
        self.val[epoch] = row

    def state_dict(self) -> dict[str, Any]:
        return {"train": self.train, "val": self.val, "images": self.images, "fit_seconds": self.fit_seconds}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.train = {int(k): v for k, v in state_dict.get("train", {}).items()}
        self.val = {int(k): v for k, v in state_dict.get("val", {}).items()}
        self.images = int(state_dict.get("images", 0))
        self.fit_seconds = float(state_dict.get("fit_seconds", 0.0))


def plot_curves(history: RunHistory, path: Path, title: str = "") -> Path | None:
    """Loss (left) and AP (right) over epochs as a PNG; None when there is no finished epoch to plot."""
    if not history.train:
        return None
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_ap) = plt.subplots(1, 2, figsize=(11, 4), dpi=100)
    epochs = sorted(history.train)
    for key in LOSS_KEYS:
        ys = [history.train[e].get(key, math.nan) for e in epochs]
        if not all(math.isnan(y) for y in ys):
            ax_loss.plot(
                [e + 1 for e in epochs],
                ys,
                lw=2.0 if key == "loss" else 1.0,
                ls="-" if key == "loss" else "--",
                label=f"train {key}",
            )
    val_epochs = sorted(history.val)
    val_loss = [history.val[e].get("loss", math.nan) for e in val_epochs]
    if val_epochs and not all(math.isnan(y) for y in val_loss):
        ax_loss.plot([e + 1 for e in val_epochs], val_loss, "ko-", lw=2.0, label="val loss")
    ax_loss.set(xlabel="epoch", ylabel="loss", yscale="log", title="losses")
    ax_loss.legend(fontsize=7, ncol=2)
    ax_loss.grid(alpha=0.3)
    for key, label in zip(AP_KEYS, ("keypoint AP", "keypoint AP50", "box AP")):
        ys = [history.val[e].get(key, math.nan) for e in val_epochs]
        if val_epochs and not all(math.isnan(y) for y in ys):
            ax_ap.plot([e + 1 for e in val_epochs], ys, "o-", label=label)
    ax_ap.set(xlabel="epoch", ylabel="COCO AP (val)", ylim=(0, 1), title="validation")
    ax_ap.set_xlim(left=0, right=max(epochs) + 2)
    ax_ap.legend(fontsize=8)
    ax_ap.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _find_history(trainer: pl.Trainer) -> RunHistory | None:
    return next((cb for cb in trainer.callbacks if isinstance(cb, RunHistory)), None)


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def _checkpoints(trainer: pl.Trainer) -> tuple[str | None, str | None]:
    """(best, last) checkpoint paths of the ModelCheckpoint callbacks, where they exist."""
    best = last = None
    for cb in trainer.checkpoint_callbacks:
        if getattr(cb, "best_model_path", "") and Path(cb.best_model_path).is_file() and cb.monitor:
            best = cb.best_model_path
        if getattr(cb, "last_model_path", "") and Path(cb.last_model_path).is_file():
            last = cb.last_model_path
        elif not cb.monitor and getattr(cb, "best_model_path", "") and Path(cb.best_model_path).is_file():
            last = cb.best_model_path
    return best, last


def finish(
    trainer: pl.Trainer,
    model: pl.LightningModule,
    datamodule: pl.LightningDataModule | None,
    output_dir: str | Path,
    started: float,
    validate_final: bool = True,
    console: Console | None = None,
) -> dict[str, float]:
    """Close a fit: validate the final weights if needed, write metrics.json and curves.png, print the summary.

    Args:
        trainer, model, datamodule: those of the finished fit.
        output_dir: the run folder.
        started: ``time.time()`` when the run started (for the wall time).
        validate_final: run one validation when the fit ended on an epoch that did not validate (e.g. stopped
            by ``trainer.max_time``), so the reported AP is that of the final weights.
        console: where to print (default: a new rich console on stdout).

    Returns:
        The final metrics (``trainer.callback_metrics`` as floats).
    """
    output_dir = Path(output_dir)
    history = _find_history(trainer)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    if (
        validate_final
        and history is not None
        and not history.final_weights_validated()
        and trainer.limit_val_batches != 0
        and datamodule is not None
    ):
        log.info("validating the final weights (the last epoch did not validate)")
        trainer.validate(model, datamodule=datamodule, verbose=False)
        # validate() replaces Lightning's callback metrics: keep the fit's training metrics beside the new ones
        metrics.update({k: float(v) for k, v in trainer.callback_metrics.items()})
    if not trainer.is_global_zero:
        return metrics
    (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    wall = time.time() - started
    curves = None
    if history is not None:
        curves = plot_curves(history, output_dir / "curves.png", title=f"{output_dir.parent.name}/{output_dir.name}")
        (output_dir / "history.json").write_text(json.dumps(history.state_dict(), indent=2))
        if curves is not None:
            for logger in trainer.loggers:
                if isinstance(logger, pl.loggers.WandbLogger):
                    logger.log_image(key="summary/curves", images=[str(curves)])
    # The evaluate/predict defaults are the original's test protocol (keep_res: the image at its own size), which
    # suits the original's 512 training input. A run trained at another size is evaluated as it was validated:
    # letterboxed to its input size (which the checkpoint records).
    codec = getattr(datamodule, "codec", None)
    letterbox = getattr(codec, "input_size", 512) != 512
    _print(
        console or Console(), trainer, metrics, history, output_dir, curves, wall, letterbox, _decode_switches(codec)
    )
    return metrics


def _decode_switches(codec: Any) -> dict[str, Any]:
    """The validation's decode options that differ from the original's (``DecodeOptions()``), which evaluate,
    predict and export start from: the printed commands set them (``decode.<name>=...``) so they score what
    validation did. The sigmoid and the flip test are left to those commands' test protocol."""
    options = getattr(codec, "options", None)
    if options is None:
        return {}
    default = DecodeOptions()
    return {
        f.name: getattr(options, f.name)
        for f in dataclasses.fields(DecodeOptions)
        if f.name not in ("sigmoid", "flip_test") and getattr(options, f.name) != getattr(default, f.name)
    }


def _print(
    console: Console,
    trainer: pl.Trainer,
    metrics: dict[str, float],
    history: RunHistory | None,
    output_dir: Path,
    curves: Path | None,
    wall: float,
    letterbox: bool = False,
    decode_switches: dict[str, Any] | None = None,
) -> None:
    get = metrics.get
    images_per_s = train_loss = None
    if history is not None and history.train:
        rates = [r["images_per_s"] for r in history.train.values() if "images_per_s" in r]
        images_per_s = sum(rates) / len(rates) if rates else None
        # a validation after the fit resets Lightning's callback metrics: the last epoch's loss is in the history
        train_loss = history.train[max(history.train)].get("loss")
    table = Table(title="centerpose: end of run", show_header=True, header_style="bold")
    for name in ("kp AP", "kp AP50", "kp AR", "box AP", "train loss", "val loss", "images/s", "wall time"):
        table.add_column(name, justify="right")
    table.add_row(
        _fmt(get("val/AP")),
        _fmt(get("val/AP50")),
        _fmt(get("val/AR")),
        _fmt(get("val/bbox_AP")),
        _fmt(train_loss if train_loss is not None else get("train/loss_epoch")),
        _fmt(get("val/loss")),
        _fmt(images_per_s, 1),
        _minutes(wall),
    )
    console.print(table)
    if history is not None and history.val:
        trajectory = ", ".join(f"{e + 1}: {r.get('AP', math.nan):.3f}" for e, r in sorted(history.val.items()))
        console.print(f"keypoint AP by epoch: {trajectory}")
        console.print(
            f"{history.images} training images in {trainer.current_epoch} epochs, {trainer.global_step} optimizer steps"
        )
    best, last = _checkpoints(trainer)
    logs = [lg.log_dir for lg in trainer.loggers if getattr(lg, "log_dir", None)]
    pose_dirs = sorted({str(p.parent) for p in output_dir.rglob("pose_images/*.jpg")})
    # paths on one line each (copy-pasteable), relative to where the user launched when below it
    out = partial(console.print, soft_wrap=True, highlight=False)
    out(f"run folder:   {_short(output_dir)}")
    for label, value in (
        ("checkpoints", ", ".join(_short(p) for p in (last, best) if p)),
        ("logs", ", ".join(_short(p) for p in logs)),
        ("pose images", ", ".join(map(_short, pose_dirs))),
        ("curves", _short(curves) if curves else None),
    ):
        if value:
            out(f"{label + ':':13} {value}")
    ckpt = last or best  # the final weights, which the table describes
    if ckpt:
        data = _hydra_choice("data")
        switches = "".join(f" decode.{k}={str(v).lower()}" for k, v in (decode_switches or {}).items())
        out("next:")
        out(
            f"  python -m centerpose.evaluate model={_short(ckpt)}"
            + (f" data={data}" if data else "")
            + (" test.keep_res=false" if letterbox else "")
            + switches
        )
        out(
            f"  python -m centerpose.predict model={_short(ckpt)} source=<image, folder or video>"
            + (" keep_res=false" if letterbox else "")
            + switches
        )
        # people out of one ONNX graph, decoded as validation did (fixed at the checkpoint's input size)
        out(f"  python -m centerpose.export model={_short(ckpt)} outputs=people" + switches)


def _hydra_choice(group: str) -> str | None:
    """The option of a config group this Hydra job was composed with (``data`` -> ``synthetic``), if any."""
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get().runtime.choices.get(group) if HydraConfig.initialized() else None


def _short(path: str | Path) -> str:
    """``path`` relative to the working directory when it lies below it, else as given."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


class _DropLitLoggerTip(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


def silence_lightning_tips() -> None:
    """Drop Lightning's advertisement for its hosted logger (printed by every Trainer without a LitLogger)."""
    rank_zero_log = logging.getLogger("pytorch_lightning.utilities.rank_zero")  # where rank_zero_info logs
    if not any(isinstance(f, _DropLitLoggerTip) for f in rank_zero_log.filters):
        rank_zero_log.addFilter(_DropLitLoggerTip())
