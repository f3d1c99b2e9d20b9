"""The one keypoint description that drives heads, flip augmentation, flip test, evaluation and drawing.

Every place that needs the number of joints, the left/right pairs, the skeleton or the OKS sigmas reads
them from a :class:`KeypointSpec`; :data:`COCO_PERSON` (17 joints) is only the default. :data:`CROWDPOSE`
(14 joints) is the second shipped skeleton; :func:`spec_from_annotations` (``keypoints=auto``) builds one
from any COCO-format annotation file.
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

log = logging.getLogger("centerpose.keypoints")

#: OKS sigma of a joint whose name has no published sigma (the elbow's 0.072, mid-range of COCO's 0.025-0.107).
DEFAULT_OKS_SIGMA = 0.072
#: Published OKS sigmas by joint name: COCO's (pycocotools) and CrowdPose's head top and neck.
KNOWN_OKS_SIGMAS: dict[str, float] = {
    "nose": 0.026,
    "left_eye": 0.025,
    "right_eye": 0.025,
    "left_ear": 0.035,
    "right_ear": 0.035,
    "left_shoulder": 0.079,
    "right_shoulder": 0.079,
    "left_elbow": 0.072,
    "right_elbow": 0.072,
    "left_wrist": 0.062,
    "right_wrist": 0.062,
    "left_hip": 0.107,
    "right_hip": 0.107,
    "left_knee": 0.087,
    "right_knee": 0.087,
    "left_ankle": 0.089,
    "right_ankle": 0.089,
    "head": 0.079,
    "head_top": 0.079,
    "top_head": 0.079,
    "neck": 0.079,
}


@dataclass(frozen=True)
class KeypointSpec:
    """Joint names, left/right flip pairs, skeleton edges and OKS sigmas of one skeleton.

    Args:
        names: joint names, in the order the annotations store them.
        flip_pairs: 0-based (left, right) index pairs swapped by a horizontal flip.
        skeleton: 0-based (a, b) index pairs joined when drawing.
        sigmas: per-joint OKS sigmas (COCO's, divided by 10), used by evaluation.
        category_name: the object category the skeleton belongs to ("person").
    """

    names: tuple[str, ...]
    flip_pairs: tuple[tuple[int, int], ...]
    skeleton: tuple[tuple[int, int], ...] = ()
    sigmas: tuple[float, ...] = ()
    category_name: str = "person"
    _flip_index: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(self.names))
        object.__setattr__(self, "flip_pairs", tuple(tuple(int(i) for i in p) for p in self.flip_pairs))
        object.__setattr__(self, "skeleton", tuple(tuple(int(i) for i in p) for p in self.skeleton))
        object.__setattr__(self, "sigmas", tuple(float(s) for s in self.sigmas))
        j = len(self.names)
        if j == 0:
            raise ValueError("KeypointSpec needs at least one joint name")
        if self.sigmas and len(self.sigmas) != j:
            raise ValueError(f"KeypointSpec: {len(self.sigmas)} sigmas for {j} joints")
        perm = list(range(j))
        seen: set[int] = set()
        for pair in (*self.flip_pairs, *self.skeleton):
            if len(pair) != 2 or not all(0 <= i < j for i in pair):
                raise ValueError(f"KeypointSpec: pair {pair} is not two joint indices in [0, {j})")
        for a, b in self.flip_pairs:
            if a in seen or b in seen or a == b:
                raise ValueError(f"KeypointSpec: joint of flip pair {(a, b)} appears twice")
            seen.update((a, b))
            perm[a], perm[b] = b, a
        object.__setattr__(self, "_flip_index", tuple(perm))

    @property
    def num_joints(self) -> int:
        return len(self.names)

    @property
    def flip_index(self) -> np.ndarray:
        """(J,) int64 permutation: ``flipped[j] = original[flip_index[j]]`` (an involution)."""
        return np.asarray(self._flip_index, dtype=np.int64)

    def to_config(self) -> dict:
        """A plain ``_target_`` mapping that rebuilds this spec with ``hydra.utils.instantiate``."""
        return {
            "_target_": "centerpose.keypoints.KeypointSpec",
            "names": list(self.names),
            "flip_pairs": [list(p) for p in self.flip_pairs],
            "skeleton": [list(p) for p in self.skeleton],
            "sigmas": list(self.sigmas),
            "category_name": self.category_name,
        }

    @classmethod
    def from_coco_category(
        cls, category: dict, flip_pairs: Sequence[Sequence[int]] | None = None, sigmas: Sequence[float] | None = None
    ) -> "KeypointSpec":
        """Build a spec from a COCO ``categories`` entry (1-based ``skeleton``).

        Flip pairs are inferred from ``left_*``/``right_*`` names when not given.
        """
        names = tuple(category["keypoints"])
        if flip_pairs is None:
            index = {n: i for i, n in enumerate(names)}
            flip_pairs = [
                (i, index["right_" + n[5:]])
                for i, n in enumerate(names)
                if n.startswith("left_") and "right_" + n[5:] in index
            ]
        skeleton = tuple((a - 1, b - 1) for a, b in category.get("skeleton", []))
        return cls(
            names=names,
            flip_pairs=tuple(map(tuple, flip_pairs)),
            skeleton=skeleton,
            sigmas=tuple(sigmas or ()),
            category_name=category.get("name", "person"),
        )


COCO_PERSON = KeypointSpec(
    names=(
        "nose",
        "left_eye",
        "right_eye",
        "left_ear",
        "right_ear",
        "left_shoulder",
        "right_shoulder",
        "left_elbow",
        "right_elbow",
        "left_wrist",
        "right_wrist",
        "left_hip",
        "right_hip",
        "left_knee",
        "right_knee",
        "left_ankle",
        "right_ankle",
    ),
    flip_pairs=((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
    # The original's drawing edges (CN coco_hp.py `edges`), 0-based.
    skeleton=(
        (0, 1),
        (0, 2),
        (1, 3),
        (2, 4),
        (4, 6),
        (3, 5),
        (5, 6),
        (5, 7),
        (7, 9),
        (6, 8),
        (8, 10),
        (6, 12),
        (5, 11),
        (11, 12),
        (12, 14),
        (14, 16),
        (11, 13),
        (13, 15),
    ),
    # pycocotools' COCOeval.Params kpt_oks_sigmas.
    sigmas=(
        0.026,
        0.025,
        0.025,
        0.035,
        0.035,
        0.079,
        0.079,
        0.072,
        0.072,
        0.062,
        0.062,
        0.107,
        0.107,
        0.087,
        0.087,
        0.089,
        0.089,
    ),
)


CROWDPOSE = KeypointSpec(
    names=(
        "left_shoulder",
        "right_shoulder",
        "left_elbow",
        "right_elbow",
        "left_wrist",
        "right_wrist",
        "left_hip",
        "right_hip",
        "left_knee",
        "right_knee",
        "left_ankle",
        "right_ankle",
        "head",
        "neck",
    ),
    flip_pairs=((0, 1), (2, 3), (4, 5), (6, 7), (8, 9), (10, 11)),
    skeleton=(
        (12, 13),
        (13, 0),
        (13, 1),
        (0, 2),
        (2, 4),
        (1, 3),
        (3, 5),
        (0, 6),
        (1, 7),
        (6, 7),
        (6, 8),
        (8, 10),
        (7, 9),
        (9, 11),
    ),
    # CrowdPose's crowdposetools COCOeval kpt_oks_sigmas (head top and neck share the shoulders' 0.079).
    sigmas=(0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089, 0.079, 0.079),
)


@functools.lru_cache(maxsize=8)
def _keypoint_categories(path: str, mtime: float) -> tuple[dict, ...]:
    with open(path) as f:
        data = json.load(f)
    return tuple(c for c in data.get("categories", []) if c.get("keypoints"))


def spec_from_annotations(
    ann_file: str | Path,
    sigmas: Sequence[float] | None = None,
    flip_pairs: Sequence[Sequence[int]] | None = None,
    category_name: str | None = None,
) -> KeypointSpec:
    """The skeleton of a COCO-format annotation file's keypoint category (``keypoints=auto``).

    Names and skeleton come from the category; flip pairs are the ``left_*``/``right_*`` name pairs unless
    given. Sigmas: ``sigmas`` when given, else each joint's published COCO/CrowdPose sigma by name
    (:data:`KNOWN_OKS_SIGMAS`) and :data:`DEFAULT_OKS_SIGMA` for other names; what was chosen is logged.

    Args:
        ann_file: a ``person_keypoints_*.json``-style file.
        sigmas: per-joint OKS sigmas, in the file's joint order.
        flip_pairs: 0-based (left, right) pairs, to override the name-based inference.
        category_name: which keypoint category, when the file has several (default: the only/first one).
    """
    path = Path(ann_file)
    if not path.is_file():
        raise FileNotFoundError(
            f"keypoints=auto: annotation file '{path}' not found (set keypoints.ann_file=<your person_keypoints json>)"
        )
    try:
        cats = _keypoint_categories(str(path.resolve()), path.stat().st_mtime)
    except json.JSONDecodeError as e:
        raise ValueError(f"keypoints=auto: '{path}' is not valid JSON: {e}") from e
    if category_name is not None:
        cats = tuple(c for c in cats if c.get("name") == category_name)
    if not cats:
        raise ValueError(
            f"keypoints=auto: '{path}' has no category with 'keypoints'"
            + (f" named {category_name!r}" if category_name else "")
        )
    category = cats[0]
    names = list(category["keypoints"])
    if sigmas is None:
        unknown = [n for n in names if n not in KNOWN_OKS_SIGMAS]
        sigmas = [KNOWN_OKS_SIGMAS.get(n, DEFAULT_OKS_SIGMA) for n in names]
        log.info(
            "keypoints=auto: OKS sigmas by joint name (COCO/CrowdPose published values)%s; set "
            "keypoints.sigmas=[...] to choose them",
            f", default {DEFAULT_OKS_SIGMA} for {unknown}" if unknown else "",
        )
    elif len(sigmas) != len(names):
        raise ValueError(f"keypoints=auto: {len(sigmas)} sigmas given for the {len(names)} joints of '{path}'")
    spec = KeypointSpec.from_coco_category(category, flip_pairs=flip_pairs, sigmas=sigmas)
    log.info(
        "keypoints=auto: %d joints of category %r from %s, flip pairs %s",
        spec.num_joints,
        spec.category_name,
        path,
        [(names[a], names[b]) for a, b in spec.flip_pairs],
    )
    return spec
