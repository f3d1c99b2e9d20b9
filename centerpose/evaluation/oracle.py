"""The encode/decode oracle (METHOD.md §3.7): people decoded from ground-truth encodings of the val images.

It measures how much AP the codec itself loses: every val image is encoded by the codec (the trainer's
val geometry, no augmentation), chosen heads are replaced by the targets
(:func:`~centerpose.codec.oracle.oracle_outputs`) and the codec decodes them (the trainer path, no flip).
"""

from __future__ import annotations

from pathlib import Path

from centerpose.codec.codec import CenterPoseCodec
from centerpose.codec.oracle import oracle_outputs
from centerpose.codec.poses import Poses

__all__ = ["ORACLE_VARIANTS", "oracle_results"]

#: The original's flag sets of METHOD.md §3.7 (which heads are replaced by ground truth).
ORACLE_VARIANTS = {
    "hm": {"hm", "kps"},  # --not_hm_hp --eval_oracle_hm --eval_oracle_kps
    "hm_hp": {"hm", "kps", "hm_hp"},  # --not_reg_hp_offset ... --eval_oracle_hmhp
    "all": {"hm", "kps", "hm_hp", "hp_offset"},
}


def oracle_results(
    image_dir: Path,
    ann_file: Path,
    variant: str,
    codec: CenterPoseCodec,
    max_images: int | None = None,
    batch_size: int = 8,
    joint_offsets: str = "shared",
) -> dict[int, Poses]:
    """People decoded from ground-truth encodings of every val image (of the first ``max_images``).

    Args:
        image_dir, ann_file: the val split.
        variant: a key of :data:`ORACLE_VARIANTS`.
        codec: encodes the targets (its ``corrected_radius``, ``max_objs``, ``input_size``) and decodes them
            (its ``K``, ``tie_break``, ``snap``; the heads are probabilities already, so no sigmoid and no flip).
        joint_offsets: ``shared`` (the original) or ``per_joint`` oracle joint offsets (see ``oracle_outputs``).

    Returns:
        Image id → that image's people in image pixels (float32 numpy).
    """
    from torch.utils.data import DataLoader, Subset

    from centerpose.data.coco import CocoPoseDataset

    if variant not in ORACLE_VARIANTS:
        raise ValueError(f"unknown oracle '{variant}'; choose one of {sorted(ORACLE_VARIANTS)}")
    dataset = CocoPoseDataset(image_dir, ann_file, train=False, augment=False, codec=codec)
    if max_images:
        dataset = Subset(dataset, range(min(max_images, len(dataset))))
    results: dict[int, Poses] = {}
    for batch in DataLoader(dataset, batch_size=batch_size, num_workers=0):
        heads = oracle_outputs(batch, ORACLE_VARIANTS[variant], joint_offsets=joint_offsets)
        poses = codec.decode_probabilities(heads, batch["meta"])
        for img_id, per_image in zip(batch["meta"]["img_id"].tolist(), poses.numpy().unbind()):
            results[int(img_id)] = per_image
    return results
