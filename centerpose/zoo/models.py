"""The model zoo: the original CenterNet's released multi_pose and ctdet files, one entry per name.

Each entry names the architecture as :mod:`centerpose.models.registry` knows it, where the original published
the file (its Google Drive id) and under which file name, and whether it is a pose model (converted into a
centerpose checkpoint for ``predict`` / ``evaluate``) or a detection model (kept as the original file: it
only serves ``train init_from=``, whose reader takes original files).

The AP column is the original's published figure (COCO val2017, flip test; keypoint AP for pose, box AP
for detection), not a centerpose measurement.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Literal

from centerpose.zoo.errors import NoPublishedWeightsError, UnknownModelError

__all__ = ["MODELS", "ZooModel", "drive_url", "get_model", "is_zoo_name"]

Task = Literal["pose", "detection"]


@dataclass(frozen=True)
class ZooModel:
    """One zoo entry.

    Attributes:
        name: the zoo name (``model=<name>``, ``init_from=<name>``).
        arch: architecture in :mod:`centerpose.models.registry` / :mod:`centerpose.convert` terms.
        task: ``pose`` (a multi_pose file, converted) or ``detection`` (a ctdet file, kept as published).
        drive_id: the original's Google Drive file id; None = the original published no weights.
        file_name: the original's file name (what ``CENTERPOSE_ZOO_URL`` mirrors serve, what a hand
            download is saved as).
        original_ap: the original's published AP with flip test (keypoint AP for pose, box AP for detection).
        experiment: the centerpose experiment that trains this row, if any.
    """

    name: str
    arch: str
    task: Task
    drive_id: str | None
    file_name: str
    original_ap: float | None = None
    experiment: str | None = None

    @property
    def url(self) -> str | None:
        """The Google Drive page of the file (what a user opens to fetch it by hand)."""
        return drive_url(self.drive_id) if self.drive_id else None

    @property
    def cached_name(self) -> str:
        """The file ``resolve_weights`` returns: the converted checkpoint (pose) or the original file (detection)."""
        return f"{self.name}.ckpt" if self.task == "pose" else self.file_name


def drive_url(file_id: str) -> str:
    return f"https://drive.google.com/file/d/{file_id}"


_ENTRIES = (
    ZooModel(
        "multi_pose_hg_1x",
        "hourglass",
        "pose",
        "1neg1zfVjRTS45FCdk5hgIV-TxJ0McAew",
        "multi_pose_hg_1x.pth",
        58.7,
        "multi_pose_hg_1x",
    ),
    ZooModel(
        "multi_pose_hg_3x",
        "hourglass",
        "pose",
        "17-YS11iguOQKwPPHUg8LzakLzrgKSLfA",
        "multi_pose_hg_3x.pth",
        64.0,
        "multi_pose_hg_3x",
    ),
    ZooModel(
        "multi_pose_dla_1x",
        "dla34",
        "pose",
        "1WKqVdkIew43SxLTSxi81a-_f4Q9v2Fx5",
        "multi_pose_dla_1x.pth",
        54.7,
        "multi_pose_dla_1x",
    ),
    ZooModel(
        "multi_pose_dla_3x",
        "dla34",
        "pose",
        "1mC2PAQT_RuHi_9ZMZgkt4rg7BSY2_Lkd",
        "multi_pose_dla_3x.pth",
        58.9,
        "multi_pose_dla_3x",
    ),
    # The original released no ResNet-50 pose model; the row exists as a training recipe only.
    ZooModel("multi_pose_resnet50", "res_50", "pose", None, "multi_pose_resnet50.pth", None, "multi_pose_resnet50"),
    ZooModel(
        "ctdet_coco_dla_2x", "dla34", "detection", "18Q3fzzAsha_3Qid6mn4jcIFPeOGUaj1d", "ctdet_coco_dla_2x.pth", 39.2
    ),
    ZooModel("ctdet_coco_hg", "hourglass", "detection", "13F904yXltGIqa_K3g3-FLleaNX0n7c9O", "ctdet_coco_hg.pth", 42.2),
)

#: Every zoo entry by name, in MODEL_ZOO.md's order.
MODELS: dict[str, ZooModel] = {m.name: m for m in _ENTRIES}


def is_zoo_name(value: object) -> bool:
    """``value`` is a zoo name (a plain string, no path separators)."""
    return isinstance(value, str) and value in MODELS


def get_model(name: str) -> ZooModel:
    """The entry of ``name``, with its weights published.

    Raises:
        UnknownModelError: not a zoo name (the message lists them, with the closest match).
        NoPublishedWeightsError: a row the original released no weights for.
    """
    entry = MODELS.get(name)
    if entry is None:
        close = difflib.get_close_matches(name, MODELS, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise UnknownModelError(
            f"model '{name}': no such file, and not a model-zoo name ({hint}zoo names: "
            f"{', '.join(MODELS)}; `centerpose zoo list` shows them)"
        )
    if entry.drive_id is None:
        raise NoPublishedWeightsError(
            f"model '{name}': the original CenterNet published no weights for it; train it with "
            f"`centerpose train experiment={entry.experiment}` and pass the checkpoint it writes"
        )
    return entry
