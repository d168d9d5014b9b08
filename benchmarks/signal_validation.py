"""How well a training signal predicts the task: rank correlation of its predicted change against live encodes.

For the last ``--pictures`` of the task's train split (the pictures a fitted signal must hold
aside; today's fast mode is fitted to nothing: its tables measure each picture, so any picture
serves), each picture is coded by the patched x265 (all-intra, the tables' preset) under QP maps
of two kinds:

- random mixed maps: every CTU a random action of the policy's action set, around a random base QP;
- policy maps: the shipped policy's own decisions at several base QPs.

For each map a signal predicts the change of the picture's fidelity loss from uniform coding at
the same base QP (fast mode: the tables' per-CTU terms, interpolated as the environment does,
summed over the CTUs), for each of :data:`SIGNALS` (the policy's own reward, and the object-level
terms of :mod:`envs.reward` alone and with false detections or the background's price, and the
same object terms graded against the picture's labels rather than the net's own output on the
uncoded picture: :data:`LABEL_SIGNALS`, from tables of the same uniform codings), and the
live encode measures the change of the picture's task score: the
task net on the reconstruction against the picture's labels, mAP50-95 for detection (box) and
segmentation (mask), the probability of the labelled class for classification (top-1 is 0 or 1
per picture). A signal that tracks the task ranks the maps as the live scores do: the figure is
Spearman's rank correlation between the predicted loss increase and the live score drop, over
all maps of a kind, pooled over the pictures and, as a mean of each picture's own, within a
picture (and the same for bits, predicted against exact). Pictures without labelled objects have
no score and are left out of the task figures.

The ``live`` figures separate the two ways a signal can fail: each map's terms are also measured
on its own reconstruction (the extractor on the map's actual decoded picture, not the tables'
interpolation of uniform coding), and ranked against the live score drop
(``spearman_live_terms``: what a perfect predictor of those terms, such as a surrogate fitted to
live encodes, would reach) and against the tables' prediction of them
(``spearman_predicted_vs_live_terms``: how well the tables predict their own terms under mixed
maps).

The live score of one picture is itself noisy (one object more or less at one IoU threshold moves
a picture's mAP by several points), which bounds what any signal can reach. The ``retest`` figure
measures that bound: each map is coded a second time with every CTU's QP moved by -1, 0 or +1 at
random, and the rank correlation between the two live score drops is what a second live
measurement of nearly the same map achieves.

    python benchmarks/signal_validation.py --task detection --pictures 16 --random-maps 8

Writes ``benchmarks/results/signal_validation_<task>.json``.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from semrl.codec import QP_MAX
from semrl.errors import InvalidInputError
from semrl.files import atomic_write, check_can_create, json_text
from semrl.semantics import TASKS

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
POLICY_BASES = (22, 27, 32, 37, 42, 47)
SIGNALS: dict[str, dict[str, float]] = {
    "objects": {"semantic_weight": 0.0, "pixel_weight": 0.0, "object_weight": 1.0},
    "objects+false": {"semantic_weight": 0.0, "pixel_weight": 0.0, "object_weight": 1.0, "false_weight": 0.5},
    "objects+mse": {"semantic_weight": 0.0, "pixel_weight": 0.0, "object_weight": 1.0, "mse_share": 0.25},
    "labels": {"semantic_weight": 0.0, "pixel_weight": 0.0, "object_weight": 1.0},
    "labels+false": {"semantic_weight": 0.0, "pixel_weight": 0.0, "object_weight": 1.0, "false_weight": 0.5},
}
"""Reward variants validated beside the policy's own (``trained``): RewardConfig fields, and ``mse_share``."""

LABEL_SIGNALS = frozenset({"labels", "labels+false"})
"""Signals whose object terms are graded against the picture's labels, not the net's output on the uncoded picture."""


def label_output(task: str, label: Any, shape: tuple[int, int], classes: int) -> Any:
    """A picture's labels as a :class:`~semrl.semantics.maps.TaskOutput` (confidence 1; a classifier's: one-hot)."""
    from semrl.semantics.maps import TaskOutput

    if task == "classification":
        probs = np.zeros(classes, np.float32)
        probs[int(label)] = 1.0
        return TaskOutput(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), probs)
    from semrl.fidelity.labels import read_yolo_labels

    labelled = read_yolo_labels(label, shape)
    return TaskOutput(labelled.boxes, labelled.conf, labelled.cls)


class LiveScorer:
    """The task net's score of a reconstruction against a picture's labels."""

    def __init__(self, task: str, weights: str) -> None:
        from semrl.semantics.yolo import YoloNet

        self.task = task
        self.net = YoloNet(weights, device="cpu")

    def score(self, frame: NDArray[np.uint8], label: Any) -> float:
        """mAP50-95 (detection, segmentation) or the labelled class's probability (classification)."""
        if self.task == "classification":
            return float(self.net.classify([frame], color="rgb")[0][int(label)])
        from semrl.fidelity.detection import mean_average_precision
        from semrl.fidelity.labels import read_yolo_labels
        from semrl.fidelity.segmentation import MASK_SCORE
        from semrl.semantics.yolo import InferenceSettings

        masks = self.task == "segmentation"
        # the labels are read on the prediction's mask grid, where mask mAP compares them
        pred = self.net.detect([frame], MASK_SCORE if masks else InferenceSettings(), color="rgb")[0]
        target = read_yolo_labels(label, frame.shape[:2], masks=masks, letterbox=pred.letterbox if masks else None)
        return float(mean_average_precision([pred], [target], "mask" if masks else "box").map50_95)


class LiveEncodes:
    """One picture coded with QP maps by the real codec and scored live (each map once).

    Besides bits and the live score, each map's fidelity terms (:func:`envs.reward.fidelity_terms`)
    are measured on its actual reconstruction with the policy's own extractor: what a signal's
    terms are under that map, where the tables can only interpolate uniform coding.
    """

    def __init__(
        self, codec: Any, scorer: LiveScorer, picture: Any, label: Any, ctu_shape: tuple[int, int],
        extractor: Any, reference: Any, labelled: Any,
    ) -> None:  # fmt: skip
        self.codec, self.scorer, self.picture, self.label, self.ctu_shape = codec, scorer, picture, label, ctu_shape
        self.extractor, self.reference, self.labelled = extractor, reference, labelled
        self._done: dict[tuple[int, bytes], tuple[int, float, NDArray[np.uint8]]] = {}
        self._terms: dict[tuple[int, bytes], tuple[Any, Any]] = {}

    def measure(self, qp_map: NDArray[np.int64], base: int) -> tuple[int, float]:
        """Bits and live score of the picture coded with per-CTU QPs ``qp_map`` (raster order)."""
        key = (base, qp_map.tobytes())
        if key not in self._done:
            offsets = (qp_map - base).reshape(self.ctu_shape).astype(np.int32)
            coded = self.codec.code(self.picture.frame, base, offsets)
            self._done[key] = (int(coded.bits), self.scorer.score(coded.recon, self.label), coded.recon)
        bits, score, _ = self._done[key]
        return bits, score

    def terms(self, qp_map: NDArray[np.int64], base: int) -> tuple[Any, Any]:
        """Per-CTU terms under ``qp_map``, graded against the net's reference, then against the labels.

        Only the maps whose terms are compared pay for the extractor (the retest's nudged maps do not).
        """
        from envs.reward import fidelity_terms

        key = (base, qp_map.tobytes())
        if key not in self._terms:
            self.measure(qp_map, base)
            recon = self._done[key][2]
            decoded = self.extractor.extract([recon], color="rgb")[0]
            frame, ref = self.picture.frame, self.reference
            self._terms[key] = (
                fidelity_terms(frame, recon, ref.values, decoded.values, ref.output, decoded.output),
                fidelity_terms(frame, recon, ref.values, decoded.values, self.labelled, decoded.output),
            )
        return self._terms[key]


def held_aside(task: str, data: str, count: int, names: dict[int, str]) -> list[tuple[Any, Any]]:
    """The last ``count`` pictures of the train split with their labels (label file or class id)."""
    from envs.tables import make_picture
    from semrl.semantics.frames import read_image

    out: list[tuple[Any, Any]] = []
    if task == "classification":
        from semrl.fidelity.labels import classification_images

        listed = classification_images(data, names, split="train")[-count:]
        for path, class_id in listed:
            out.append((make_picture(path.name, np.ascontiguousarray(read_image(path)[:, :, ::-1])), class_id))
        return out
    from semrl.fidelity.labels import dataset_images

    for image in dataset_images(data, "train")[-count:]:
        out.append(
            (make_picture(image.image.name, np.ascontiguousarray(read_image(image.image)[:, :, ::-1])), image.label)
        )
    return out


def spearman(a: list[float], b: list[float]) -> float:
    """Spearman's rank correlation over the pairs with no NaN (NaN for fewer than three, or a constant side)."""
    from scipy.stats import spearmanr

    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(spearmanr(x, y).statistic)


def within_pictures(rows: list[dict[str, Any]], predicted: str, live: str) -> float:
    """Mean over pictures of the rank correlation among one picture's maps (pictures where it is defined)."""
    values = []
    for name in dict.fromkeys(r["picture"] for r in rows):
        mine = [r for r in rows if r["picture"] == name]
        value = spearman([r[predicted] for r in mine], [r[live] for r in mine])
        if not np.isnan(value):
            values.append(value)
    return float(np.mean(values)) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    """Measure and write the correlations; returns 0 (bad input raises, for :func:`semrl.cli.run_script`)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--task", default="detection", choices=TASKS)
    parser.add_argument("--policy", help="checkpoint whose settings and maps to use (default: the shipped one)")
    parser.add_argument("--pictures", type=int, default=12, help="held-aside train pictures (default 12)")
    parser.add_argument("--random-maps", type=int, default=8, help="random mixed maps per picture (default 8)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    check_can_create(args.output.parent if args.output else RESULTS, "--output")  # before the run, not after it
    return _measure(args)  # a semrl error is run_script's to report


def _measure(args: argparse.Namespace) -> int:
    """Measure and write the correlations for the parsed ``args``; returns 0."""
    import torch

    from envs.reward import fidelity_loss, interpolated, task_to_mse_ratio
    from envs.tables import DEFAULT_TABLE_QPS, RealExtractorFactory, X265CodecFactory, build_tables, compute_table
    from semrl.agent import resolve_policy
    from semrl.agent.checkpoint import TrainedPolicy
    from semrl.agent.config import DEFAULT_DATA
    from semrl.semantics.config import DEFAULT_WEIGHTS, MapConfig

    torch.set_num_threads(1)
    start = time.perf_counter()
    policy = resolve_policy(args.policy or args.task, task=args.task)
    assert isinstance(policy, TrainedPolicy)
    config, settings = policy.config, policy.settings
    if config.train.get("object_weighting", "picture") != "picture":
        # The tables and live terms below weigh every picture's objects alike; a class-weighted
        # policy learned other weights, so its figures would describe a signal it never saw.
        raise InvalidInputError(
            f"{args.policy} was trained with class object weighting; signal_validation grades with the "
            "default (picture) weighting only: validate a policy trained without --object-weighting class"
        )
    data = DEFAULT_DATA[args.task]
    map_config = MapConfig.from_json(config.map_config)
    scorer = LiveScorer(args.task, map_config.weights or DEFAULT_WEIGHTS[args.task])
    pictures = held_aside(args.task, data, args.pictures, scorer.net.names)
    codec_factory = X265CodecFactory(config.preset)
    codec = codec_factory()
    tables = build_tables(
        [p for p, _ in pictures], codec_factory=codec_factory,
        extractor_factory=RealExtractorFactory(config.map_config), qps=DEFAULT_TABLE_QPS, progress=False,
        codec=codec, extractor=policy.extractor,
    )  # fmt: skip
    rng = np.random.default_rng(args.seed)
    offsets = np.asarray(settings.offsets)
    lo, hi = settings.base_qps
    rewards = {"trained": settings.reward}
    for name, fields in SIGNALS.items():
        weights = {k: v for k, v in fields.items() if k != "mse_share"}
        reward = replace(settings.reward, mse_weight=0.0, **weights)
        share = fields.get("mse_share", 0.0)
        rewards[name] = replace(reward, mse_weight=share * task_to_mse_ratio(tables, lo, reward))
    rows: list[dict[str, Any]] = []
    for (picture, label), table in zip(pictures, tables, strict=True):
        reference = policy.extractor.extract([picture.frame], color="rgb")[0]
        labelled = label_output(args.task, label, picture.frame.shape[:2], len(scorer.net.names))
        live = LiveEncodes(codec, scorer, picture, label, table.ctu_shape, policy.extractor, reference, labelled)
        label_table = compute_table(picture, codec, policy.extractor, DEFAULT_TABLE_QPS, labels=labelled)
        losses = {
            name: interpolated(label_table if name in LABEL_SIGNALS else table, settings.qp_min, reward)[1]
            for name, reward in rewards.items()
        }
        bits_q = interpolated(table, settings.qp_min, settings.reward)[0]
        n = table.ctu_shape[0] * table.ctu_shape[1]
        maps: list[tuple[str, int, NDArray[np.int64]]] = []
        for _ in range(args.random_maps):
            base = int(rng.integers(lo, hi + 1))
            actions = rng.integers(0, len(offsets), n)
            maps.append(("random", base, np.clip(base + offsets[actions], settings.qp_min, QP_MAX)))
        for base in POLICY_BASES:
            maps.append(("policy", base, (base + policy.offsets_for(picture.frame, base)).reshape(-1).astype(np.int64)))
        cells = np.arange(n)
        for kind, base, qp_map in maps:
            uniform = np.full(n, base)
            bits, score = live.measure(qp_map, base)
            ref_bits, ref_score = live.measure(uniform, base)
            terms, ref_terms = live.terms(qp_map, base), live.terms(uniform, base)
            nudged = np.clip(qp_map + rng.integers(-1, 2, n), settings.qp_min, QP_MAX)
            row: dict[str, Any] = {
                "picture": picture.name, "kind": kind, "base_qp": base,
                "live_score_drop": ref_score - score, "retest_score_drop": ref_score - live.measure(nudged, base)[1],
                "predicted_bits": float(bits_q[qp_map, cells].sum()), "live_bits": int(bits),
                "uniform_live_bits": int(ref_bits),
            }  # fmt: skip
            for name, loss_q in losses.items():
                row[f"predicted_{name}"] = float(loss_q[qp_map, cells].sum() - loss_q[uniform, cells].sum())
                reward = rewards[name]
                graded = int(name in LABEL_SIGNALS)
                row[f"live_{name}"] = float(
                    fidelity_loss(terms[graded], reward).sum() - fidelity_loss(ref_terms[graded], reward).sum()
                )
            rows.append(row)
    results: dict[str, Any] = {}
    for kind in ("random", "policy", "all"):
        sel = [r for r in rows if kind in ("all", r["kind"])]
        live_drop = [r["live_score_drop"] for r in sel]
        results[kind] = {
            "maps": len(sel),
            "spearman_task": {name: spearman([r[f"predicted_{name}"] for r in sel], live_drop) for name in rewards},
            "spearman_task_within_picture": {
                name: within_pictures(sel, f"predicted_{name}", "live_score_drop") for name in rewards
            },
            "spearman_live_terms": {name: spearman([r[f"live_{name}"] for r in sel], live_drop) for name in rewards},
            "spearman_predicted_vs_live_terms": {
                name: spearman([r[f"predicted_{name}"] for r in sel], [r[f"live_{name}"] for r in sel])
                for name in rewards
            },
            "spearman_retest": spearman([r["retest_score_drop"] for r in sel], live_drop),
            "spearman_bits": spearman([r["predicted_bits"] for r in sel], [float(r["live_bits"]) for r in sel]),
            "spearman_bits_within_picture": within_pictures(sel, "predicted_bits", "live_bits"),
        }
    seconds = time.perf_counter() - start
    description = (
        f"task {args.task}, policy {policy.fingerprint}, {len(pictures)} held-aside pictures (the last of "
        f"{data}'s train split), {args.random_maps} random maps and {len(POLICY_BASES)} policy maps each, "
        f"seed {args.seed}; live score: "
        + ("the labelled class's probability" if args.task == "classification" else "mAP50-95 against the labels")
        + f"; {seconds:.0f} s on {platform.machine()}, {datetime.now(timezone.utc).date()}"
    )
    target = args.output or RESULTS / f"signal_validation_{args.task}.json"
    atomic_write(target, json_text({"description": description, "results": results, "maps": rows}, indent=1))
    print(description)
    for kind, r in results.items():
        task, inner = r["spearman_task"], r["spearman_task_within_picture"]
        signals = ", ".join(f"{name} {task[name]:+.3f} ({inner[name]:+.3f})" for name in rewards)
        print(
            f"{kind:7s} maps {r['maps']:4d}  rank correlation with the live score drop (within a picture): {signals}; "
            f"retest {r['spearman_retest']:+.3f}; bits {r['spearman_bits']:+.3f}"
        )
        measured, agree = r["spearman_live_terms"], r["spearman_predicted_vs_live_terms"]
        own = ", ".join(f"{name} {measured[name]:+.3f} (tables vs live {agree[name]:+.3f})" for name in rewards)
        print(f"{'':7s} the same terms measured on each map's own reconstruction: {own}")
    return 0


if __name__ == "__main__":
    from semrl.cli import run_script

    sys.exit(run_script(main))
