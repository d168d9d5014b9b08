"""``semrl maps``: pictures of semantic maps with the CTU grid, and CTU importance as CSV."""

from __future__ import annotations

import argparse
from pathlib import Path

from semrl.cli.options import class_names
from semrl.errors import InvalidInputError
from semrl.semantics.config import METHODS


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``maps`` subcommand."""
    p = subparsers.add_parser(
        "maps",
        help="write heat-map PNGs of semantic maps with the CTU grid, and CTU importance CSVs",
        description="For an image, a folder of images or a video, write <name>_map.png (the frame "
        "with its semantic map as a heat map and the 64x64 CTU grid) and <name>_ctu.csv "
        "(the CTU-pooled importance).",
    )
    p.add_argument("input", help="image file, folder of images, or video file")
    p.add_argument("--task", required=True, choices=sorted(METHODS), help="vision task")
    p.add_argument(
        "--method",
        choices=sorted({m for ms in METHODS.values() for m in ms}),
        help="map method (default: boxes, masks or gradcam by task)",
    )
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--frames", type=int, default=None, help="first N frames of a video or folder")
    p.add_argument("--weights", default=None, help="weights file or name (default by task)")
    p.add_argument("--class-weights", default=None, help="YAML of per-class weights")
    p.add_argument("--classes", default=None, help="comma-separated class names: only these count (e.g. person,car)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    p.add_argument(
        "--policy", default=None,
        help="also draw this policy's QP map (as semrl encode's --policy) on each picture: <name>_qp_<frame>.png",
    )  # fmt: skip
    p.add_argument("--qp", type=int, default=32, help="with --policy: the base QP (default 32)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Handle ``semrl maps``; errors propagate as semrl errors for the CLI to report."""
    from semrl.files import check_can_create
    from semrl.semantics.config import ClassWeights, MapConfig, load_class_weights
    from semrl.semantics.extractors import make_extractor
    from semrl.semantics.render import write_maps

    check_can_create(args.output, "-o")
    weights = load_class_weights(args.class_weights)
    names = class_names(args.classes)
    if names is not None:
        if args.class_weights is not None:
            raise InvalidInputError("--classes takes class names, and not together with --class-weights")
        weights = ClassWeights(0.0, tuple((n, 1.0) for n in names))
    config = MapConfig(task=args.task, method=args.method, weights=args.weights, class_weights=weights)
    extractor = make_extractor(args.task, config=config, device=args.device)
    written = write_maps(args.input, args.output, extractor, max_frames=args.frames)
    print(f"wrote {len(written)} map(s) to {args.output}")
    if args.policy is not None:
        drawn = _policy_maps(args)
        print(f"wrote {drawn} QP map(s) of policy {args.policy} at base QP {args.qp} to {args.output}")
    return 0


def _policy_maps(args: argparse.Namespace) -> int:
    """Code the input with the policy (fast preset; the QPs do not depend on it) and draw every picture's QP map."""
    import tempfile

    from semrl.codec import Gop
    from semrl.pipeline import EncodeSettings, encode_video

    folder = Path(args.output)
    before = set(folder.glob("*.png")) if folder.is_dir() else set()
    settings = EncodeSettings(
        policy=args.policy, task=args.task, qp=args.qp, preset="ultrafast", gop=Gop.INTRA, max_frames=args.frames,
        map_interval=1, device=args.device, qp_maps=folder, qp_map_every=1, crop_even=True,
    )  # fmt: skip
    source = Path(args.input)
    with tempfile.TemporaryDirectory(prefix="semrl-maps-") as work:
        if source.is_dir():
            pictures = sorted(p for p in source.iterdir() if p.is_file() and not p.name.startswith("."))
            from semrl.media import IMAGE_SUFFIXES

            pictures = [p for p in pictures if p.suffix.lower() in IMAGE_SUFFIXES][: args.frames]
        else:
            pictures = [source]
        for picture in pictures:  # pictures of a folder may differ in size: one encode each
            encode_video(picture, Path(work) / "out.hevc", settings)
    return len(set(folder.glob("*.png")) - before)
