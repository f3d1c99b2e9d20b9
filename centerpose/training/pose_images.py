"""Seeing training: a callback that draws predicted and ground-truth skeletons of a few val images.

Every ``every_n_epochs`` epochs (on an epoch that validates) the first ``num_images`` images of the validation
set are run through the model and drawn as ``prediction | ground truth`` pairs. The pairs are written to
``<log dir>/pose_images/epoch_XXX_<img_id>.jpg`` (any logger, or none) and, when a :class:`WandbLogger` is
attached, logged to wandb under ``val/poses``. The image set is fixed, so epochs can be compared side by side.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.utilities import rank_zero_warn

from centerpose.codec.codec import CenterPoseCodec
from centerpose.codec.poses import Poses
from centerpose.data.photometric import sample_input
from centerpose.keypoints import COCO_PERSON, KeypointSpec
from centerpose.inference.visualize import draw_ground_truth, draw_poses, side_by_side

__all__ = ["PoseImageLogger", "PoseSample", "is_due", "load_samples", "predict_samples", "render_sample"]


@dataclass
class PoseSample:
    """One validation image with what the network and the drawing need.

    Attributes:
        img_id: COCO image id.
        image: (H, W, 3) uint8 BGR original image.
        input: (3, R, R) float32 network input (the val dataset's deterministic geometry).
        c: (2,) affine centre in image pixels; s: affine scale in image pixels (undo the input warp).
        annotations: the image's COCO annotation dicts (crowd ones included; the drawing skips them).
    """

    img_id: int
    image: np.ndarray
    input: np.ndarray
    c: np.ndarray
    s: float
    annotations: list[dict]


def load_samples(dataset: Any, num_images: int) -> list[PoseSample]:
    """The first ``num_images`` images of a :class:`~centerpose.data.coco.CocoPoseDataset`-like val set.

    The dataset must provide ``len()``, ``ds[i] -> {"input", "meta": {"img_id", "c", "s"}}``,
    ``load_image(i)`` and a pycocotools ``coco`` object.
    """
    missing = [name for name in ("coco", "load_image", "__getitem__", "__len__") if not hasattr(dataset, name)]
    if missing:
        raise TypeError(
            f"pose images need a CocoPoseDataset-like val set; {type(dataset).__name__} lacks {', '.join(missing)}"
        )
    samples = []
    for i in range(min(int(num_images), len(dataset))):
        item = dataset[i]
        meta = item["meta"]
        img_id = int(meta["img_id"])
        anns = dataset.coco.loadAnns(ids=dataset.coco.getAnnIds(imgIds=[img_id]))
        samples.append(
            PoseSample(
                img_id=img_id,
                image=dataset.load_image(i),
                input=sample_input(item),
                c=np.asarray(meta["c"], np.float64).reshape(2),
                s=float(meta["s"]),
                annotations=list(anns),
            )
        )
    return samples


@torch.no_grad()
def predict_samples(
    model: torch.nn.Module,
    samples: Sequence[PoseSample],
    codec: CenterPoseCodec | None = None,
    *,
    K: int | None = None,
    device: torch.device | str = "cpu",
    forward_context: Any = None,
) -> list[Poses]:
    """Run ``model`` on the samples' inputs in one batch and decode to image coordinates.

    Decoding is ``codec``'s (default: plain sigmoid, original top-k, no flip, §3.2/§3.4) with per-joint heatmap
    scores, so that low-confidence joints can be hidden when drawing; with the codec's ``flip_test`` the
    mirrored inputs run in the same batch.

    Args:
        model: ``model(x: (B, 3, R, R))`` returns the per-stack list of raw head dicts; called as is (the
            caller sets eval mode).
        samples: from :func:`load_samples`.
        codec: the decode (default :class:`CenterPoseCodec`'s defaults).
        K: overrides the codec's detections per image (capped at the output map's cell count).
        device: where to run.
        forward_context: optional context manager factory wrapped around the forward (Lightning's precision
            plugin ``forward_context``, so half-precision models get matching inputs).

    Returns:
        One :class:`Poses` (K people, float32 numpy) per sample.
    """
    if not samples:
        return []
    codec = codec if codec is not None else CenterPoseCodec()
    if K is not None:
        codec = codec.replace(K=int(K))
    x = torch.from_numpy(np.stack([s.input for s in samples])).to(device)
    if codec.options.flip_test:
        x = torch.cat([x, x.flip(3)])
    if forward_context is not None:
        with forward_context():
            outputs = model(x)
    else:
        outputs = model(x)
    meta = {
        "c": torch.from_numpy(np.stack([s.c for s in samples])),
        "s": torch.tensor([smp.s for smp in samples], dtype=torch.float64),
    }
    return codec.decode(outputs[-1], meta).numpy().unbind()


def render_sample(
    sample: PoseSample,
    poses: Poses | np.ndarray,
    keypoints: KeypointSpec = COCO_PERSON,
    score_thresh: float = 0.3,
    kpt_thresh: float = 0.1,
) -> np.ndarray:
    """Draw predictions (left) next to the ground truth (right) on the original image.

    Args:
        sample: the image and its annotations.
        poses: the image's people from :func:`predict_samples` (or their (K, 5 + 3J) predictor rows).
        keypoints: skeleton to draw.
        score_thresh: people scored at or below this are not drawn.
        kpt_thresh: joints whose heatmap score is at or below this are not drawn.

    Returns:
        (H, 2W + 4, 3) uint8 BGR image.
    """
    j = keypoints.num_joints
    if not isinstance(poses, Poses):
        rows = np.asarray(poses)
        if rows.ndim != 2 or rows.shape[1] != 5 + 3 * j:
            raise ValueError(
                f"render_sample: rows must be (K, {5 + 3 * j}) for a {j}-joint KeypointSpec, got {rows.shape}"
            )
        poses = Poses.from_rows(rows, num_joints=j)
    elif poses.num_joints != j:
        raise ValueError(f"render_sample: poses have {poses.num_joints} joints, the KeypointSpec {j}")
    pred = draw_poses(
        sample.image,
        poses.boxes,
        poses.scores,
        poses.keypoints,
        keypoints,
        score_thresh=score_thresh,
        kpt_thresh=kpt_thresh,
    )
    gt = draw_ground_truth(sample.image, sample.annotations, keypoints)
    return side_by_side(pred, gt)


def is_due(epoch: int, every_n_epochs: int, last_window: int) -> bool:
    """Whether a validating ``epoch`` (0-based) should log images.

    Epochs fall into windows of ``every_n_epochs`` (window ``(epoch + 1) // every_n_epochs``, so epoch N-1 opens
    window 1); the first validation of a window not yet logged logs. The very first validation always logs
    (window 0, a baseline), and a multiple of N that does not validate is made up by the next one that does.
    """
    return (epoch + 1) // every_n_epochs > last_window


class PoseImageLogger(pl.Callback):
    """Log predicted vs ground-truth skeletons of a fixed set of val images every few epochs.

    Runs on global rank 0 at the end of validation epochs (never during the sanity check), with the model in
    eval mode and without gradients; other ranks only wait for it at the next collective.

    Args:
        num_images: how many val images (the first ones of the val set).
        every_n_epochs: at most one set of images per this many epochs (see :func:`is_due`).
        score_thresh: people scored at or below this are not drawn.
        kpt_thresh: predicted joints with a heatmap score at or below this are not drawn.
        dirname: sub-folder of the log dir (``trainer.log_dir``, else ``default_root_dir``) for the files.
        codec: the run's codec; its decode options (K, flip test, tie-break, snap) apply, with the detector's
            plain sigmoid (so joint scores read as heatmap probabilities). Default: the codec defaults.
        wandb_key: key of the wandb image panel.
        jpeg_quality: quality of the written JPEGs.
    """

    def __init__(
        self,
        num_images: int = 4,
        every_n_epochs: int = 5,
        score_thresh: float = 0.3,
        kpt_thresh: float = 0.1,
        dirname: str = "pose_images",
        codec: CenterPoseCodec | None = None,
        wandb_key: str = "val/poses",
        jpeg_quality: int = 90,
    ) -> None:
        if num_images < 1:
            raise ValueError(f"PoseImageLogger: num_images must be >= 1, got {num_images}")
        if every_n_epochs < 1:
            raise ValueError(f"PoseImageLogger: every_n_epochs must be >= 1, got {every_n_epochs}")
        self.num_images = int(num_images)
        self.every_n_epochs = int(every_n_epochs)
        self.score_thresh = float(score_thresh)
        self.kpt_thresh = float(kpt_thresh)
        self.dirname = dirname
        self.codec = (codec if codec is not None else CenterPoseCodec()).replace(sigmoid="plain")
        self.wandb_key = wandb_key
        self.jpeg_quality = int(jpeg_quality)
        self.out_dir: Path | None = None
        self.last_window = -1
        self._samples: list[PoseSample] | None = None
        self._disabled = False

    @property
    def state_key(self) -> str:
        return self._generate_state_key(dirname=self.dirname)

    def state_dict(self) -> dict[str, Any]:
        return {"last_window": self.last_window}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.last_window = int(state_dict.get("last_window", -1))

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        # trainer.log_dir broadcasts from rank 0, so it must be read here, on every rank, not in the rank-0 hook.
        self.out_dir = Path(trainer.log_dir or trainer.default_root_dir) / self.dirname

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero or self._disabled:
            return
        epoch = trainer.current_epoch
        if not is_due(epoch, self.every_n_epochs, self.last_window):
            return
        samples = self._load(trainer)
        if not samples:
            return
        self.last_window = (epoch + 1) // self.every_n_epochs
        keypoints = getattr(pl_module, "keypoints", COCO_PERSON)
        was_training = pl_module.training
        pl_module.eval()
        try:
            poses = predict_samples(
                pl_module,
                samples,
                self.codec,
                device=pl_module.device,
                forward_context=trainer.precision_plugin.forward_context,
            )
        finally:
            pl_module.train(was_training)
        images = [render_sample(s, p, keypoints, self.score_thresh, self.kpt_thresh) for s, p in zip(samples, poses)]
        captions = [
            f"epoch {epoch} image {s.img_id}: {int((p.scores > self.score_thresh).sum())} predicted, "
            f"{sum(1 for a in s.annotations if not a.get('iscrowd', 0))} annotated"
            for s, p in zip(samples, poses)
        ]
        # setup() normally resolved the folder; default_root_dir needs no broadcast, unlike log_dir.
        self._save(images, samples, epoch, self.out_dir or Path(trainer.default_root_dir) / self.dirname)
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                # wandb reads arrays as RGB; ours are cv2's BGR.
                logger.log_image(
                    key=self.wandb_key,
                    images=[np.ascontiguousarray(im[:, :, ::-1]) for im in images],
                    caption=captions,
                    step=trainer.global_step,
                )

    # ------------------------------------------------------------------ helpers
    def _load(self, trainer: pl.Trainer) -> list[PoseSample]:
        """The fixed sample set, read once (the val set of the data module, else of the val loader)."""
        if self._samples is None:
            dataset = getattr(getattr(trainer, "datamodule", None), "val_set", None)
            if dataset is None:
                loaders = trainer.val_dataloaders
                loader = loaders[0] if isinstance(loaders, (list, tuple)) and loaders else loaders
                dataset = getattr(loader, "dataset", None)
            try:
                self._samples = load_samples(dataset, self.num_images)
            except TypeError as e:  # a custom val set: training goes on without pictures
                rank_zero_warn(f"PoseImageLogger disabled: {e}")
                self._disabled = True
                return []
        return self._samples

    def _save(self, images: Sequence[np.ndarray], samples: Sequence[PoseSample], epoch: int, out_dir: Path) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        for image, sample in zip(images, samples):
            path = out_dir / f"epoch_{epoch:03d}_{sample.img_id}.jpg"
            if not cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality]):
                raise OSError(f"PoseImageLogger: cannot write {path}")
