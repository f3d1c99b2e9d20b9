"""`+preset=improved` turns the measured improvements on; without it every switch keeps the original's value."""

from __future__ import annotations

from centerpose.config import compose


def test_improved_preset_sets_the_switches_and_the_original_stays_default():
    default = compose("evaluate", []).test
    assert (default.tie_break, default.snap, default.fix_flip_offset, default.merge, default.corrected_radius) == (
        "topk", "nearest", False, "original", False)
    improved = compose("evaluate", ["+preset=improved"]).test
    assert (improved.tie_break, improved.snap, improved.fix_flip_offset, improved.merge) == (
        "stable", "nearest", True, "improved")
    train = compose("train", ["+preset=improved"])
    assert train.codec.decode.tie_break == "stable"
    assert compose("train", []).codec.decode.get("tie_break", "topk") == "topk"  # DecodeOptions default
