r"""What one departure from the video reference coding is worth: the measured deviations of a ``--algo deviation`` run.

Reads the ``deviations.npz`` that ``semrl train --algo deviation`` keeps beside its checkpoint (of
one run, or of several pooled: their clips then count as one set) and prints, per base QP and per
boost, the mean measured advantage (reward units: a frame's mean bits at the base QP,
:mod:`envs.video`), the share of departures that paid, and the gain per decision of the best
single departure (the ceiling of any policy over these boosts, one step from the reference). Then
how far a departure's worth carries: the gain per decision of the video net fitted as ``--algo
deviation`` fits it (margin 0) on the other clips, and of the best boost per base QP learned from
the other clips (what a clip-agnostic policy can know) and from the same clip's other segments
(what adapting to the clip can know), each scored on the decisions left out; with ``--features``
(it reads the runs' segment tables from the cache), the same across clips for a ridge fit per
boost on the observation plus what the observation leaves out: the size and confidence of the
objects on the original, and the reference coding's task loss on the previous decision's decoded
frames::

    python benchmarks/video_deviations.py /tmp/vdev/s0 --features --calibration \
        --output benchmarks/results/video-deviation/deviations
    python benchmarks/video_deviations.py /tmp/vdev/s0 /tmp/vdev/held --features \
        --output benchmarks/results/video-deviation/seven-clips

``--fit DIR`` fits a video policy on the pooled deviations as ``--algo deviation`` would on all
the runs' clips, without measuring them again.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from envs.video import VideoSettings
from semrl.agent.config import PolicyConfig, config_path
from semrl.agent.deviation import Deviations, gains, oracle_gain
from semrl.agent.run import CHECKPOINT_NAME
from semrl.agent.video import DEVIATIONS_NAME
from semrl.assets import local_path
from semrl.errors import SemrlError
from semrl.files import atomic_write, check_can_create


def pool(runs: Sequence[Path]) -> tuple[Deviations, list[Path], VideoSettings]:
    """The runs' deviations as one set (clips and segments numbered on from run to run), their clips, their MDP.

    Raises:
        SemrlError: A folder that is no deviation run, or runs of different MDP settings.
    """
    parts, sources, settings = [], [], None
    clips = segments = 0
    for run in runs:
        if not (run / DEVIATIONS_NAME).exists():
            raise SemrlError(f"{run} holds no {DEVIATIONS_NAME}: is it a `semrl train --algo deviation` run?")
        config = PolicyConfig.from_json(config_path(run / CHECKPOINT_NAME).read_text())
        own = VideoSettings.from_dict(config.env)
        if settings is not None and own != settings:
            raise SemrlError(f"{run} was measured on other MDP settings than {runs[0]}; pool runs of one MDP")
        settings = own
        d = Deviations.load(run / DEVIATIONS_NAME)
        parts.append(replace(d, clip=d.clip + clips, segment=d.segment + segments))
        sources += [local_path(str(p)) for p in config.data["source"]]
        clips, segments = len(sources), segments + len(config.data["segments"])
    assert settings is not None
    return Deviations.concatenate(parts), sources, settings


def report(runs: Sequence[Path], features: bool = False) -> str:
    """The Markdown report of one or more run folders (``features``: with :func:`feature_gain`)."""
    deviations, sources, settings = pool(runs)
    lines = [f"# Measured deviations of {', '.join(f'`{r}`' for r in runs)}", "",
             f"{len(deviations)} rollouts; advantage in reward units (module docstring of `envs.video`).", "",
             "| base QP | " + " | ".join(f"boost {settings.decode(a)[1]:+d}: mean, paid" for a in _actions(settings))
             + " | best single departure, gain per decision |",
             "|---|" + "---|" * (len(_actions(settings)) + 1)]  # fmt: skip
    for base in [*settings.base_qps, None]:
        rows = deviations if base is None else deviations.subset(deviations.base_qp == base)
        cells = []
        for a in _actions(settings):
            adv = rows.advantage[rows.action == a]
            cells.append(f"{adv.mean():+.3f}, {100 * (adv > 0).mean():.0f} %")
        lines.append(f"| {'all' if base is None else base} | " + " | ".join(cells) + f" | {oracle_gain(rows):.3f} |")
    for run in runs:
        timing = run / "timing.json"
        cv = json.loads(timing.read_text()).get("deviation", {}) if timing.exists() else {}
        if cv:
            lines += ["", f"`{run}`'s own cross-validation over its clips (`timing.json`): gain per decision on the "
                      "clip left out, by margin: "
                      + ", ".join(f"{m}: {g:.3f}" for m, g in cv["left_out_gain"].items())
                      + f"; the best single departure's {cv['oracle_gain']:.3f}; rank correlation of predicted and "
                      f"measured advantages {cv['spearman']:.2f}; margin chosen {cv['margin']}."]  # fmt: skip
    clips = [int(c) for c in np.unique(deviations.clip)]
    names = {c: sources[c].name if c < len(sources) else f"clip {c}" for c in clips}
    oracle = {c: oracle_gain(deviations.subset(deviations.clip == c)) for c in clips}
    net, spearman = net_gain(runs, deviations, settings)
    policies = {
        f"the video net fitted on the other clips (rank correlation {spearman:+.2f})": net,
        "best boost per base QP from the other clips": lookup_gain(deviations, within_clip=False),
    }
    if any(len(np.unique(deviations.segment[deviations.clip == c])) > 1 for c in clips):
        policies["best boost per base QP from the clip's other segments"] = lookup_gain(deviations, within_clip=True)
    correlations: dict[str, float] = {}
    if features:
        policies["ridge on the observation and the features it leaves out, from the other clips"], correlations = (
            feature_gain(runs, deviations, settings)
        )
    lines += [
        "",
        "## How far a departure's worth carries (gain per decision on what was left out)",
        "",
        "| policy | " + " | ".join(names[c] for c in clips) + " | mean |",
        "|---|" + "---|" * (len(clips) + 1),
    ]
    for name, per_clip in [*policies.items(), ("best single departure (ceiling)", oracle)]:
        lines.append(f"| {name} | " + " | ".join(f"{per_clip[c]:+.3f}" for c in clips)
                     + f" | {np.mean(list(per_clip.values())):+.3f} |")  # fmt: skip
    if correlations:
        lines += ["", "Rank correlation with the measured advantage of the largest boost, pooled: "
                  + ", ".join(f"{n} {v:+.2f}" for n, v in correlations.items()) + "."]  # fmt: skip
    return "\n".join(lines) + "\n"


def net_gain(runs: Sequence[Path], deviations: Deviations, settings: VideoSettings) -> tuple[dict[int, float], float]:
    """Per clip, the gain per decision of the runs' video net fitted on the other clips; the pooled rank correlation.

    The net is the first run's, fitted as ``--algo deviation`` fits it
    (:func:`semrl.agent.deviation.left_out_predictions`), margin 0.
    """
    import copy

    from scipy.stats import spearmanr

    from semrl.agent.checkpoint import load_model
    from semrl.agent.deviation import left_out_predictions

    checkpoint = runs[0] / CHECKPOINT_NAME
    model = load_model(checkpoint, PolicyConfig.from_json(config_path(checkpoint).read_text()), "cpu")
    predicted = left_out_predictions(lambda: copy.deepcopy(model.q_net), deviations, deviations.clip,
                                     settings.reference_action)  # fmt: skip
    out = {int(c): gains(predicted[deviations.clip == c], deviations.subset(deviations.clip == c), 0.0)
           for c in np.unique(deviations.clip)}  # fmt: skip
    return out, float(spearmanr(predicted, deviations.advantage).statistic)


def lookup_gain(deviations: Deviations, within_clip: bool) -> dict[int, float]:
    """Per clip, the gain per decision of the best boost per base QP learned from the other clips or segments.

    ``within_clip``: learned from the same clip's other segments (each left out in turn); else from
    the other clips. A boost is taken only where its mean advantage there is above 0
    (:func:`best_actions`).
    """
    out = {}
    for clip in np.unique(deviations.clip):
        held = np.unique(deviations.segment[deviations.clip == clip]) if within_clip else [None]
        total = 0.0
        for segment in held:
            if segment is None:
                train, test = deviations.clip != clip, deviations.clip == clip
            else:
                train = (deviations.clip == clip) & (deviations.segment != segment)
                test = deviations.segment == segment
            choice = best_actions(deviations.subset(train))
            rows = deviations.subset(test)
            taken = np.array([choice.get(int(b)) == a for a, b in zip(rows.action, rows.base_qp, strict=True)], bool)
            total += float(rows.advantage[taken].sum())
        out[int(clip)] = total / _decisions(deviations.subset(deviations.clip == clip))
    return out


def best_actions(deviations: Deviations) -> dict[int, int]:
    """Per base QP, the departure of largest mean measured advantage, where that mean is above 0."""
    out = {}
    for base in np.unique(deviations.base_qp):
        rows = deviations.base_qp == base
        means = {int(a): float(deviations.advantage[rows & (deviations.action == a)].mean())
                 for a in np.unique(deviations.action[rows])}  # fmt: skip
        best = max(means, key=lambda a: means[a])
        if means[best] > 0:
            out[int(base)] = best
    return out


def feature_gain(
    runs: Sequence[Path], deviations: Deviations, settings: VideoSettings, ridge: float = 10.0
) -> tuple[dict[int, float], dict[str, float]]:
    """Across clips, a ridge fit per boost on the observation and the features it leaves out (module docstring).

    Returns:
        Per clip the left-out gain per decision, and each added feature's rank correlation with
        the advantage of boost +8 (pooled).
    """
    from scipy.stats import spearmanr

    from envs.codecs import X265ClipCodec
    from envs.video import YoloDetector, build_segments
    from semrl.agent.deviation import history_mask
    from semrl.agent.video import load_clips

    segments = []
    for run in runs:
        config = PolicyConfig.from_json(config_path(run / CHECKPOINT_NAME).read_text())
        train = config.train
        clips = load_clips([Path(p) for p in config.data["source"]], train["max_frames"])
        found = build_segments(clips, X265ClipCodec(config.preset, qg_size=settings.block),
                               YoloDetector(train["weights"] or "yolov8n.pt"), settings)  # fmt: skip
        segments += found[: len(config.data["segments"])]
    extra = np.zeros((len(deviations), 4))
    k = settings.decision_interval
    for i, (s, base, step) in enumerate(zip(deviations.segment, deviations.base_qp, deviations.step, strict=True)):
        segment, first = segments[int(s)], int(step) * k
        objects, (h, w) = segment.objects[first], segment.shape
        boxes = objects.boxes
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) / (h * w)
        terms = segment.reference_terms[int(base)][max(first - k, 0) : first]
        extra[i] = [np.sqrt(np.median(area)) if len(area) else 0.0, objects.conf.mean() if len(area) else 0.0,
                    terms[:, 0].mean() if len(terms) else 0.0, terms[:, 1].mean() if len(terms) else 0.0]  # fmt: skip
    x = np.c_[deviations.obs[:, history_mask() == 1], extra, np.ones(len(deviations))]
    y = np.clip(deviations.advantage, -3.0, 3.0)  # a few lost objects at coarse QPs would steer a plain fit
    out = {}
    for clip in np.unique(deviations.clip):
        predicted = np.zeros(len(deviations))
        for action in np.unique(deviations.action):
            rows = (deviations.clip != clip) & (deviations.action == action)
            weights = np.linalg.solve(x[rows].T @ x[rows] + ridge * np.eye(x.shape[1]), x[rows].T @ y[rows])
            test = (deviations.clip == clip) & (deviations.action == action)
            predicted[test] = x[test] @ weights
        test = deviations.clip == clip
        out[int(clip)] = gains(predicted[test], deviations.subset(test), 0.0)
    boost8 = deviations.action == settings.action_of(0, max(settings.object_boosts))
    names = ("object size", "object confidence", "previous decoded frames' missing", "their false detections")
    correlations = {n: float(spearmanr(extra[boost8, j], deviations.advantage[boost8]).statistic)
                    for j, n in enumerate(names)}  # fmt: skip
    return out, correlations


def calibration(runs: Sequence[Path]) -> list[dict[str, Any]]:
    """Per training clip, the boost per base QP of largest mean measured advantage over its segments (0 if none pays).

    What adapting to a clip from its own earlier frames would pick (``benchmarks/video_calibrated.py``
    applies it on later frames). Each clip is named, with its frame size (H, W).
    """
    from semrl.agent.video import load_clips

    deviations, sources, settings = pool(runs)
    out: list[dict[str, Any]] = []
    for clip, boosts in best_boosts(deviations, settings).items():
        ((name, frames),) = load_clips([sources[clip]], 1)
        out.append({"clip": name, "size": list(frames[0].shape[:2]), "boost": {str(q): b for q, b in boosts.items()}})
    return out


def best_boosts(deviations: Deviations, settings: VideoSettings) -> dict[int, dict[int, int]]:
    """Per clip and base QP, the boost of largest mean measured advantage over the clip's segments (0 if none pays)."""
    out = {}
    for clip in np.unique(deviations.clip):
        choice = best_actions(deviations.subset(deviations.clip == clip))
        out[int(clip)] = {base: settings.decode(choice[base])[1] if base in choice else 0 for base in settings.base_qps}
    return out


def fit_pooled(runs: Sequence[Path], output: Path, seed: int = 0) -> dict[str, Any]:
    """Fit a video policy, as ``--algo deviation`` does, on the pooled deviations of several runs; write its checkpoint.

    The first run's checkpoint is the template (network, MDP, provenance); the data are all runs'.
    Returns the margin's cross-validation (:func:`semrl.agent.video.fit_deviation_policy`).

    Raises:
        SemrlError: ``output`` already holds a checkpoint.
    """
    import hashlib
    from dataclasses import replace as replace_config

    from semrl.agent.checkpoint import load_model
    from semrl.agent.run import save_model
    from semrl.agent.video import fit_deviation_policy

    if (output / CHECKPOINT_NAME).exists():
        raise SemrlError(f"{output} already holds a checkpoint; choose another folder")
    deviations, sources, settings = pool(runs)
    configs = [PolicyConfig.from_json(config_path(r / CHECKPOINT_NAME).read_text()) for r in runs]
    model = load_model(runs[0] / CHECKPOINT_NAME, configs[0], "cpu")
    fitted = fit_deviation_policy(model, deviations, settings, seed)
    save_model(model, output / CHECKPOINT_NAME)
    names = [n for c in configs for n in c.data["segments"]]
    digest = hashlib.sha256("".join(c.data["digest"] for c in configs).encode()).hexdigest()
    data = {"source": [str(s) for s in sources], "segments": names, "digest": digest, "pooled": [str(r) for r in runs]}
    train = {**configs[0].train, "data": ",".join(str(s) for s in sources)}
    atomic_write(config_path(output / CHECKPOINT_NAME), replace_config(configs[0], data=data, train=train).to_json())
    atomic_write(output / "timing.json", json.dumps(fitted, indent=1, sort_keys=True))
    return fitted


def _decisions(deviations: Deviations) -> int:
    return len({(int(s), int(b), int(k)) for s, b, k in zip(deviations.segment, deviations.base_qp, deviations.step,
                                                             strict=True)})  # fmt: skip


def _actions(settings: VideoSettings) -> list[int]:
    return [a for a in range(settings.n_actions) if a != settings.reference_action]


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", type=Path, nargs="+", help="folders of `semrl train --algo deviation` runs")
    parser.add_argument(
        "--features",
        action="store_true",
        help="also fit on features the observation leaves out (reads the run's segment tables)",
    )
    parser.add_argument("--output", type=Path, help="write report.md into this folder")
    parser.add_argument("--calibration", action="store_true", help="with --output, also write calibration.json")
    parser.add_argument("--fit", type=Path, metavar="DIR",
                        help="fit a video policy on the pooled deviations, its checkpoint into DIR")  # fmt: skip
    args = parser.parse_args(argv)
    try:
        if args.output is not None:
            check_can_create(args.output, "--output")  # before the rollouts are read, not after
        if args.fit is not None:
            fitted = fit_pooled(args.runs, args.fit)
            print(f"wrote {args.fit / CHECKPOINT_NAME}: margin {fitted['deviation']['margin']}", file=sys.stderr)
        text = report(args.runs, features=args.features)
        table = calibration(args.runs) if args.calibration else None
    except SemrlError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(text, end="")
    if args.output is not None:
        atomic_write(args.output / "report.md", text)
        if table is not None:
            atomic_write(args.output / "calibration.json", json.dumps(table, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
