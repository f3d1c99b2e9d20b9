"""Tracking people through video: persistent ids for the :class:`~centerpose.codec.poses.Poses` of each frame.

:class:`PoseTracker` associates each frame's people with the tracks of earlier frames, ByteTrack-style:

1. people scoring at least ``high_thresh`` are matched to every live track (confirmed, tentative or lost),
2. people scoring between ``low_thresh`` and ``high_thresh`` (often partly hidden ones) are matched to the
   confirmed tracks still unmatched, so a person does not lose their id while occluded,
3. unmatched high-score people start tentative tracks, which get an id after ``min_hits`` consecutive frames;
   a track unseen for more than ``max_age`` frames ends (a tentative one at its first miss).

Matching solves one assignment (Hungarian, :func:`scipy.optimize.linear_sum_assignment`) per stage on the
similarity ``oks_weight · OKS + (1 − oks_weight) · IoU`` between a person and a track's pose predicted at
constant velocity; pairs below ``match_thresh`` are never matched. OKS uses the skeleton's sigmas, so it
works for any :class:`~centerpose.keypoints.KeypointSpec`. Optional One-Euro smoothing (Casiez et al. 2012)
of the joints of confirmed tracks is off by default.

    tracker = PoseTracker(predictor.keypoints)
    for frame in video:
        poses = predictor(frame)
        ids = tracker.update(poses)        # (N,) int, -1 while a person's track is unconfirmed
        smoothed = tracker.smoothed        # the same Poses, joints smoothed when smoothing=True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.optimize import linear_sum_assignment

from centerpose.keypoints import COCO_PERSON, DEFAULT_OKS_SIGMA, KeypointSpec
from centerpose.codec.poses import Poses

__all__ = ["OneEuroFilter", "PoseTracker", "box_iou", "pose_oks"]


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) IoU of boxes ``a`` (N, 4) and ``b`` (M, 4), both x1 y1 x2 y2."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(-1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def pose_oks(a: np.ndarray, b: np.ndarray, area: np.ndarray, sigmas: np.ndarray, kpt_thresh: float = 0.1) -> np.ndarray:
    """(N, M) object keypoint similarity of poses ``a`` (N, J, 3) against reference poses ``b`` (M, J, 3).

    COCO's formula with the reference's scale: ``exp(−d² / (2 · area · (2σ)²))`` averaged over the joints
    that score above ``kpt_thresh`` in both poses (0 when none does). ``area``: (M,) reference box areas.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    d2 = ((a[:, None, :, :2] - b[None, :, :, :2]) ** 2).sum(-1)  # (N, M, J)
    var = (2.0 * np.asarray(sigmas, np.float64)) ** 2
    e = d2 / (2.0 * np.maximum(np.asarray(area, np.float64), 1.0)[None, :, None] * var[None, None, :])
    both = (a[:, None, :, 2] > kpt_thresh) & (b[None, :, :, 2] > kpt_thresh)
    count = both.sum(-1)
    return np.where(count > 0, (np.exp(-e) * both).sum(-1) / np.maximum(count, 1), 0.0)


class OneEuroFilter:
    """Vectorised One-Euro low-pass filter (Casiez et al., CHI 2012), one call per frame.

    Args:
        min_cutoff: cutoff frequency (Hz) at rest; lower = smoother, more lag when still.
        beta: how fast the cutoff rises with speed; higher = less lag on fast motion.
        d_cutoff: cutoff frequency (Hz) of the speed estimate.
        fps: frame rate the frequencies refer to.
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.05, d_cutoff: float = 1.0, fps: float = 30.0) -> None:
        self.min_cutoff, self.beta, self.d_cutoff, self.te = min_cutoff, beta, d_cutoff, 1.0 / fps
        self.x: np.ndarray | None = None
        self.dx: np.ndarray | None = None

    def _alpha(self, cutoff: np.ndarray | float) -> np.ndarray | float:
        tau = 1.0 / (2.0 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / self.te)

    def __call__(self, x: np.ndarray, frames: int = 1) -> np.ndarray:
        """Filtered ``x`` (any shape); ``frames`` = frames since the last call (a gap after a miss)."""
        x = np.asarray(x, np.float64)
        if self.x is None:
            self.x, self.dx = x.copy(), np.zeros_like(x)
            return x.copy()
        te, self.te = self.te, self.te * max(frames, 1)
        dx = (x - self.x) / self.te
        a_d = self._alpha(self.d_cutoff)
        self.dx = a_d * dx + (1 - a_d) * self.dx
        a = self._alpha(self.min_cutoff + self.beta * np.abs(self.dx))
        self.x = a * x + (1 - a) * self.x
        self.te = te
        return self.x.copy()


@dataclass
class _Track:
    box: np.ndarray  # (4,) last observed
    keypoints: np.ndarray  # (J, 3) last observed
    velocity: np.ndarray  # (2,) box-centre motion per frame
    hits: int = 1
    misses: int = 0
    id: int = -1  # assigned at confirmation
    filter: OneEuroFilter | None = field(default=None, repr=False)
    filter_frame: int = 0  # the frame the filter last saw

    @property
    def confirmed(self) -> bool:
        return self.id >= 0

    def predicted(self) -> tuple[np.ndarray, np.ndarray]:
        """Box (4,) and joints (J, 3) moved on at constant velocity over the frames since the last match."""
        shift = self.velocity * (self.misses + 1)
        kp = self.keypoints.copy()
        kp[:, :2] += shift
        return self.box + np.tile(shift, 2), kp


class PoseTracker:
    """Give each person a persistent integer id across the frames of a stream of :class:`Poses`.

    Args:
        keypoints: the skeleton (its sigmas weight the OKS; a spec without sigmas uses ``DEFAULT_OKS_SIGMA``).
        high_thresh: people scoring at least this are matched first and may start tracks.
        low_thresh: people scoring below this are ignored (id −1); between the two they only extend
            confirmed tracks (ByteTrack's second stage).
        match_thresh: minimum similarity of a person–track pair for a first-stage match.
        low_match_thresh: the same for the second (low-score) stage; stricter by default.
        oks_weight: weight of OKS against box IoU in the similarity (1 = OKS only, 0 = IoU only).
        min_hits: consecutive matched frames before a track is confirmed and gets an id.
        max_age: frames a confirmed track survives unmatched (its pose extrapolated) before it ends.
        kpt_thresh: joints scoring at or below this are left out of the OKS.
        velocity_momentum: weight of the previous velocity when updating a track's motion estimate.
        smoothing: One-Euro smoothing of confirmed tracks' joints, returned in :attr:`smoothed`.
        min_cutoff, beta, d_cutoff, fps: the One-Euro filter's parameters (see :class:`OneEuroFilter`).
    """

    def __init__(
        self,
        keypoints: KeypointSpec = COCO_PERSON,
        high_thresh: float = 0.5,
        low_thresh: float = 0.1,
        match_thresh: float = 0.2,
        low_match_thresh: float = 0.4,
        oks_weight: float = 0.5,
        min_hits: int = 3,
        max_age: int = 30,
        kpt_thresh: float = 0.1,
        velocity_momentum: float = 0.7,
        smoothing: bool = False,
        min_cutoff: float = 1.0,
        beta: float = 0.05,
        d_cutoff: float = 1.0,
        fps: float = 30.0,
    ) -> None:
        if not 0.0 <= low_thresh <= high_thresh:
            raise ValueError(f"PoseTracker: need 0 <= low_thresh <= high_thresh, got {low_thresh}, {high_thresh}")
        if min_hits < 1 or max_age < 0:
            raise ValueError(f"PoseTracker: min_hits must be >= 1 and max_age >= 0, got {min_hits}, {max_age}")
        if not 0.0 <= oks_weight <= 1.0:
            raise ValueError(f"PoseTracker: oks_weight must be in [0, 1], got {oks_weight}")
        self.keypoints = keypoints
        sigmas = keypoints.sigmas or (DEFAULT_OKS_SIGMA,) * keypoints.num_joints
        self.sigmas = np.asarray(sigmas, np.float64)
        self.high_thresh, self.low_thresh = high_thresh, low_thresh
        self.match_thresh, self.low_match_thresh = match_thresh, low_match_thresh
        self.oks_weight, self.min_hits, self.max_age = oks_weight, min_hits, max_age
        self.kpt_thresh, self.velocity_momentum = kpt_thresh, velocity_momentum
        self.smoothing = smoothing
        self.filter_args = dict(min_cutoff=min_cutoff, beta=beta, d_cutoff=d_cutoff, fps=fps)
        self.reset()

    def reset(self) -> None:
        """Forget every track (a new video); ids start again at 0."""
        self.tracks: list[_Track] = []
        self.next_id = 0
        self.frame = 0
        self.smoothed: Poses | None = None

    # ------------------------------------------------------------------ association
    def similarity(self, boxes: np.ndarray, keypoints: np.ndarray, tracks: list[_Track]) -> np.ndarray:
        """(N, T) ``oks_weight · OKS + (1 − oks_weight) · IoU`` of people against tracks' predicted poses."""
        if not len(boxes) or not tracks:
            return np.zeros((len(boxes), len(tracks)))
        pred = [t.predicted() for t in tracks]
        t_boxes = np.stack([p[0] for p in pred])
        t_kps = np.stack([p[1] for p in pred])
        area = np.clip(t_boxes[:, 2] - t_boxes[:, 0], 0, None) * np.clip(t_boxes[:, 3] - t_boxes[:, 1], 0, None)
        oks = pose_oks(keypoints, t_kps, area, self.sigmas, self.kpt_thresh)
        return self.oks_weight * oks + (1.0 - self.oks_weight) * box_iou(boxes, t_boxes)

    @staticmethod
    def _assign(sim: np.ndarray, thresh: float) -> list[tuple[int, int]]:
        """Maximum-similarity one-to-one pairs (row, col) with similarity >= ``thresh``."""
        if not sim.size:
            return []
        # Pairs below the threshold get a prohibitive cost so the solver never trades a good pair for them.
        cost = np.where(sim >= thresh, 1.0 - sim, 1e6)
        rows, cols = linear_sum_assignment(cost)
        return [(int(r), int(c)) for r, c in zip(rows, cols) if sim[r, c] >= thresh]

    # ------------------------------------------------------------------ update
    def update(self, poses: Poses) -> np.ndarray:
        """Associate one frame's people with the tracks; returns (N,) int64 ids (−1: not (yet) confirmed).

        Args:
            poses: the frame's people (boxes (N, 4), scores (N,), keypoints (N, J, 3)) in image pixels.
        """
        n, j = len(poses), self.keypoints.num_joints
        if n and poses.keypoints.shape[1:] != (j, 3):
            raise ValueError(
                f"PoseTracker: poses have keypoints {poses.keypoints.shape[1:]}, the tracker's skeleton has ({j}, 3)"
            )
        self.frame += 1
        boxes = np.asarray(poses.boxes, np.float64).reshape(-1, 4)
        kps = np.asarray(poses.keypoints, np.float64).reshape(-1, j, 3)
        scores = np.asarray(poses.scores, np.float64).reshape(-1)
        high = np.flatnonzero(scores >= self.high_thresh)
        low = np.flatnonzero((scores >= self.low_thresh) & (scores < self.high_thresh))
        det_track: dict[int, _Track] = {}

        # Stage 1: confident people against every live track.
        pool = list(self.tracks)
        pairs = self._assign(self.similarity(boxes[high], kps[high], pool), self.match_thresh)
        for r, c in pairs:
            det_track[int(high[r])] = pool[c]
        matched = {id(pool[c]) for _, c in pairs}
        # Stage 2: less confident people keep confirmed tracks alive (occlusion lowers the score).
        pool = [t for t in self.tracks if id(t) not in matched and t.confirmed]
        pairs = self._assign(self.similarity(boxes[low], kps[low], pool), self.low_match_thresh)
        for r, c in pairs:
            det_track[int(low[r])] = pool[c]
        matched |= {id(pool[c]) for _, c in pairs}

        for d, track in det_track.items():
            self._hit(track, boxes[d], kps[d])
        survivors = []
        for track in self.tracks:
            if id(track) in matched:
                survivors.append(track)
                continue
            track.misses += 1
            if track.confirmed and track.misses <= self.max_age:
                survivors.append(track)
        self.tracks = survivors
        # Stage 3: confident people nobody claimed start tentative tracks.
        for d in high:
            if int(d) not in det_track:
                track = _Track(box=boxes[d].copy(), keypoints=kps[d].copy(), velocity=np.zeros(2))
                self.tracks.append(track)
                det_track[int(d)] = track
                self._confirm(track)

        ids = np.full(n, -1, np.int64)
        smoothed_kps = np.array(poses.keypoints, np.float32, copy=True).reshape(-1, j, 3)
        for d, track in det_track.items():
            if track.confirmed:
                ids[d] = track.id
                if self.smoothing:
                    smoothed_kps[d, :, :2] = self._smooth(track, kps[d, :, :2])
        self.smoothed = replace(poses, keypoints=smoothed_kps) if n else poses
        return ids

    def _hit(self, track: _Track, box: np.ndarray, kps: np.ndarray) -> None:
        gap = track.misses + 1
        centre = (box[:2] + box[2:]) / 2
        old = (track.box[:2] + track.box[2:]) / 2
        step = (centre - old) / gap
        m = self.velocity_momentum if track.hits > 1 else 0.0
        track.velocity = m * track.velocity + (1 - m) * step
        track.box, track.keypoints = box.copy(), kps.copy()
        track.hits = track.hits + 1 if track.misses == 0 or track.confirmed else 1
        track.misses = 0
        self._confirm(track)

    def _confirm(self, track: _Track) -> None:
        if not track.confirmed and track.hits >= self.min_hits:
            track.id = self.next_id
            self.next_id += 1

    def _smooth(self, track: _Track, xy: np.ndarray) -> np.ndarray:
        if track.filter is None:
            track.filter = OneEuroFilter(**self.filter_args)
        gap = self.frame - track.filter_frame  # > 1 after frames the track was missed
        track.filter_frame = self.frame
        return track.filter(xy, frames=gap).astype(np.float32)

    @property
    def active_ids(self) -> list[int]:
        """Ids of the confirmed tracks matched in the last frame."""
        return sorted(t.id for t in self.tracks if t.confirmed and t.misses == 0)
