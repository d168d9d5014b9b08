"""``semrl maps``: pictures of semantic maps with the CTU grid, and CTU importance as CSV."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from semrl.cli.options import class_names
from semrl.errors import InvalidInputError
from semrl.semantics.config import METHODS

if TYPE_CHECKING:
    from semrl.pipeline import EncodeSettings

DEFAULT_QP = 32
"""``--qp``: the base QP of a ``--policy``'s maps."""


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
    p.add_argument("--qp", type=int, default=None, help=f"with --policy: the base QP (default {DEFAULT_QP})")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Handle ``semrl maps``; errors propagate as semrl errors for the CLI to report."""
    from semrl.files import check_can_create
    from semrl.semantics.config import CLASS_WEIGHTED_METHODS, ClassWeights, MapConfig, load_class_weights
    from semrl.semantics.extractors import make_extractor
    from semrl.semantics.render import write_maps
    from semrl.semantics.yolo import class_ids

    check_can_create(args.output, "-o")
    if args.frames is not None and args.frames < 1:
        raise InvalidInputError(f"--frames must be at least 1, got {args.frames}")
    if args.policy is not None:  # checked, and the policy found, before any map is written
        from semrl.pipeline import concrete_policy, resolve_policy

        resolve_policy(concrete_policy(_policy_settings(args), Path(args.input)))
    elif args.qp is not None:
        raise InvalidInputError(f"--qp {args.qp} is the base QP of --policy's map; pass --policy too, or drop --qp")
    weights = load_class_weights(args.class_weights)
    names = class_names(args.classes)
    if names is not None:
        if args.class_weights is not None:
            raise InvalidInputError("--classes takes class names, and not together with --class-weights")
        weights = ClassWeights(0.0, tuple((n, 1.0) for n in names))
    config = MapConfig(task=args.task, method=args.method, weights=args.weights, class_weights=weights)
    chosen = "--classes" if names is not None else None if args.class_weights is None else "--class-weights"
    if chosen is not None and config.resolved_method not in CLASS_WEIGHTED_METHODS:
        raise InvalidInputError(
            f"{chosen} weighs objects by class, in {', '.join(CLASS_WEIGHTED_METHODS)} maps; "
            f"a {config.resolved_method} map follows the net's gradients: drop {chosen} or pick another --method"
        )
    extractor = make_extractor(args.task, config=config, device=args.device)
    if chosen is not None:
        class_ids(extractor.net.names, [name for name, _ in weights.weights], str(extractor.net.weights_path), chosen)
    written = write_maps(args.input, args.output, extractor, max_frames=args.frames)
    print(f"wrote {len(written)} map(s) to {args.output}")
    if args.policy is not None:
        drawn = _policy_maps(args)
        print(f"wrote {drawn} QP map(s) of policy {args.policy} at base QP {_base_qp(args)} to {args.output}")
    return 0


def _base_qp(args: argparse.Namespace) -> int:
    """``--qp``, or its default."""
    return DEFAULT_QP if args.qp is None else int(args.qp)


def _policy_settings(args: argparse.Namespace) -> EncodeSettings:
    """The encode that draws ``--policy``'s QP maps: every picture analysed, coded intra and drawn.

    The preset is the fastest: the QPs do not depend on it.

    Raises:
        InvalidInputError: A setting out of range (``--qp``).
    """
    from semrl.codec import Gop
    from semrl.pipeline import EncodeSettings

    return EncodeSettings(
        policy=args.policy, task=args.task, qp=_base_qp(args), preset="ultrafast", gop=Gop.INTRA,
        max_frames=args.frames, map_interval=1, device=args.device, qp_maps=Path(args.output), qp_map_every=1,
        crop_even=True,
    )  # fmt: skip


def _policy_maps(args: argparse.Namespace) -> int:
    """Code the input with the policy and draw every picture's QP map; returns how many were drawn."""
    import tempfile

    from semrl.pipeline import encode_video

    settings = _policy_settings(args)
    source = Path(args.input)
    with tempfile.TemporaryDirectory(prefix="semrl-maps-") as work:
        if source.is_dir():
            pictures = sorted(p for p in source.iterdir() if p.is_file() and not p.name.startswith("."))
            from semrl.media import IMAGE_SUFFIXES

            pictures = [p for p in pictures if p.suffix.lower() in IMAGE_SUFFIXES][: args.frames]
        else:
            pictures = [source]
        # pictures of a folder may differ in size: one encode each, drawing every frame (qp_map_every 1)
        return sum(encode_video(picture, Path(work) / "out.hevc", settings).frames for picture in pictures)
