"""PoseImageLogger: fixed val images drawn as prediction | ground truth, to files and to wandb."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from pytorch_lightning.loggers import CSVLogger, WandbLogger
from pytorch_lightning.plugins.precision import Precision

from centerpose.config import compose
from centerpose.data.coco import CocoPoseDataset
from centerpose.data.datamodule import coco_split_paths
from centerpose.keypoints import COCO_PERSON
from centerpose.training.pose_images import PoseImageLogger, is_due, load_samples, predict_samples, render_sample
from centerpose.train import build

GAP = 4  # side_by_side's black strip
TITLE_ROWS = 24  # below the titles, halves show only the image and the drawings


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory) -> Path:
    from centerpose.data.synthetic import write_synthetic_coco

    root = tmp_path_factory.mktemp("synthetic")
    write_synthetic_coco(root, num_train=4, num_val=3, image_size=(128, 128))
    return root


@pytest.fixture(scope="module")
def val_set(synthetic_root) -> CocoPoseDataset:
    image_dir, ann_file = coco_split_paths(synthetic_root, "val")
    return CocoPoseDataset(image_dir, ann_file, train=False, augment=False, input_size=128)


def make_cfg(root: Path, out: Path, *overrides: str):
    return compose(
        "train",
        [
            "experiment=quickstart",
            f"data.root={root}",
            "data.synthetic=null",
            "data.input_size=128",
            "data.batch_size=2",
            "data.val_batch_size=3",
            "+trainer.limit_train_batches=1",
            "data.num_workers=0",
            f"paths.output_dir={out}",
            "logger=csv",
            "trainer.max_epochs=1",
            "trainer.check_val_every_n_epoch=1",
            "callbacks.rich_progress_bar=null",
            "trainer.enable_progress_bar=false",
            # a tiny network and no checkpoints keep a CPU epoch short
            "backbone_name=mobilenetv3_small_050",
            "model.net.head_conv=32",
            "callbacks.last_checkpoint=null",
            "callbacks.best_checkpoint=null",
            "callbacks.pose_images=null",
            "+trainer.enable_checkpointing=false",
            *overrides,
        ],
    )


class OnePersonNet(nn.Module):
    """Head maps with a single confident centre at output cell (cy, cx): a known decode result."""

    def __init__(self, cell: tuple[int, int] = (12, 18), wh: tuple[float, float] = (8.0, 12.0)) -> None:
        super().__init__()
        self.cell, self.wh = cell, wh
        j = COCO_PERSON.num_joints
        self.offsets = torch.stack([torch.linspace(-3, 3, j), torch.linspace(-5, 5, j)], dim=1)  # (J, 2) cells
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        b, h, w, j = x.shape[0], x.shape[2] // 4, x.shape[3] // 4, COCO_PERSON.num_joints
        cy, cx = self.cell
        hm = torch.full((b, 1, h, w), -10.0)
        hm[:, 0, cy, cx] = 10.0
        wh = torch.stack([torch.full((b, h, w), self.wh[0]), torch.full((b, h, w), self.wh[1])], dim=1)
        hps = self.offsets.reshape(1, 2 * j, 1, 1).expand(b, 2 * j, h, w).clone()
        zeros2 = torch.zeros(b, 2, h, w)
        # hm_hp far below the snapping threshold: the regressed joints are kept, with a low joint score.
        return [
            {
                "hm": hm,
                "wh": wh,
                "hps": hps,
                "reg": zeros2,
                "hm_hp": torch.full((b, j, h, w), -10.0),
                "hp_offset": zeros2,
            }
        ]


def halves(image: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    return image[TITLE_ROWS:, :width].astype(np.float64), image[TITLE_ROWS:, width + GAP :].astype(np.float64)


def test_is_due_logs_first_validation_then_once_per_window():
    # every 5 epochs, validating every 4: epoch 3 (baseline), 7 (window 1), 11, 15, 19, then 23 shares window 4.
    logged, last = [], -1
    for epoch in range(3, 40, 4):
        if is_due(epoch, 5, last):
            logged.append(epoch)
            last = (epoch + 1) // 5
    assert logged == [3, 7, 11, 15, 19, 27, 31, 35, 39]
    assert not is_due(4, 5, 1) and is_due(9, 5, 1)


def test_constructor_rejects_bad_arguments():
    with pytest.raises(ValueError, match="num_images"):
        PoseImageLogger(num_images=0)
    with pytest.raises(ValueError, match="every_n_epochs"):
        PoseImageLogger(every_n_epochs=0)


def test_load_samples_takes_first_images_with_their_annotations(val_set):
    samples = load_samples(val_set, 2)
    assert [s.img_id for s in samples] == val_set.ids[:2]
    assert len(load_samples(val_set, 10)) == len(val_set) == 3
    for i, s in enumerate(samples):
        assert s.image.shape == (128, 128, 3) and s.input.shape == (3, 128, 128)
        assert {a["image_id"] for a in s.annotations} == {s.img_id} and s.annotations
        assert len(s.annotations) == len(val_set.coco.getAnnIds(imgIds=[val_set.ids[i]]))
    with pytest.raises(TypeError, match="CocoPoseDataset-like"):
        load_samples([1, 2, 3], 2)


def test_predict_samples_maps_detections_to_image_pixels(val_set):
    net = OnePersonNet()
    samples = load_samples(val_set, 2)
    rows = [p.rows(joint_scores=True) for p in predict_samples(net, samples, K=10)]
    j = COCO_PERSON.num_joints
    assert len(rows) == 2 and rows[0].shape == (10, 5 + 3 * j)
    (cy, cx), (bw, bh) = net.cell, net.wh
    for s, r in zip(samples, rows):
        ratio = s.s / 32  # 128 input / 4 = 32 output cells
        to_img = lambda x, y: ((x - 16) * ratio + s.c[0], (y - 16) * ratio + s.c[1])  # noqa: E731
        top = r[0]
        assert top[4] == pytest.approx(torch.sigmoid(torch.tensor(10.0)).item(), rel=1e-5)
        np.testing.assert_allclose(
            top[:4], [*to_img(cx - bw / 2, cy - bh / 2), *to_img(cx + bw / 2, cy + bh / 2)], atol=1e-3
        )
        joints = top[5 : 5 + 2 * j].reshape(j, 2)
        expected = np.array([to_img(cx + dx, cy + dy) for dx, dy in net.offsets.numpy()])
        np.testing.assert_allclose(joints, expected, atol=1e-3)
        np.testing.assert_allclose(top[5 + 2 * j :], torch.sigmoid(torch.tensor(-10.0)).item(), rtol=1e-3)
        assert (r[1:, 4] < 1e-3).all()


def test_render_sample_draws_prediction_left_and_ground_truth_right(val_set):
    sample = load_samples(val_set, 1)[0]
    rows = predict_samples(OnePersonNet(), [sample], K=10)[0].rows(joint_scores=True)
    h, w = sample.image.shape[:2]
    raw = sample.image[TITLE_ROWS:].astype(np.float64)

    shown = render_sample(sample, rows, COCO_PERSON, score_thresh=0.3, kpt_thresh=0.0)
    assert shown.shape == (h, 2 * w + GAP, 3) and shown.dtype == np.uint8
    pred, gt = halves(shown, w)
    assert np.abs(pred - raw).max() > 100  # the one confident person is drawn
    assert np.abs(gt - raw).max() > 100  # the annotations are drawn
    assert np.abs(pred - gt).mean() > 1.0

    # Its joints score ~0: with the default joint threshold only the box remains, with score 1.0 nothing.
    box_only = render_sample(sample, rows, COCO_PERSON, score_thresh=0.3, kpt_thresh=0.1)
    assert np.abs(halves(box_only, w)[0] - pred).max() > 0
    nothing = render_sample(sample, rows, COCO_PERSON, score_thresh=1.0)
    np.testing.assert_array_equal(halves(nothing, w)[0], raw)
    with pytest.raises(ValueError, match="rows must be"):
        render_sample(sample, rows[:, :-1], COCO_PERSON)


def test_fit_writes_pairs_on_due_epochs_only(synthetic_root, tmp_path):
    cfg = make_cfg(synthetic_root, tmp_path, "trainer.max_epochs=2", "trainer.num_sanity_val_steps=1")
    datamodule, model, trainer = build(cfg)
    callback = PoseImageLogger(num_images=2, every_n_epochs=3, score_thresh=0.3)
    trainer.callbacks.append(callback)
    saving = []  # spy: whether each save happened during the sanity check
    save = callback._save
    callback._save = lambda *args: (saving.append(trainer.sanity_checking), save(*args))
    trainer.fit(model, datamodule=datamodule)

    out_dir = Path(trainer.log_dir) / "pose_images"
    assert out_dir.is_relative_to(tmp_path)
    ids = datamodule.val_set.ids
    # Epoch 0 logs (baseline), epoch 1 is still in window 0, the sanity check never logs; the third val image is
    # not among the first two.
    assert saving == [False]
    assert {p.name for p in out_dir.iterdir()} == {f"epoch_000_{i}.jpg" for i in ids[:2]}
    assert callback.state_dict() == {"last_window": 0}
    for i, img_id in enumerate(ids[:2]):
        raw = datamodule.val_set.load_image(i)
        shown = cv2.imread(str(out_dir / f"epoch_000_{img_id}.jpg"))
        assert shown.shape == (128, 2 * 128 + GAP, 3)
        pred, gt = halves(shown, 128)
        assert np.abs(pred - gt).mean() > 1.0
        assert np.abs(gt - raw[TITLE_ROWS:]).max() > 100  # ground-truth skeleton drawn
    assert trainer.lightning_module.training  # the callback put the module back as it found it


def test_other_ranks_do_nothing():
    class OtherRank:  # any further attribute access would fail: the hook must return straight away
        sanity_checking, is_global_zero = False, False

    callback = PoseImageLogger(num_images=1)
    callback.on_validation_epoch_end(OtherRank(), nn.Linear(1, 1))
    assert callback.last_window == -1


class OnePersonModule(nn.Module):
    """What the callback needs of a LightningModule: callable, train/eval, ``device`` and ``keypoints``."""

    keypoints = COCO_PERSON
    device = torch.device("cpu")

    def __init__(self) -> None:
        super().__init__()
        self.net = OnePersonNet()

    def forward(self, x: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        assert not self.training, "the callback must run the model in eval mode"
        return self.net(x)


class RecordingWandb(WandbLogger):
    """A WandbLogger that records ``log_image`` calls instead of starting a run."""

    def __init__(self) -> None:  # no wandb run
        self.calls: list[dict] = []

    def log_image(self, key, images, step=None, **kwargs):
        self.calls.append({"key": key, "images": images, "step": step, **kwargs})


def test_hook_sends_rgb_images_to_wandb_and_bgr_files_to_disk(val_set, tmp_path):
    wandb, csv = RecordingWandb(), CSVLogger(tmp_path)
    trainer = SimpleNamespace(
        sanity_checking=False,
        is_global_zero=True,
        current_epoch=4,
        global_step=40,
        datamodule=SimpleNamespace(val_set=val_set),
        precision_plugin=Precision(),
        loggers=[csv, wandb],
        log_dir=str(tmp_path),
        default_root_dir=str(tmp_path),
    )
    module = OnePersonModule().train()
    callback = PoseImageLogger(num_images=2, every_n_epochs=5, kpt_thresh=0.0)
    callback.setup(trainer, module, "fit")
    callback.on_validation_epoch_end(trainer, module)

    assert module.training  # restored
    samples = load_samples(val_set, 2)
    rows = predict_samples(module.net, samples)
    expected = [render_sample(s, r, COCO_PERSON, score_thresh=0.3, kpt_thresh=0.0) for s, r in zip(samples, rows)]
    (call,) = wandb.calls
    assert call["key"] == "val/poses" and call["step"] == 40 and len(call["images"]) == 2
    for sent, bgr, s, caption in zip(call["images"], expected, samples, call["caption"]):
        np.testing.assert_array_equal(sent, bgr[:, :, ::-1])  # RGB for wandb
        assert caption.startswith(f"epoch 4 image {s.img_id}: 1 predicted")
        written = cv2.imread(str(tmp_path / "pose_images" / f"epoch_004_{s.img_id}.jpg"))
        assert np.abs(written.astype(np.float64) - bgr).mean() < 8.0  # BGR on disk (JPEG loss only)
    callback.on_validation_epoch_end(trainer, module)  # epoch 4 again: window 1 is done
    assert len(wandb.calls) == 1


@pytest.mark.slow  # wandb starts its service and closes the offline run: 6 s idle, 20+ s on a busy machine
def test_wandb_offline_receives_rgb_images(synthetic_root, tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = make_cfg(synthetic_root, tmp_path, "logger=wandb")
    try:
        datamodule, model, trainer = build(cfg)
        trainer.callbacks.append(PoseImageLogger(num_images=2))
        trainer.fit(model, datamodule=datamodule)
    finally:
        wandb.finish()
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    logged = sorted((runs[0] / "files" / "media" / "images").rglob("*.png"))
    assert len(logged) == 2
    saved = sorted((tmp_path / "pose_images").glob("epoch_000_*.jpg"))  # WandbLogger's log_dir is its save_dir
    assert len(saved) == 2
    for png in logged:
        got = cv2.imread(str(png)).astype(np.float64)  # an RGB PNG, read back as BGR
        jpgs = [cv2.imread(str(p)).astype(np.float64) for p in saved]
        errors = [np.abs(got - j).mean() for j in jpgs]
        best = jpgs[int(np.argmin(errors))]
        assert min(errors) < 8.0  # the same picture (up to JPEG loss)...
        assert 2 * min(errors) < np.abs(got[..., ::-1] - best).mean()  # ...with its channels in the right order
