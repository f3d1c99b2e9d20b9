"""COCO keypoint dataset producing the original CenterNet ``multi_pose`` samples (METHOD §1.1–§1.5).

``ds[i]`` returns the normalised (3, R, R) input (or, with ``input_format="uint8"``, the warped uint8
image and the (3, 4) affine map that finishes it on the device, :mod:`centerpose.data.photometric`), the targets of
:func:`centerpose.codec.encode.encode_pose_targets` and a ``meta`` dict, all numpy, collatable by
torch's default collate (``meta["gt_det"]`` only with ``return_gt_det``; its row count varies).
"""

from __future__ import annotations

import contextlib
import io
import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from torch.utils.data import Dataset

from centerpose.codec.codec import CenterPoseCodec
from centerpose.codec.encode import JOINT_HEATMAPS, coco_boxes_to_xyxy
from centerpose.data.bad_samples import get_or_replace
from centerpose.data.image_io import (
    REDUCED_COLOR_FLAGS,
    BadImageError,
    decode_image,
    jpeg_size,
    read_image_bytes,
    read_image_checked,
    with_image_id,
)
from centerpose.data.augment import (
    DECODE_REDUCTIONS,
    Geometry,
    SampleRngs,
    center_geometry,
    draw_train_geometry,
    reduction_factor,
    sample_transforms,
    warp_image,
)
from centerpose.data.photometric import AFFINE_KEY, GREY_BGR, IMAGE_KEY, channel_means, color_affine, input_affine
from centerpose.data.transforms import COCO_MEAN_BGR, COCO_STD_BGR, build_photometric, normalize
from centerpose.keypoints import COCO_PERSON, KeypointSpec


class CocoPoseDataset(Dataset):
    """COCO person-keypoint samples for CenterNet multi-pose.

    Args:
        image_dir: folder holding the images named by the json ``file_name``.
        ann_file: ``person_keypoints_*.json``.
        train: True keeps only images with ≥ 1 annotation of any kind (crowd-only and
            zero-keypoint-only images included), in json order; False keeps every image, in json
            order (§1.1).
        augment: draw crop, rotation, flip and colour as the original's training split; False gives
            the deterministic val geometry (image centre, longest side, no flip, no colour).
        input_size: R, the square network input; down_ratio: R / O.
        max_objs: N, people encoded per image (the rest are dropped, QUIRK D9).
        keypoints: the skeleton; annotations must carry 3·J keypoint numbers.
        codec: encodes the targets (:meth:`CenterPoseCodec.encode`); when given, its skeleton, input size,
            down ratio and ``max_objs`` replace the four arguments above. Default: one built from them.
        rand_crop, shift, scale, rotate, aug_rot, flip: geometry options (§1.2; shift/scale are used
            only with ``rand_crop=False``).
        color_aug: CornerNet colour augmentation (with ``augment``).
        extra_transforms: albumentations image-only transforms applied (with ``augment``) after the
            colour augmentation, on the float32 [0, 1] image in the dataset's channel order.
        dense_hp: produce ``dense_hps``/``dense_hps_mask`` instead of ``hps``/``hps_mask`` (None: the codec's).
        rng: "original" — numpy's global RNG for geometry, Python's ``random`` for the colour-op
            order and one ``RandomState(123)`` per dataset for colour magnitudes (QUIRK D14);
            "per_sample" — one generator per sample seeded from (seed, epoch, index).
        seed: base seed of the "per_sample" mode.
        return_gt_det: add ``meta["gt_det"]`` (n, 40) float32 (variable n: batch size 1 or a custom
            collate).
        channel_order: "bgr" (parity, QUIRK D15) or "rgb" (converted after the colour augmentation,
            which always works in BGR).
        mean, std: (3,) normalisation statistics in ``channel_order`` (default: the original's BGR).
        corrected_radius: CornerNet's corrected Gaussian radius (QUIRK D1 improved; not parity; None: the codec's).
        input_format: "float" — ``input`` (3, R, R) float32, colour augmentation and normalisation
            on the CPU (the original's path); "uint8" — ``image`` (R, R, 3) uint8 warped BGR and
            ``input_affine`` (3, 4) float32, the sample's colour draws and normalisation folded into one
            per-pixel affine map that :func:`centerpose.data.photometric.finish_input` applies to the
            batch on the device (same numbers within 1e-6, 4x fewer bytes to pin and copy). Samples of
            a dataset with ``extra_transforms`` always take the float path (user transforms need the
            float image).
        joint_heatmaps: "dense" — samples carry ``hm_hp`` (J, O, O) float32 (the original's); "sparse" — they
            carry ``hp_radius`` (N·J,) int16 instead, and whoever receives the batch draws the same ``hm_hp`` bit
            for bit (:func:`centerpose.codec.device_heatmaps.finish_joint_heatmaps`, which
            ``CenterPoseModule.on_after_batch_transfer`` calls): 1.1 MB less per sample to draw, collate and copy.
        decode_reduction: "off" (the original's pixels) — every image decoded in full; "auto" — a JPEG whose
            crop shrinks it at least 2, 4 or 8 times is decoded that much smaller by libjpeg-turbo's DCT scaling
            and the reduction folded into the one warp (:meth:`load_view`). The resampling then differs from the
            original's: full-resolution bilinear at >= 2x shrink aliases, the scaled IDCT averages
            (``scripts/bench_data.py --reduction-sizes 512 384 256`` measures it: on coco-mini train at input
            256, 57 % of samples decoded smaller, mean |pixel difference| 1.7 of 255 over all samples, 7 % less
            CPU per sample). COCO images (<= 640 px) at input 512 never shrink 2x: "auto" changes no sample there.

    Raises:
        FileNotFoundError: the annotation file or image folder does not exist.
        ValueError: an option is out of range or the annotation file lacks a keypoint category.
    """

    #: "raise": an unreadable image stops the run; "skip": the next readable sample replaces it and the file is
    #: reported (``centerpose.data.bad_samples``). The data module sets both from ``data.on_bad_sample``.
    on_bad_sample = "raise"
    bad_sample_log: str | None = None

    def __init__(
        self,
        image_dir: str | os.PathLike,
        ann_file: str | os.PathLike,
        train: bool = True,
        augment: bool = True,
        input_size: int = 512,
        down_ratio: int = 4,
        max_objs: int = 32,
        keypoints: KeypointSpec = COCO_PERSON,
        rand_crop: bool = True,
        shift: float = 0.1,
        scale: float = 0.4,
        rotate: float = 0.0,
        aug_rot: float = 0.0,
        flip: float = 0.5,
        color_aug: bool = True,
        extra_transforms: Sequence[Any] | None = None,
        dense_hp: bool | None = None,
        rng: str = "original",
        seed: int = 0,
        return_gt_det: bool = False,
        channel_order: str = "bgr",
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        corrected_radius: bool | None = None,
        input_format: str = "float",
        codec: CenterPoseCodec | None = None,
        joint_heatmaps: str = "dense",
        decode_reduction: str = "off",
    ):
        from pycocotools.coco import COCO

        self.image_dir = Path(image_dir)
        self.ann_file = Path(ann_file)
        if not self.ann_file.is_file():
            raise FileNotFoundError(f"COCO annotation file not found: {self.ann_file}")
        if not self.image_dir.is_dir():
            raise FileNotFoundError(f"image folder not found: {self.image_dir}")
        if rng not in ("original", "per_sample"):
            raise ValueError(f"rng must be 'original' or 'per_sample', got {rng!r}")
        if channel_order not in ("bgr", "rgb"):
            raise ValueError(f"channel_order must be 'bgr' or 'rgb', got {channel_order!r}")
        if input_format not in ("float", "uint8"):
            raise ValueError(f"input_format must be 'float' or 'uint8', got {input_format!r}")
        if joint_heatmaps not in JOINT_HEATMAPS:
            raise ValueError(f"joint_heatmaps must be one of {JOINT_HEATMAPS}, got {joint_heatmaps!r}")
        self.joint_heatmaps = joint_heatmaps
        if decode_reduction not in DECODE_REDUCTIONS:
            raise ValueError(f"decode_reduction must be one of {DECODE_REDUCTIONS}, got {decode_reduction!r}")
        self.decode_reduction = decode_reduction
        if codec is None:
            if input_size % down_ratio:
                raise ValueError(f"input_size {input_size} is not a multiple of down_ratio {down_ratio}")
            codec = CenterPoseCodec(keypoints, input_size, down_ratio, max_objs)
        switches = {
            k: bool(v) for k, v in (("dense_hp", dense_hp), ("corrected_radius", corrected_radius)) if v is not None
        }
        self.codec = codec.replace(**switches) if switches else codec
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
                self.coco = COCO(str(self.ann_file))
        except Exception as e:  # json errors, missing keys
            raise ValueError(f"cannot read COCO annotation file {self.ann_file}: {e}") from e

        self.train, self.augment = bool(train), bool(augment)
        self.input_size, self.output_size = self.codec.input_size, self.codec.output_size
        self.max_objs, self.keypoints = self.codec.max_objs, self.codec.keypoints
        self.geometry_options = dict(
            rand_crop=rand_crop, shift=shift, scale=scale, rotate=rotate, aug_rot=aug_rot, flip=flip
        )
        self.dense_hp, self.return_gt_det = self.codec.dense_hp, bool(return_gt_det)
        self.corrected_radius = self.codec.corrected_radius
        self.rng_mode, self.seed, self.epoch = rng, int(seed), 0
        self.channel_order = channel_order
        self.mean = np.asarray(
            mean if mean is not None else (COCO_MEAN_BGR if channel_order == "bgr" else COCO_MEAN_BGR[::-1]), np.float32
        )
        self.std = np.asarray(
            std if std is not None else (COCO_STD_BGR if channel_order == "bgr" else COCO_STD_BGR[::-1]), np.float32
        )
        # The original's per-instance colour RNG, never reseeded by DataLoader workers (QUIRK D14).
        self.data_rng = np.random.RandomState(123)
        self.photometric, self.color_transform = build_photometric(
            bool(color_aug), extra_transforms, to_rgb=channel_order == "rgb", color_rng=self.data_rng
        )
        # User transforms work on the float image: such datasets keep the CPU float path.
        self.uint8_input = input_format == "uint8" and not extra_transforms

        self.category_id = self._keypoint_category()
        ids = self.coco.getImgIds()  # json order (pycocotools keeps insertion order)
        if self.train:
            ids = [i for i in ids if len(self.coco.getAnnIds(imgIds=[i])) > 0]
        self.ids: list[int] = list(ids)
        # Parsed annotations per index (read-only arrays): the json does not change during a run.
        self._annotations: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    # ----------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.ids)

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch that seeds the "per_sample" generators (call before each epoch)."""
        self.epoch = int(epoch)

    def rngs_for(self, index: int) -> SampleRngs:
        """The generators sample ``index`` uses in the configured mode."""
        if self.rng_mode == "per_sample":
            return SampleRngs.per_sample(self.seed, self.epoch, index)
        return SampleRngs.original(self.data_rng)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return get_or_replace(self, index, self.get_sample)

    def get_sample(self, index: int, rngs: SampleRngs | None = None) -> dict[str, Any]:
        """Build sample ``index``, optionally with explicit generators (for parity checks).

        Returns:
            ``input`` (3, R, R) float32 (or ``image`` (R, R, 3) uint8 + ``input_affine`` (3, 4)
            float32 with ``uint8_input``), the targets of :func:`encode_pose_targets` (``gt_det``
            moved into ``meta``) and ``meta = {"img_id": int, "c": (2,) float32, "s": float}``.
        """
        img_id = self.ids[index]
        rngs = (rngs or self.rngs_for(index)) if self.augment else None
        img, geo, width, factor = self.load_view(index, rngs)
        boxes, kpts = self.load_annotations(index)
        trans_input, trans_output_rot, trans_output = sample_transforms(geo, self.input_size, self.output_size)
        view = dict(width=width, factor=factor)
        if self.uint8_input:
            image, affine = self.make_uint8_input(img, geo, trans_input, rngs, **view)
            inputs = {IMAGE_KEY: image, AFFINE_KEY: affine}
        else:
            inputs = {"input": self.make_input(img, geo, trans_input, rngs, **view)}
        targets = self.codec.encode(
            boxes,
            kpts,
            trans_output,
            trans_output_rot,
            flipped=geo.flipped,
            image_width=width,
            rot=geo.rot,
            joint_heatmaps=self.joint_heatmaps,
        )
        gt_det = targets.pop("gt_det")
        meta: dict[str, Any] = {"img_id": int(img_id), "c": geo.c.copy(), "s": float(geo.s)}
        if self.return_gt_det:
            meta["gt_det"] = gt_det
        return {**inputs, **targets, "meta": meta}

    # -- stages (public so that benchmarks and tests can time or reuse them) -------------------------
    def image_path(self, index: int) -> Path:
        info = self.coco.loadImgs(ids=[self.ids[index]])[0]
        if "file_name" not in info:
            raise ValueError(f"{self.ann_file}: image {self.ids[index]} has no 'file_name'")
        return self.image_dir / info["file_name"]

    def load_image(self, index: int) -> np.ndarray:
        """(H, W, 3) uint8 BGR image of sample ``index``, read with cv2 (greyscale → 3 channels)."""
        # BadImageError (a ValueError) names the file and why: missing, empty, truncated, undecodable.
        try:
            return read_image_checked(self.image_path(index))
        except BadImageError as e:
            raise with_image_id(e, self.ids[index]) from None

    def draw_geometry(self, width: int, height: int, rngs: SampleRngs | None) -> Geometry:
        """The sample's crop: drawn as the original's training split (``rngs`` given), else the val geometry."""
        if rngs is None:
            return center_geometry(width, height)
        return draw_train_geometry(width, height, rngs.geometry, **self.geometry_options)

    def load_view(self, index: int, rngs: SampleRngs | None) -> tuple[np.ndarray, Geometry, int, int]:
        """Decode sample ``index``'s image and draw its geometry.

        With ``decode_reduction="auto"`` the JPEG's size comes from its header, the geometry is drawn from it
        (the same draws as from the decoded image) and the image is decoded f = 2, 4 or 8 times smaller when the
        crop shrinks it at least f times (:func:`~centerpose.data.augment.reduction_factor`); files without a
        readable header size (not JPEG, Exif orientation) are decoded in full.

        Returns:
            The decoded (h, w, 3) uint8 image (f times smaller), the :class:`Geometry`, the full-resolution
            width W and f.
        """
        if self.decode_reduction == "off":
            img = self.load_image(index)
            height, width = img.shape[:2]
            return img, self.draw_geometry(width, height, rngs), width, 1
        path = self.image_path(index)
        try:
            data = read_image_bytes(path)
            size = jpeg_size(data)
            if size is None:
                img = decode_image(data, path)
                height, width = img.shape[:2]
                return img, self.draw_geometry(width, height, rngs), width, 1
            height, width = size
            geo = self.draw_geometry(width, height, rngs)
            factor = reduction_factor(geo.s, self.input_size)
            img = decode_image(data, path, REDUCED_COLOR_FLAGS[factor])
            # libjpeg's scaled output is ceil(side / f); anything else means the header lied (a corrupt file).
            if img.shape[:2] != (-(-height // factor), -(-width // factor)):
                raise BadImageError(
                    path,
                    f"decoded size {img.shape[1]}x{img.shape[0]} at 1/{factor} does not "
                    f"match the JPEG header's {width}x{height}",
                )
        except BadImageError as e:
            raise with_image_id(e, self.ids[index]) from None
        return img, geo, width, factor

    def load_annotations(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Boxes (n, 4) float32 xyxy and keypoints (n, J, 3) float32 of the first ``max_objs``
        annotations of sample ``index``, in file order, crowd included (§1.1).

        Raises:
            ValueError: an annotation is malformed (names the file, image id and annotation id).
        """
        if index in self._annotations:
            return self._annotations[index]
        img_id = self.ids[index]
        anns = self.coco.loadAnns(ids=self.coco.getAnnIds(imgIds=[img_id]))[: self.max_objs]
        J = self.keypoints.num_joints
        bboxes = np.zeros((len(anns), 4), np.float64)
        kpts = np.zeros((len(anns), J, 3), np.float32)
        for k, ann in enumerate(anns):
            where = f"{self.ann_file}: image {img_id}, annotation {ann.get('id', '?')}"
            bbox = ann.get("bbox")
            if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
                raise ValueError(f"{where}: 'bbox' must be 4 numbers [x, y, w, h], got {bbox!r}")
            if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in bbox) or bbox[2] < 0 or bbox[3] < 0:
                raise ValueError(f"{where}: 'bbox' must be finite with w, h >= 0, got {bbox!r}")
            values = ann.get("keypoints")
            if not isinstance(values, (list, tuple)) or len(values) != 3 * J:
                got = len(values) if isinstance(values, (list, tuple)) else values
                raise ValueError(f"{where}: 'keypoints' must hold {3 * J} numbers for {J} joints, got {got!r}")
            if ann.get("category_id") != self.category_id:
                raise ValueError(
                    f"{where}: category_id {ann.get('category_id')!r} is not the keypoint category {self.category_id}"
                )
            try:
                kpts[k] = np.asarray(values, dtype=np.float32).reshape(J, 3)
            except (TypeError, ValueError) as e:
                raise ValueError(f"{where}: 'keypoints' are not numbers: {e}") from e
            bboxes[k] = bbox
        parsed = coco_boxes_to_xyxy(bboxes), kpts
        for a in parsed:
            a.setflags(write=False)
        self._annotations[index] = parsed
        return parsed

    def make_input(
        self,
        img: np.ndarray,
        geo: Geometry,
        trans_input: np.ndarray,
        rngs: SampleRngs | None,
        *,
        width: int | None = None,
        factor: int = 1,
    ) -> np.ndarray:
        """Warp, scale to [0, 1], photometric stage (when ``rngs`` is given: augmenting), normalise.

        Returns:
            (3, R, R) float32 network input.
        """
        warped = warp_image(img, geo, trans_input, self.input_size, width=width, factor=factor)
        inp = warped.astype(np.float32) / 255.0
        if rngs is not None and self.photometric is not None:
            if self.color_transform is not None:
                self.color_transform.bind_rngs(rngs.shuffle, rngs.color)
            inp = self.photometric(image=inp)["image"]
        elif self.channel_order == "rgb":
            inp = inp[:, :, ::-1]
        return normalize(inp, self.mean, self.std)

    def make_uint8_input(
        self,
        img: np.ndarray,
        geo: Geometry,
        trans_input: np.ndarray,
        rngs: SampleRngs | None,
        *,
        width: int | None = None,
        factor: int = 1,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Warp, and fold the photometric stage (drawn when ``rngs`` is given) and normalisation into
        one affine map; the same draws, in the same order, as :meth:`make_input`.

        Returns:
            (R, R, 3) uint8 warped BGR image and (3, 4) float32 ``[M | o]``.
        """
        warped = warp_image(img, geo, trans_input, self.input_size, width=width, factor=factor)
        return warped, self.input_map(warped, rngs)

    def input_map(self, warped: np.ndarray, rngs: SampleRngs | None) -> np.ndarray:
        """(3, 4) float32 ``[M | o]``: the colour draws (when ``rngs`` is given) and normalisation of a
        warped (R, R, 3) uint8 image, folded (:mod:`centerpose.data.photometric`)."""
        color = None
        if rngs is not None and self.color_transform is not None:
            self.color_transform.bind_rngs(rngs.shuffle, rngs.color)
            p = self.color_transform.get_params()
            grey_mean = float(GREY_BGR @ channel_means(warped)) / 255.0
            color = color_affine(
                p["ops"], p["alphas"], p["light"], grey_mean, self.color_transform.eig_val, self.color_transform.eig_vec
            )
        return input_affine(self.mean, self.std, channel_order=self.channel_order, color=color)

    def _keypoint_category(self) -> int:
        """Id of the category whose skeleton this dataset encodes."""
        cats = [c for c in self.coco.dataset.get("categories", []) if c.get("keypoints")]
        named = [c for c in cats if c.get("name") == self.keypoints.category_name]
        chosen = named or cats
        if not chosen:
            raise ValueError(f"{self.ann_file}: no category with 'keypoints' (is this a person_keypoints file?)")
        cat = chosen[0]
        if len(cat["keypoints"]) != self.keypoints.num_joints:
            raise ValueError(
                f"{self.ann_file}: category {cat.get('name')!r} has {len(cat['keypoints'])} "
                f"keypoints but the KeypointSpec has {self.keypoints.num_joints}"
            )
        return int(cat["id"])
