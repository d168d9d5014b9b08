"""``semrl train``: learn a per-CTU QP policy for a vision task (fast-mode tables, Stable-Baselines3)."""

from __future__ import annotations

import argparse

from semrl.cli.options import comma_list, index_range
from semrl.cluster import add_ray_option
from semrl.errors import InvalidInputError


def _qp_range(text: str) -> tuple[int, int]:
    lo, sep, hi = text.replace(",", "-").partition("-")
    try:
        pair = (int(lo), int(hi if sep else lo))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected LOW-HIGH base QPs, got {text!r}") from e
    return pair


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``train`` subcommand."""
    from semrl.agent.config import ALGORITHMS, DEFAULT_FIDELITY_WEIGHTS, MDPS, OBJECT_WEIGHTINGS, TrainConfig
    from semrl.semantics import TASKS

    d = TrainConfig()

    def by_task(name: str) -> str:
        return "default by task: " + ", ".join(f"{t} {w[name]:g}" for t, w in DEFAULT_FIDELITY_WEIGHTS.items())

    p = subparsers.add_parser(
        "train",
        help="train a per-CTU QP policy for a vision task",
        description="Code every training picture at every table QP with the patched x265, score each "
        "reconstruction with the task net (cached), then train a Stable-Baselines3 agent on the fast-mode "
        "environment. Writes <output>/ckpt.zip, its config ckpt.json (checked when loading), TensorBoard "
        "logs in <output>/tb and periodic checkpoints a --resume continues from.",
    )
    p.add_argument("--task", required=True, choices=TASKS, help="vision task")
    p.add_argument("--data", default=None,
                   help="dataset name, data.yaml or folder, class-per-folder dataset, folder of images, a video, a "
                   "folder of videos or a comma list of them (default: coco-det, coco-seg or imagenet-cls of the "
                   "shared assets)")  # fmt: skip
    p.add_argument("--split", default=d.split, help=f"dataset split (default {d.split})")
    p.add_argument("--limit", type=int, default=None, help="use the first N pictures")
    p.add_argument("--hold-out", metavar="START:STOP", default=None,
                   help="leave pictures START..STOP-1 out of training, to measure the policy on them "
                        "(benchmarks/bdrate.py --split train --start START --limit STOP-START)")  # fmt: skip
    p.add_argument("--video-stride", type=int, default=d.video_stride,
                   help="--mdp image on videos: every N-th video frame is a picture (default 10)")  # fmt: skip
    p.add_argument("--mdp", choices=MDPS, default=None,
                   help="what the policy decides: image (per-CTU QPs of pictures) or video (its objects' boost over a "
                   "temporal QP cascade with ROI, every 8 frames on x265 low-delay P); default video for videos, "
                   "else image",
                   )  # fmt: skip
    p.add_argument("--max-frames", type=int, default=None, help="video: read at most N frames of each clip")
    p.add_argument("--algo", choices=ALGORITHMS, default=d.algorithm, help=f"algorithm (default {d.algorithm})")
    p.add_argument("--timesteps", type=int, default=d.timesteps,
                   help=f"environment steps; the video MDP counts frames coded (default {d.timesteps})")  # fmt: skip
    p.add_argument("--base-qp", type=_qp_range, default=d.base_qps, metavar="LOW-HIGH",
                   help=f"base QP range of episodes (default {d.base_qps[0]}-{d.base_qps[1]})")  # fmt: skip
    p.add_argument("--rate-weight", type=float, default=d.rate_weight,
                   help="multiplier of the rate term (1 = uniform coding's slope; default 1)")  # fmt: skip
    p.add_argument("--pixel-weight", type=float, default=None,
                   help="weight of semantic-weighted squared error in the fidelity term "
                   f"({by_task('pixel_weight')})")  # fmt: skip
    p.add_argument("--mse-share", type=float, default=d.mse_share,
                   help="the background's price: weight of the plain squared error in the fidelity term, as the "
                   "share of the task term's growth from the lowest base QP to 51 "
                   f"(default {d.mse_share:g})")  # fmt: skip
    p.add_argument(
        "--semantic-weight",
        type=float,
        default=None,
        help=f"weight of the semantic map's drop in the fidelity term ({by_task('semantic_weight')})",
    )
    p.add_argument(
        "--object-weight",
        type=float,
        default=None,
        help="weight of the task output's object-by-object loss (IoU- and confidence-graded; for a classifier "
        f"the reference class's probability drop) in the fidelity term ({by_task('object_weight')})",
    )
    p.add_argument("--false-weight", type=float, default=d.false_weight,
                   help=f"weight of false detections coding creates (default {d.false_weight:g})")  # fmt: skip
    p.add_argument("--object-weighting", choices=OBJECT_WEIGHTINGS, default=d.object_weighting,
                   help="how the object term weighs each object: 'picture' (each picture's objects share a weight "
                        "of 1) or 'class' (as a missed object weighs in the class-mean mAP of the training "
                        f"pictures; detection, segmentation); default {d.object_weighting}")  # fmt: skip
    p.add_argument("--augment", default="", metavar="KINDS",
                   help="picture policies: also train on a transformed copy of every picture per kind, a comma "
                        "list of flip (mirrored), shift (32 px cut off the top and left: another CTU grid) and "
                        "scale (0.75x); default none")  # fmt: skip
    p.add_argument("--seed", type=int, default=d.seed, help="random seed (default 0)")
    p.add_argument(
        "--ensemble",
        type=int,
        default=d.ensemble,
        metavar="K",
        help="DQN picture policies: train K nets (seeds S, S+1, ...) on the same tables and ship the mean of "
        "their Q-values as one net (default 1)",
    )
    p.add_argument("--scaling-lists", type=_scaling_lists, default=None, metavar="SLOPE[^POWER]",
                   help="picture policies: quantisation matrices (HEVC scaling lists) the tables are coded with "
                        "and the policy codes with, the highest frequency's step SLOPE + 1 times DC's "
                        "(semrl.codec.ScalingLists); 0: flat; default the task's (flat)")  # fmt: skip
    p.add_argument("--preset", default=d.preset, help="x265 preset of the tables (default medium)")
    p.add_argument("--method", default=None, help="semantic map method (default by task)")
    p.add_argument("--weights", default=None, help="task net weights (default by task)")
    p.add_argument("--workers", type=int, default=d.workers, help="processes building the tables (default 2)")
    add_ray_option(p, "the table building (one task per picture)")
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--resume", action="store_true", help="continue the run in --output")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Handle ``semrl train``; errors propagate as semrl errors for the CLI to report."""
    from semrl.agent.config import TrainConfig
    from semrl.agent.train import train

    if args.limit is not None and args.limit < 1:
        raise InvalidInputError(f"--limit must be positive, got {args.limit}")
    config = TrainConfig(
        task=args.task, data=args.data, split=args.split, limit=args.limit,
        hold_out=index_range(args.hold_out, "--hold-out"), video_stride=args.video_stride,
        algorithm=args.algo, timesteps=args.timesteps, base_qps=tuple(args.base_qp), rate_weight=args.rate_weight,
        pixel_weight=args.pixel_weight, mse_share=args.mse_share, semantic_weight=args.semantic_weight,
        object_weight=args.object_weight, false_weight=args.false_weight,
        object_weighting=args.object_weighting, seed=args.seed, preset=args.preset,
        method=args.method, weights=args.weights, workers=args.workers, mdp=args.mdp, max_frames=args.max_frames,
        ensemble=args.ensemble, augment=comma_list(args.augment), scaling_lists=args.scaling_lists,
    )  # fmt: skip
    result = train(config, args.output, resume=args.resume, progress=not args.no_progress, ray=args.ray)
    s = result.seconds
    members = f" ({result.members} nets, averaged into one)" if result.members > 1 else ""
    print(
        f"wrote {result.checkpoint} and {result.config}: {result.timesteps} steps{members} on "
        f"{result.pictures} picture{'' if result.pictures == 1 else 's'} "
        f"(tables {s['tables']:.0f} s, training {s['train']:.0f} s, total {s['total']:.0f} s)"
    )
    return 0


def _scaling_lists(text: str) -> dict[str, float]:
    """Parse ``--scaling-lists SLOPE[^POWER]`` into :class:`semrl.codec.ScalingLists`' dict form."""
    slope, _, power = text.partition("^")
    try:
        lists = {"slope": float(slope), "power": float(power or 1)}
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected SLOPE or SLOPE^POWER (e.g. 5 or 3^2), got {text!r}") from None
    return lists
