"""``semrl maps``: pictures of semantic maps with the CTU grid, and CTU importance as CSV."""

from __future__ import annotations

import argparse

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
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Handle ``semrl maps``; errors propagate as semrl errors for the CLI to report."""
    from semrl.semantics.config import MapConfig, load_class_weights
    from semrl.semantics.extractors import make_extractor
    from semrl.semantics.render import write_maps

    config = MapConfig(
        task=args.task,
        method=args.method,
        weights=args.weights,
        class_weights=load_class_weights(args.class_weights),
    )
    extractor = make_extractor(args.task, config=config, device=args.device)
    written = write_maps(args.input, args.output, extractor, max_frames=args.frames)
    print(f"wrote {len(written)} map(s) to {args.output}")
    return 0
