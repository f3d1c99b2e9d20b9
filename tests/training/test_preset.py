"""`+preset=improved` turns the measured improvements on; without it every switch keeps the original's value."""

from __future__ import annotations

from centerpose.config import compose


def test_improved_preset_sets_the_switches_and_the_original_stays_default():
    default = compose("evaluate", [])
    assert (
        default.decode.tie_break,
        default.decode.snap,
        default.decode.fix_flip_offset,
        default.test.merge,
        default.codec.corrected_radius,
    ) == ("topk", "nearest", False, "original", False)
    improved = compose("evaluate", ["+preset=improved"])
    assert (improved.decode.tie_break, improved.decode.snap, improved.decode.fix_flip_offset, improved.test.merge) == (
        "stable",
        "nearest",
        True,
        "improved",
    )
    train = compose("train", ["+preset=improved"])
    assert train.decode.tie_break == "stable"
    assert compose("train", []).decode.tie_break == "topk"
