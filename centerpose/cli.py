"""The ``centerpose`` command: one verb per entry point, the rest of the command line passed on unchanged.

    centerpose train experiment=quickstart
    centerpose evaluate model=last.ckpt data=coco
    centerpose predict model=last.ckpt source=photos/
    centerpose track model=last.ckpt source=clip.mp4        # = predict track=true
    centerpose export model=last.ckpt decode=true
    centerpose convert multi_pose_dla_3x.pth dla_3x.ckpt
    centerpose check-data data=coco
    centerpose zoo list

A verb runs its module exactly as ``python -m centerpose.<module>`` does (:func:`runpy.run_module`: Hydra
parses the same arguments, and Lightning's DDP launcher re-runs ``python -m centerpose.<module>`` for the
other ranks), inside the error boundary of :mod:`centerpose.errors`, which names the error ``centerpose
<verb>: error: ...``. ``centerpose <verb> --help`` is the verb's own help (Hydra's, with the composed config;
argparse's for ``convert``; the zoo's for ``zoo``).
"""

from __future__ import annotations

import difflib
import runpy
import sys

from centerpose.errors import DEBUG_FLAG, error_boundary

__all__ = ["VERBS", "main"]

#: verb -> (module it runs, one line of help)
VERBS: dict[str, tuple[str, str]] = {
    "train": ("centerpose.train", "train a model (e.g. experiment=quickstart; resume with ckpt_path=)"),
    "evaluate": ("centerpose.evaluate", "COCO keypoint and box AP of a checkpoint, or of the encode/decode oracle"),
    "predict": ("centerpose.predict", "draw poses on an image, folder, video or webcam; writes detections.json"),
    "track": ("centerpose.predict", "predict with person ids that persist across frames (predict track=true)"),
    "export": ("centerpose.export", "export a checkpoint to ONNX or TorchScript for deployment"),
    "convert": ("centerpose.convert", "convert an original CenterNet checkpoint: SRC.pth DST.ckpt [--arch]"),
    "check-data": ("centerpose.check_data", "check a dataset's annotations and images before training on it"),
    "zoo": ("centerpose.zoo", "pretrained models by name: list, download, path"),
}


def usage() -> str:
    width = max(map(len, VERBS)) + 4
    lines = [
        "usage: centerpose [--debug] <command> [options] [key=value ...]",
        "",
        "CenterNet multi-person pose estimation (PyTorch Lightning, Hydra, timm).",
        "",
        "commands:",
    ]
    lines += [f"  {verb:<{width}}{text}" for verb, (_, text) in VERBS.items()]
    lines += [
        "",
        "options:",
        f"  {'-h, --help':<{width}}this list; `centerpose <command> --help` shows the command's options and config",
        f"  {'--version':<{width}}print the version",
        f"  {DEBUG_FLAG:<{width}}show the traceback of an error (as does HYDRA_FULL_ERROR=1)",
        "",
        "Hydra commands take key=value overrides, e.g. `centerpose predict model=last.ckpt source=photo.jpg`.",
    ]
    return "\n".join(lines)


def _unknown(what: str, choices: list[str]) -> int:
    close = difflib.get_close_matches(what, choices, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    print(f"centerpose: error: unknown command '{what}' (choose from {', '.join(choices)}){hint}", file=sys.stderr)
    return 2


def _with_track(args: list[str]) -> list[str]:
    """``track=true`` among the overrides (before the first one, so Hydra's flags stay where they were), unless
    ``track=`` is given."""
    if any(a.lstrip("+~").startswith("track=") for a in args):
        return args
    first = next((i for i, a in enumerate(args) if "=" in a and not a.startswith("-")), len(args))
    return [*args[:first], "track=true", *args[first:]]


def _run_zoo(args: list[str]) -> int:
    import centerpose.zoo as zoo

    zoo_main = getattr(zoo, "main", None)
    if zoo_main is None:
        print(
            "centerpose zoo: error: this installation's centerpose.zoo has no command line (zoo.main)", file=sys.stderr
        )
        return 1
    return int(zoo_main(args) or 0)


def main(argv: list[str] | None = None) -> int:
    """Run ``centerpose <verb> ...``; returns the exit code (a verb may also exit through ``SystemExit``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = []
    while args and args[0].startswith("-"):
        option = args.pop(0)
        if option in ("-h", "--help"):
            print(usage())
            return 0
        if option == "--version":
            from centerpose import __version__

            print(f"centerpose {__version__}")
            return 0
        if option == DEBUG_FLAG:
            debug = [DEBUG_FLAG]
            continue
        print(f"centerpose: error: unknown option '{option}' (centerpose --help lists the commands)", file=sys.stderr)
        return 2
    if not args:
        print(usage())
        return 0
    verb, rest = args[0], args[1:] + debug
    if verb not in VERBS:
        return _unknown(verb, list(VERBS))
    module = VERBS[verb][0]
    if verb == "track":
        rest = _with_track(rest)
    program = f"centerpose {verb}"
    saved_argv = sys.argv
    # what the verb's module parses (the boundary takes --debug off it); runpy sets argv[0] to its file
    sys.argv = [saved_argv[0] if saved_argv else "centerpose", *rest]
    try:
        with error_boundary(program):
            if verb == "zoo":
                return _run_zoo(sys.argv[1:])
            runpy.run_module(module, run_name="__main__", alter_sys=True)
    finally:
        sys.argv = saved_argv
    return 0


if __name__ == "__main__":
    sys.exit(main())
