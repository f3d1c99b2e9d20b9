"""DecodeOptions: every choice of how raw heads become people, in one frozen dataclass.

A leaf module (imports only :mod:`centerpose.errors`): the decode, the codec, the exported graph, the ONNX
runtime and the configs (``configs/decode/*.yaml``, ``_target_: centerpose.codec.DecodeOptions``) all read
these fields. Exported files and checkpoints record :meth:`DecodeOptions.record` (``dataclasses.asdict``);
:meth:`DecodeOptions.check_matches` is the one place a recorded decode is compared with the one asked for.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Iterable, Literal, Mapping

from centerpose.errors import RunError

__all__ = ["DecodeOptions", "DecodeOptionsMismatch", "SIGMOIDS", "SNAP_MODES", "TIE_BREAKS", "SnapMode", "TieBreak"]

TieBreak = Literal["topk", "stable"]
SnapMode = Literal["nearest", "nearest_valid", "weighted"]
SNAP_MODES: tuple[str, ...] = ("nearest", "nearest_valid", "weighted")
TIE_BREAKS: tuple[str, ...] = ("topk", "stable")
SIGMOIDS: tuple[str, ...] = ("plain", "clamp")


class DecodeOptionsMismatch(RunError):
    """A file was written with other decode options than those asked for (e.g. an ONNX graph with the decode
    inside); the message names the option and says to export again."""


def _spell(value: Any) -> str:
    """A value as it is written on the command line (``true``, ``nearest``, ``0.1``)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


@dataclass(frozen=True)
class DecodeOptions:
    """How raw heads become people. Defaults are the original's (the detector's decode, without flip).

    Attributes:
        K: people per image (and heatmap candidates per joint); capped at the output map's cell count.
        flip_test: the heads are ``[images; mirrors]`` and are merged first (§3.3); whoever runs the network
            runs the mirrored input too when this is on.
        sigmoid: ``plain`` = the detector; ``clamp`` = the trainer path's clamped sigmoid (QUIRK E1). The flip
            merge always uses the plain sigmoid, as the original's detector.
        fix_flip_offset: exact mirror of the x offsets in the flip merge (QUIRK E11; off = the original).
        tie_break: ``topk`` (the original's order on CPU) or ``stable`` (equal scores by cell index, E10).
        snap: ``nearest`` (the original, E9), ``nearest_valid`` or ``weighted`` joint snapping (see
            :func:`~centerpose.codec.decode.decode`).
        rescore: rank people by the geometric mean of centre score and mean joint score (off = the
            original's centre score).
        hm_hp_thresh: joint-heatmap peaks at or below it are no snapping candidates (0.1, the original's
            hard-coded threshold).
        nms_kernel: side of the max-pool window of the heatmap NMS (odd; 3, the original's).
    """

    K: int = 100
    flip_test: bool = False
    sigmoid: Literal["plain", "clamp"] = "plain"
    fix_flip_offset: bool = False
    tie_break: TieBreak = "topk"
    snap: SnapMode = "nearest"
    rescore: bool = False
    hm_hp_thresh: float = 0.1
    nms_kernel: int = 3

    def __post_init__(self) -> None:
        choices = {"sigmoid": SIGMOIDS, "tie_break": TIE_BREAKS, "snap": SNAP_MODES}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"DecodeOptions: {name} must be one of {allowed}, got {getattr(self, name)!r}")
        if int(self.K) < 1:
            raise ValueError(f"DecodeOptions: K must be >= 1, got {self.K}")
        if int(self.nms_kernel) < 1 or int(self.nms_kernel) % 2 == 0:
            raise ValueError(f"DecodeOptions: nms_kernel must be an odd window side >= 1, got {self.nms_kernel}")

    def replace(self, **changes: Any) -> "DecodeOptions":
        """A copy with some options changed (unknown names raise TypeError)."""
        return dataclasses.replace(self, **changes)

    def record(self) -> dict[str, Any]:
        """The options as plain data (``dataclasses.asdict``), as exported files and checkpoints store them."""
        return dataclasses.asdict(self)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_record(cls, recorded: Mapping[str, Any]) -> "DecodeOptions":
        """Options from a :meth:`record`; fields it lacks (written before they existed) take the defaults,
        which are the original's, as such files decoded."""
        names = set(cls.field_names())
        unknown = sorted(set(recorded) - names)
        if unknown:
            raise ValueError(f"DecodeOptions: unknown recorded option(s) {unknown}")
        return cls(**dict(recorded))

    def decode_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of :func:`~centerpose.codec.decode.decode` these options set."""
        return dict(
            K=int(self.K),
            hm_hp_thresh=float(self.hm_hp_thresh),
            tie_break=self.tie_break,
            snap=self.snap,
            rescore=bool(self.rescore),
            nms_kernel=int(self.nms_kernel),
        )

    def check_matches(self, recorded: Mapping[str, Any], source: str, names: Iterable[str] | None = None) -> None:
        """Raise :class:`DecodeOptionsMismatch` (one line) when ``recorded`` decodes otherwise than these options.

        Args:
            recorded: a :meth:`record` read from a file (missing fields = their defaults).
            source: the file, named in the message.
            names: the options to compare (e.g. those the user set); default all of them.
        """
        written = self.from_record(recorded)
        for name in self.field_names() if names is None else names:
            mine, theirs = getattr(self, name), getattr(written, name)
            if mine != theirs:
                raise DecodeOptionsMismatch(
                    f"'{source}' was exported with {name}={_spell(theirs)} inside the graph, got "
                    f"{name}={_spell(mine)}; export again with {name}={_spell(mine)}"
                )
