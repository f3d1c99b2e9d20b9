"""``centerpose zoo list | download <name> | path <name>``."""

from __future__ import annotations

import argparse
import logging
import sys

from centerpose.errors import RunError
from centerpose.zoo import cache
from centerpose.zoo.models import MODELS, ZooModel, get_model
from centerpose.zoo.weights import cached_path, resolve_weights

__all__ = ["main"]

PROG = "centerpose zoo"


def _cached(entry: ZooModel) -> str:
    if entry.drive_id is None:
        return "-"
    path = cached_path(entry)  # not hashed here: listing stays instant; every use re-checks the digest
    if not path.is_file():
        return "no"
    return "yes" if cache.recorded(path) else "unchecked"


def _table() -> str:
    header = ("name", "architecture", "task", "original AP (flip)", "cached")
    rows = [header]
    for entry in MODELS.values():
        if entry.original_ap is None:
            ap = "no published weights" if entry.drive_id is None else "-"
        else:
            ap = f"{entry.original_ap:.1f} ({'keypoint' if entry.task == 'pose' else 'box'})"
        rows.append((entry.name, entry.arch, entry.task, ap, _cached(entry)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append(f"cache: {cache.zoo_dir()} (set CENTERPOSE_HOME to move it; CENTERPOSE_ZOO_URL for a mirror)")
    lines.append("AP: the original CenterNet's published COCO val2017 figures, not centerpose measurements")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="The original CenterNet's released models by name: downloaded once into "
        "$CENTERPOSE_HOME/zoo, converted, and checked by sha256 on every use.",
        epilog="Use a name anywhere a checkpoint goes: `centerpose predict model=multi_pose_dla_3x source=img.jpg`, "
        '`Predictor.from_pretrained("multi_pose_dla_3x")`, `centerpose train init_from=ctdet_coco_dla_2x`.',
    )
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="{list,download,path}")
    verbs.add_parser("list", help="every zoo model: architecture, task, the original's AP, cached or not")
    download = verbs.add_parser("download", help="fetch (and convert) a model now; prints its path")
    # names are checked by get_model, not argparse choices: an unknown one is one line with a "did you mean"
    download.add_argument("name", metavar="NAME", help=", ".join(MODELS))
    path = verbs.add_parser("path", help="print where a model's file is cached (exit 1 if not there yet)")
    path.add_argument("name", metavar="NAME", help=", ".join(MODELS))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``centerpose zoo ...``; returns the exit code (errors: one line on stderr, exit 1)."""
    args = _parser().parse_args(argv)
    try:
        if args.verb == "list":
            print(_table())
            return 0
        if args.verb == "download":
            logging.basicConfig(level=logging.INFO, format="%(message)s")
            print(resolve_weights(args.name))
            return 0
        entry = get_model(args.name)
        target = cached_path(entry)
        print(target)
        if not target.is_file():
            print(f"{PROG}: {entry.name} is not downloaded yet: {PROG} download {entry.name}", file=sys.stderr)
            return 1
        return 0
    except RunError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 1
