"""Poses: the codec's typed result — people with a box, a score and scored joints, for one image or a batch.

Every consumer (evaluation, predictor, drawing, tracking, export, NMS) reads people through these fields
instead of slicing result rows. The flat layouts other tools need are made and read here only:

- ``rows``: ``[x1 y1 x2 y2 | score | x0 y0 ... x(J-1) y(J-1)]`` (5 + 2J columns, the original's results
  layout), optionally followed by the J joint scores (5 + 3J, the predictor's rows);
- ``people``: ``[x1 y1 x2 y2 | score | x0 y0 s0 ... ]`` (5 + 3J, the export decode graph's output);
- ``decoded``: :func:`~centerpose.codec.decode.decode`'s ``[box | score | 2J joints | class]`` (5 + 2J + 1).

Fields may be numpy arrays or torch tensors (the same kind for all three); leading dims are free, so a
batch is ``boxes`` (B, N, 4), ``scores`` (B, N), ``keypoints`` (B, N, J, 3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = ["Poses", "SCORE_COLUMN", "BOX_COLUMNS", "FIRST_JOINT_COLUMN"]

#: Column of the person score in every flat layout.
SCORE_COLUMN = 4
#: Columns of the box (x1 y1 x2 y2) in every flat layout.
BOX_COLUMNS = slice(0, 4)
#: First joint column in every flat layout (joints, then optional joint scores, follow the score).
FIRST_JOINT_COLUMN = 5


def _cat(parts: Sequence[Any], axis: int) -> Any:
    return torch.cat(list(parts), dim=axis) if isinstance(parts[0], Tensor) else np.concatenate(parts, axis=axis)


def _expand(x: Any, shape: tuple[int, ...]) -> Any:
    return x.expand(*shape) if isinstance(x, Tensor) else np.broadcast_to(x, shape)


@dataclass(frozen=True)
class Poses:
    """People of one image (N people) or of a batch (leading dims, e.g. B images of N people each).

    Attributes:
        boxes: (..., N, 4) x1 y1 x2 y2 (image pixels after :meth:`CenterPoseCodec.decode`).
        scores: (..., N) person scores, in descending order as decoded.
        keypoints: (..., N, J, 3) per joint ``(x, y, score)``; the score is the joint heatmap probability
            at the joint's cell (the person score when the network has no joint heatmap).
    """

    boxes: Any
    scores: Any
    keypoints: Any

    def __post_init__(self) -> None:
        b, s, k = self.boxes, self.scores, self.keypoints
        if (
            tuple(b.shape[-1:]) != (4,)
            or tuple(b.shape[:-1]) != tuple(s.shape)
            or k.ndim != s.ndim + 2
            or tuple(k.shape[:-2]) != tuple(s.shape)
            or k.shape[-1] != 3
        ):
            raise ValueError(
                f"Poses: expected boxes (..., N, 4), scores (..., N), keypoints (..., N, J, 3); got "
                f"{tuple(b.shape)}, {tuple(s.shape)}, {tuple(k.shape)}"
            )

    # ------------------------------------------------------------------ shape
    @property
    def num_joints(self) -> int:
        return int(self.keypoints.shape[-2])

    @property
    def joints(self) -> Any:
        """(..., N, J, 2) joint x, y."""
        return self.keypoints[..., :2]

    @property
    def joint_scores(self) -> Any:
        """(..., N, J) joint scores."""
        return self.keypoints[..., 2]

    def __len__(self) -> int:
        """People of one image; images of a batch (the first axis)."""
        return int(self.scores.shape[0])

    def __getitem__(self, index: Any) -> "Poses":
        """Index the first axis: people (an int array, a slice or a boolean mask) or a batch's images."""
        return Poses(self.boxes[index], self.scores[index], self.keypoints[index])

    def unbind(self) -> list["Poses"]:
        """A batch as one :class:`Poses` per image."""
        return [self[i] for i in range(len(self))]

    def numpy(self) -> "Poses":
        """float32 numpy fields (from the device when they are tensors)."""

        def conv(x: Any) -> np.ndarray:
            x = x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)
            return x.astype(np.float32, copy=False)

        return Poses(conv(self.boxes), conv(self.scores), conv(self.keypoints))

    def map_xy(self, fn: Any) -> "Poses":
        """``fn`` applied to the box and joint coordinates (scores unchanged)."""
        return Poses(fn(self.boxes), self.scores, _cat([fn(self.joints), self.keypoints[..., 2:]], -1))

    def scaled(self, factor: float) -> "Poses":
        """Boxes and joint x, y multiplied by ``factor``, e.g. output cells → input pixels."""
        return self.map_xy(lambda v: v * factor)

    @classmethod
    def concat(cls, parts: Sequence["Poses"]) -> "Poses":
        """The people of several results of one image (e.g. test scales), in order."""
        return cls(
            _cat([p.boxes for p in parts], -2),
            _cat([p.scores for p in parts], -1),
            _cat([p.keypoints for p in parts], -3),
        )

    @classmethod
    def empty(cls, num_joints: int) -> "Poses":
        """No people (numpy)."""
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, num_joints, 3), np.float32))

    # ------------------------------------------------------------------ flat layouts
    @classmethod
    def from_rows(cls, rows: Any, kp_scores: Any = None, num_joints: int | None = None) -> "Poses":
        """People from ``rows`` (..., N, 5 + 2J) and ``kp_scores`` (..., N, J), or from the predictor's rows
        (..., N, 5 + 3J, joint scores last) when ``num_joints`` is given. Without joint scores, each joint
        takes the person score."""
        d = rows.shape[-1]
        if num_joints is not None and kp_scores is None and d == 5 + 3 * num_joints:
            j = num_joints
            kp_scores = rows[..., FIRST_JOINT_COLUMN + 2 * j :]
        elif d < 7 or (d - 5) % 2 or (num_joints is not None and d != 5 + 2 * num_joints):
            raise ValueError(
                f"Poses.from_rows: rows must be (..., N, 5 + 2J) or (..., N, 5 + 3J) with num_joints, "
                f"got {tuple(rows.shape)}" + (f" for J={num_joints}" if num_joints else "")
            )
        else:
            j = (d - 5) // 2
        xy = rows[..., FIRST_JOINT_COLUMN : FIRST_JOINT_COLUMN + 2 * j].reshape(*rows.shape[:-1], j, 2)
        score = rows[..., SCORE_COLUMN]
        if kp_scores is None:
            kp_scores = _expand(score[..., None], (*score.shape, j))
        if tuple(kp_scores.shape) != (*score.shape, j):
            raise ValueError(f"Poses.from_rows: kp_scores must be {(*score.shape, j)}, got {tuple(kp_scores.shape)}")
        return cls(rows[..., BOX_COLUMNS], score, _cat([xy, kp_scores[..., None]], -1))

    def rows(self, joint_scores: bool = False) -> Any:
        """(..., N, 5 + 2J) ``[box, score, x0 y0 ...]``; with ``joint_scores`` (..., N, 5 + 3J), joint scores last."""
        flat_xy = self.joints.reshape(*self.scores.shape, 2 * self.num_joints)
        parts = [self.boxes, self.scores[..., None], flat_xy] + ([self.joint_scores] if joint_scores else [])
        return _cat(parts, -1)

    @classmethod
    def from_people(cls, people: Any) -> "Poses":
        """People from the export decode graph's (..., N, 5 + 3J) ``[box, score, x y s per joint]``."""
        d = people.shape[-1]
        if d < 8 or (d - 5) % 3:
            raise ValueError(f"Poses.from_people: expected (..., N, 5 + 3J), got {tuple(people.shape)}")
        j = (d - 5) // 3
        return cls(
            people[..., BOX_COLUMNS],
            people[..., SCORE_COLUMN],
            people[..., FIRST_JOINT_COLUMN:].reshape(*people.shape[:-1], j, 3),
        )

    def people(self) -> Any:
        """(..., N, 5 + 3J) ``[box, score, x y s per joint]`` (the export decode graph's layout)."""
        flat = self.keypoints.reshape(*self.scores.shape, 3 * self.num_joints)
        return _cat([self.boxes, self.scores[..., None], flat], -1)

    @classmethod
    def from_decoded(cls, dets: Tensor, kp_scores: Tensor) -> "Poses":
        """People from :func:`~centerpose.codec.decode.decode`'s (B, K, 5 + 2J + 1) rows (class column
        dropped) and (B, K, J) joint scores, in output-map cells."""
        return cls.from_rows(dets[..., :-1], kp_scores)

    def to_json(self) -> list[dict]:
        """One dict per person of one image: ``box``, ``score``, ``keypoints`` (J × [x, y, score])."""
        p = self.numpy()
        return [
            {"box": b.tolist(), "score": float(s), "keypoints": k.tolist()}
            for b, s, k in zip(p.boxes, p.scores, p.keypoints)
        ]
