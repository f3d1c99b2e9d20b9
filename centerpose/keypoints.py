"""The one keypoint description that drives heads, flip augmentation, flip test, evaluation and drawing.

Every place that needs the number of joints, the left/right pairs, the skeleton or the OKS sigmas reads
them from a :class:`KeypointSpec`; :data:`COCO_PERSON` (17 joints) is only the default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np


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

    @classmethod
    def from_coco_category(cls, category: dict, flip_pairs: Sequence[Sequence[int]] | None = None,
                           sigmas: Sequence[float] | None = None) -> "KeypointSpec":
        """Build a spec from a COCO ``categories`` entry (1-based ``skeleton``).

        Flip pairs are inferred from ``left_*``/``right_*`` names when not given.
        """
        names = tuple(category["keypoints"])
        if flip_pairs is None:
            index = {n: i for i, n in enumerate(names)}
            flip_pairs = [(i, index["right_" + n[5:]]) for i, n in enumerate(names)
                          if n.startswith("left_") and "right_" + n[5:] in index]
        skeleton = tuple((a - 1, b - 1) for a, b in category.get("skeleton", []))
        return cls(names=names, flip_pairs=tuple(map(tuple, flip_pairs)), skeleton=skeleton,
                   sigmas=tuple(sigmas or ()), category_name=category.get("name", "person"))


COCO_PERSON = KeypointSpec(
    names=(
        "nose", "left_eye", "right_eye", "left_ear", "right_ear",
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
        "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    ),
    flip_pairs=((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
    # The original's drawing edges (CN coco_hp.py `edges`), 0-based.
    skeleton=(
        (0, 1), (0, 2), (1, 3), (2, 4), (4, 6), (3, 5), (5, 6), (5, 7), (7, 9), (6, 8), (8, 10),
        (6, 12), (5, 11), (11, 12), (12, 14), (14, 16), (11, 13), (13, 15),
    ),
    # pycocotools' COCOeval.Params kpt_oks_sigmas.
    sigmas=(0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062,
            0.107, 0.107, 0.087, 0.087, 0.089, 0.089),
)
