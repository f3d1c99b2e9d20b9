"""CocoPoseDataModule: COCO-layout keypoint data for Lightning (train / val loaders, DDP-ready)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import cv2
import pytorch_lightning as pl
from lightning_fabric.utilities.seed import pl_worker_init_function
from torch.utils.data import DataLoader

from centerpose.data.collate import collate_samples
from centerpose.errors import RunError
from centerpose.keypoints import COCO_PERSON, KeypointSpec

COCO_HELP = (
    "Expected the COCO 2017 keypoint layout:\n"
    "  {root}/annotations/person_keypoints_train2017.json\n"
    "  {root}/annotations/person_keypoints_val2017.json\n"
    "  {root}/train2017/*.jpg  {root}/val2017/*.jpg\n"
    "Get COCO from https://cocodataset.org/#download (2017 Train/Val images and 2017 Train/Val "
    "annotations), unpack it there or point `data.root=` at it. Without a dataset, try `data=synthetic` "
    "(the package writes a small one itself)."
)


class DatasetNotFoundError(RunError, FileNotFoundError):
    """The dataset files a run needs are missing; the message lists what was looked for."""


def coco_split_paths(root: str | Path, split: str) -> tuple[Path, Path]:
    """``(image_dir, ann_file)`` of ``split`` ('train' or 'val') under a COCO-layout ``root``."""
    root = Path(root)
    return root / f"{split}2017", root / "annotations" / f"person_keypoints_{split}2017.json"


def check_coco_layout(root: str | Path, splits: tuple[str, ...] = ("train", "val")) -> None:
    """Raise :class:`DatasetNotFoundError` naming every missing path of ``splits`` under ``root``."""
    missing = [str(p) for split in splits for p in coco_split_paths(root, split) if not p.exists()]
    if missing:
        raise DatasetNotFoundError(
            f"COCO keypoint data not found under '{root}'. Missing:\n  "
            + "\n  ".join(missing)
            + "\n"
            + COCO_HELP.format(root=root)
        )


def worker_init(worker_id: int) -> None:
    """DataLoader worker setup: cv2 without its own thread pool (a worker is one core; cv2's threads
    only oversubscribe), then Lightning's per-worker seeding when ``seed_everything(workers=True)``
    asked for it (Lightning adds its own ``worker_init_fn`` only to loaders that have none)."""
    cv2.setNumThreads(0)
    if int(os.environ.get("PL_SEED_WORKERS", 0)):
        pl_worker_init_function(worker_id)


class CocoPoseDataModule(pl.LightningDataModule):
    """Train and val loaders over a COCO-layout person-keypoints dataset.

    Training uses the original's image filter (images with at least one annotation) and augmentation;
    validation uses every image of the val json with the original's test-time geometry. Lightning adds
    the distributed samplers under DDP.

    Args:
        root: dataset root with ``annotations/`` and ``{train,val}2017/``.
        batch_size: per-device training batch size.
        val_batch_size: per-device validation batch size.
        num_workers, pin_memory, persistent_workers: DataLoader settings.
        keypoints: skeleton description (flip pairs for the flip augmentation, number of joints).
        input_size, down_ratio, max_objs: the original's 512 / 4 / 32 (used when no ``codec`` is given).
        codec: encodes the targets of both splits (:class:`~centerpose.codec.CenterPoseCodec`; its skeleton,
            input size, down ratio and ``max_objs`` are the datasets'); default: one built from the values above.
        train_options: extra keyword arguments for the training :class:`CocoPoseDataset`
            (augmentation switches, extra albumentations transforms, RNG mode).
        input_format: "uint8" (default) — loaders ship the warped uint8 image and a (3, 4) colour +
            normalisation map per sample, finished on the device by the module's
            ``on_after_batch_transfer`` (:func:`centerpose.data.photometric.finish_input`); "float" — the
            original's CPU float path (see :class:`CocoPoseDataset`).
        joint_heatmaps: "sparse" (default) — samples of both splits carry ``hp_radius`` instead of the (J, O, O)
            ``hm_hp`` map, which the module's ``on_after_batch_transfer`` draws for the whole batch where it lands,
            bit for bit the same (:mod:`centerpose.codec.device_heatmaps`); "dense" — samples carry ``hm_hp``
            (the original's; for loops that read ``hm_hp`` from loader batches without the module's hook).
        decode_reduction: "off" (default, the original's pixels) or "auto": training JPEGs whose crop shrinks them
            at least 2, 4 or 8 times are decoded that much smaller by libjpeg-turbo's DCT scaling (see
            :class:`CocoPoseDataset`; COCO at input 512 never shrinks 2x, smaller inputs or larger images do).
        synthetic: if given, ``root`` is filled with :func:`centerpose.data.synthetic.ensure_synthetic_coco`
            using these keyword arguments before loading (the package's embedded default dataset).
        preflight: check the annotation files and that every image exists before the datasets are built
            (:mod:`centerpose.data.preflight`); fatal problems stop the run before its first step.
        on_bad_sample: ``skip`` replaces a sample whose image cannot be read during the run (reported in the
            log and ``bad_samples.json``); ``raise`` stops at it.
        report_dir: where the pre-flight report (``preflight.json``) is written when it found problems.
    """

    def __init__(
        self,
        root: str | Path,
        batch_size: int = 32,
        val_batch_size: int = 1,
        num_workers: int = 4,
        pin_memory: bool = True,
        persistent_workers: bool = True,
        keypoints: KeypointSpec = COCO_PERSON,
        input_size: int = 512,
        down_ratio: int = 4,
        max_objs: int = 32,
        train_options: dict[str, Any] | None = None,
        synthetic: dict[str, Any] | None = None,
        preflight: bool = True,
        on_bad_sample: str = "skip",
        report_dir: str | Path | None = None,
        input_format: str = "uint8",
        codec: Any | None = None,
        joint_heatmaps: str = "sparse",
        decode_reduction: str = "off",
    ) -> None:
        super().__init__()
        self.root = Path(root)
        self.batch_size = batch_size
        self.val_batch_size = val_batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        # Persistent workers would keep a stale epoch for per-sample augmentation RNGs.
        per_sample = (train_options or {}).get("rng") == "per_sample"
        self.persistent_workers = persistent_workers and num_workers > 0 and not per_sample
        if codec is None:
            from centerpose.codec.codec import CenterPoseCodec

            codec = CenterPoseCodec(keypoints, input_size, down_ratio, max_objs)
        self.codec = codec
        self.keypoints = codec.keypoints
        self.common = dict(codec=codec, input_format=input_format, joint_heatmaps=joint_heatmaps)
        # Training samples only: validation keeps the full decode the evaluation protocol reads.
        self.train_options = {"decode_reduction": decode_reduction, **(train_options or {})}
        self.synthetic = synthetic
        if on_bad_sample not in ("skip", "raise"):
            raise ValueError(f"data.on_bad_sample must be 'skip' or 'raise', got {on_bad_sample!r}")
        self.preflight, self.on_bad_sample = preflight, on_bad_sample
        self.report_dir = Path(report_dir) if report_dir else None
        self.train_set = None
        self.val_set = None

    def prepare_data(self) -> None:
        # Runs on one process per node before setup(): the place to write the synthetic dataset.
        if self.synthetic is not None:
            from centerpose.data.synthetic import ensure_synthetic_coco

            # The figures are annotated with this run's skeleton unless the synthetic options name one.
            ensure_synthetic_coco(self.root, **{"keypoints": self.keypoints, **self.synthetic})

    def setup(self, stage: str | None = None) -> None:
        from centerpose.data.coco import CocoPoseDataset

        if stage in (None, "fit") and self.train_set is None:
            check_coco_layout(self.root, ("train", "val"))
            self.run_preflight(("train", "val"))
            image_dir, ann_file = coco_split_paths(self.root, "train")
            self.train_set = CocoPoseDataset(
                image_dir, ann_file, train=True, augment=True, **{**self.common, **self.train_options}
            )
            self.train_set.on_bad_sample = self.on_bad_sample
        if stage in (None, "fit", "validate", "test") and self.val_set is None:
            check_coco_layout(self.root, ("val",))
            if stage not in (None, "fit"):
                self.run_preflight(("val",))
            image_dir, ann_file = coco_split_paths(self.root, "val")
            self.val_set = CocoPoseDataset(image_dir, ann_file, train=False, augment=False, **self.common)
            self.val_set.on_bad_sample = self.on_bad_sample

    def run_preflight(self, splits: tuple[str, ...]) -> None:
        """Check the splits' annotations and image files; raise on fatal problems (no-op with preflight off)."""
        if not self.preflight:
            return
        from centerpose.data.preflight import check_split, enforce

        reports = [
            check_split(
                ann,
                images,
                self.keypoints.num_joints,
                self.keypoints.category_name,
                train=split == "train",
                missing_images_fatal=self.on_bad_sample == "raise",
            )
            for split in splits
            for images, ann in [coco_split_paths(self.root, split)]
        ]
        enforce(reports, self.report_dir / "preflight.json" if self.report_dir else None)

    def _loader(self, dataset, batch_size: int, train: bool) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=train,
            drop_last=train,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers,
            worker_init_fn=worker_init,
            collate_fn=collate_samples,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, self.batch_size, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, self.val_batch_size, train=False)

    def test_dataloader(self) -> DataLoader:
        return self.val_dataloader()

    @property
    def val_ann_file(self) -> Path:
        return coco_split_paths(self.root, "val")[1]
