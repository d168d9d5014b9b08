"""From operating points to the headline figures, and the files a benchmark writes.

Headline figures (``docs/design.md``): BD-rate on the task metric x 100 (pchip, akima beside)
against A1 and A2 after the monotone fit, with the dropped points and the range; bits at equal
accuracy (95 % and 90 % of the 4:2:0 reference's accuracy) and their saving against A1 and A3;
a bootstrap interval over images (for video over clips and over segments of frames) for both.
Video adds the BD-rates of each clip alone, and for clips with real labels the person mAP50-95
against them (quality ``labels``) beside the pseudo ground truth. Detection, segmentation and
video also get quality ``objects`` (the headline with each class weighted by its objects) with an
interval of its own.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from semrl.bench.bdrate import BDRate, Curve, bd_rate, interval, percent_saving, rate_at_quality
from semrl.bench.runner import PointResult, map_forked, rate_of
from semrl.bench.tasknet import PooledScores, label_metric, task_metric
from semrl.errors import InvalidInputError
from semrl.fidelity.detection import PooledMatches
from semrl.files import atomic_write

LEVELS = (0.95, 0.90)
"""Shares of the 4:2:0 reference accuracy at which bits at equal accuracy are read."""

ANCHORS = {"A1": "uniform", "A2": "x265-aq"}


def point_quality(task: str, p: PointResult, quality: str) -> float:
    """A point's quality: ``task``, ``task50``, ``objects``, ``psnr`` or ``labels``.

    ``task`` is the headline metric x 100, ``task50`` the secondary x 100, ``objects`` the
    headline with each class weighted by its objects x 100 (:meth:`PooledScores.objects`),
    ``psnr`` in dB, and ``labels`` the person mAP50-95 x 100 against clips' real labels, over the
    labelled frames.
    """
    if quality == "objects":
        return 100.0 * PooledScores(task, p.scores).objects()
    if quality == "psnr":
        return float(np.mean(p.psnr))
    if quality == "labels":
        labelled = [v for v in p.label_scores if v is not None]
        return 100.0 * label_metric(labelled)[0] if labelled else float("nan")
    main, secondary = task_metric(task, p.scores)
    return 100.0 * (main if quality == "task" else secondary)


def point_rate(task: str, p: PointResult) -> float:
    """A point's rate (bpp, or kbit/s for video)."""
    return rate_of(p.frame_bits, p.frame_units, task == "video")


def curves(task: str, points: Sequence[PointResult], quality: str) -> dict[str, Curve]:
    """One curve per method."""
    by: dict[str, list[PointResult]] = {}
    for p in points:
        by.setdefault(p.method, []).append(p)
    return {
        m: Curve.of([point_rate(task, p) for p in ps], [point_quality(task, p, quality) for p in ps],
                    [p.label for p in ps])
        for m, ps in by.items()
    }  # fmt: skip


class TaskCurves:
    """Every method's task-metric curve over any draw of the frames: a bootstrap resample, or one clip.

    Each point's scores are pooled once (:class:`~semrl.bench.tasknet.PooledScores`); a draw
    weights every frame by how often it is drawn, so hundreds of resamples cost no copies.

    Args:
        task: Task name.
        points: All operating points of all methods (the same frames in each).
        quality: ``task`` (the headline metric) or ``objects`` (:func:`point_quality`).
    """

    def __init__(self, task: str, points: Sequence[PointResult], quality: str = "task") -> None:
        if quality not in ("task", "objects"):
            raise ValueError(f"quality must be 'task' or 'objects', not {quality!r}")
        self.task = task
        self.quality = quality
        self.rois = roi_methods(points)
        self.points = list(points)
        self.frames = len(self.points[0].frame_bits)
        self._pooled = [PooledScores(task, p.scores) for p in self.points]
        self._bits = [np.asarray(p.frame_bits, np.float64) for p in self.points]
        self._units = [np.asarray(p.frame_units, np.float64) for p in self.points]

    def draw(self, frames: NDArray[np.int64]) -> NDArray[np.int64]:
        """The times each frame is drawn, from the drawn frames' indices (repeats allowed)."""
        return np.bincount(frames, minlength=self.frames).astype(np.int64)

    def __call__(self, draws: NDArray[np.int64]) -> dict[str, Curve]:
        """The curves of the frames drawn (``draws``: per frame, times drawn)."""
        by: dict[str, tuple[list[float], list[float], list[str]]] = {}
        for p, pooled, bits, units in zip(self.points, self._pooled, self._bits, self._units, strict=True):
            rates, qualities, labels = by.setdefault(p.method, ([], [], []))
            rates.append(rate_of(bits, units, self.task == "video", draws))
            value = pooled.metric(draws)[0] if self.quality == "task" else pooled.objects(draws)
            qualities.append(100.0 * value)
            labels.append(p.label)
        return {m: Curve.of(*v) for m, v in by.items()}


def roi_methods(points: Sequence[PointResult]) -> frozenset[str]:
    """The methods of family A3 (ROI settings), whatever their names."""
    return frozenset(p.method for p in points if p.family == "A3")


SPARSE_CLASS = 10
"""A class with this many ground-truth objects or fewer is called sparse in a report."""


def ground_truth_objects(pooled: PooledMatches, names: Mapping[int, str]) -> dict[str, int]:
    """Ground-truth objects per class over the pooled frames, most first (the classes a class mean averages).

    Args:
        pooled: The reference frames' scores, pooled (:attr:`PooledScores.matches`).
        names: Class names by id (an id without a name is written as the number).
    """
    counts = pooled.class_counts(None).astype(np.int64)
    order = np.argsort(-counts, kind="stable")
    return {names.get(int(pooled.classes[i]), str(int(pooled.classes[i]))): int(counts[i]) for i in order}


def sparse_classes_line(objects: Mapping[str, int]) -> str:
    """One sentence on how much of the class mean rests on classes with few ground-truth objects."""
    total, classes = sum(objects.values()), len(objects)
    if not classes:
        return "Ground truth: no objects."
    sparse = {name: n for name, n in objects.items() if n <= SPARSE_CLASS}
    listed = ", ".join(f"{name} {n}" for name, n in objects.items())
    if not sparse:
        return f"Ground truth: {total} objects in {classes} classes ({listed})."
    return (
        f"Ground truth: {total} objects in {classes} classes ({listed}); classes with {SPARSE_CLASS} objects or "
        f"fewer: {len(sparse)} of {classes}, {100 * sum(sparse.values()) / total:.1f} % of the objects and "
        f"{100 * len(sparse) / classes:.0f} % of the class mean's weight (`objects` weighs them by their objects)."
    )


def _bd_table(
    cs: dict[str, Curve],
    roi: str | None = None,
    rois: frozenset[str] = frozenset(),
    *,
    every_roi: bool = False,
    baseline: str | None = None,
) -> dict[str, dict[str, BDRate]]:
    """BD-rates of every method against A1 and A2, and of the methods not in A1, A2 or ``rois`` against ``roi``.

    With ``every_roi`` those methods are also measured against each other ROI setting of ``rois``
    (the best, ``roi``, first): a rule fixed in advance on one setting reads its figure from the
    report, whichever setting is best on the data. With ``baseline`` (one of those methods, e.g.
    the shipped policy) the others are also measured against it.
    """
    out: dict[str, dict[str, BDRate]] = {}
    for anchor in ANCHORS.values():
        if anchor not in cs:
            continue
        out[anchor] = {m: bd_rate(cs[anchor], c) for m, c in cs.items() if m != anchor}
    targets = [roi] if roi is not None else []
    if every_roi:
        targets += sorted(r for r in rois if r != roi)
    others = {m: c for m, c in cs.items() if m not in ANCHORS.values() and m not in rois}
    if baseline is not None:
        targets.append(baseline)
    for target in targets:
        rows = {m: c for m, c in others.items() if m != target}
        if target in cs and rows:
            out[target] = {m: bd_rate(cs[target], c) for m, c in rows.items()}
    return out


def best_roi(bd: dict[str, dict[str, BDRate]], rois: frozenset[str]) -> str | None:
    """The ROI setting (of ``rois``) with the lowest comparable pchip BD-rate against A1, stable fits first."""
    against = bd.get(ANCHORS["A1"], {})
    fits = [(r.pchip, m) for m, r in against.items() if m in rois and r.pchip is not None]
    # An unstable fit (pchip and akima disagree) must not win on a lucky number.
    stable = [(v, m) for v, m in fits if "unstable" not in against[m].flags]
    return min(stable or fits)[1] if fits else None


def equal_accuracy(cs: dict[str, Curve], reference: float, roi: str | None) -> list[dict[str, Any]]:
    """Rate each method needs for 95 % and 90 % of the reference accuracy, and savings."""
    out = []
    for level in LEVELS:
        target = level * reference
        rates = {m: rate_at_quality(c, target) for m, c in cs.items()}
        for m, r in rates.items():
            out.append({
                "level": level, "quality": target, "method": m, "rate": r,
                "vs_A1_percent": percent_saving(r, rates.get(ANCHORS["A1"])) if m != ANCHORS["A1"] else None,
                "vs_A3_percent": percent_saving(r, rates.get(roi)) if roi and m != roi else None,
            })  # fmt: skip
    return out


def analyse(
    task: str,
    points: Sequence[PointResult],
    reference: tuple[float, float],
    original: tuple[float, float],
    bootstrap: int = 0,
    seed: int = 0,
    units: dict[str, list[NDArray[np.int64]]] | None = None,
    label_reference: tuple[float, float] | None = None,
    items: dict[str, NDArray[np.int64]] | None = None,
    workers: int = 1,
    objects_reference: float | None = None,
    ground_truth: Mapping[str, int] | None = None,
    baseline: str | None = None,
) -> dict[str, Any]:
    """Compute every figure of a task run.

    Args:
        task: Task name.
        points: All operating points of all methods.
        reference: (headline, secondary) metric of the 4:2:0 reference in 0..1.
        original: The same on the original files.
        bootstrap: Resamples of frames for intervals (0: none).
        seed: Bootstrap seed.
        units: Bootstrap units by name, each a list of groups of frame indices drawn together
            (e.g. ``clip`` and ``segment``); None: every frame (image) alone. The first is the
            headline ``bootstrap``; all are under ``bootstrap_by``.
        label_reference: (person mAP50-95, mAP50) of the 4:2:0 reference against real labels,
            when some frames have them.
        items: Frame indices of each item by name (video: BD-rates of each clip alone).
        workers: Processes the bootstrap's resamples are computed in.
        objects_reference: The 4:2:0 reference's ``objects`` metric in 0..1; with it the bits at
            equal accuracy are also read on ``objects`` (``equal_accuracy_objects``, and in
            ``bootstrap_objects``), where rare classes do not cap a curve's top.
        ground_truth: Ground-truth objects per class (:func:`ground_truth_objects`), reported as
            ``ground_truth_objects``.
        baseline: A method that is not an anchor (a policy, e.g. the shipped one) every other such
            method is also measured against, on every quality and in every bootstrap: paired, so
            a candidate's difference from it comes with its own interval, where two intervals
            against A1 would overlap.

    Returns:
        The ``results`` object of the JSON report.

    Raises:
        InvalidInputError: ``baseline`` is not among the methods' points, or is an anchor or ROI setting.
    """
    qualities = ["task", "psnr"] if task == "classification" else ["task", "task50", "objects", "psnr"]
    if any(v is not None for p in points for v in p.label_scores):
        qualities.append("labels")
    cs = {q: curves(task, points, q) for q in qualities}
    rois = roi_methods(points)
    if baseline is not None and (baseline not in cs["task"] or baseline in rois or baseline in ANCHORS.values()):
        policies = sorted(set(cs["task"]) - rois - set(ANCHORS.values()))
        raise InvalidInputError(f"baseline {baseline!r} is not one of the policies measured: {', '.join(policies)}")
    roi = best_roi(_bd_table(cs["task"]), rois)
    bd = {q: _bd_table(cs[q], roi, rois, every_roi=True, baseline=baseline) for q in qualities}
    results: dict[str, Any] = {
        "reference_420": {"task": 100 * reference[0], "task50": 100 * reference[1]},
        "original": {"task": 100 * original[0], "task50": 100 * original[1]},
        "best_roi": roi,
        **({"baseline": baseline} if baseline is not None else {}),
        "points": [point_row(task, p) for p in points],
        "bd_rate": [
            {"quality": q, "anchor": a, "method": m, **r.to_dict()}
            for q in qualities for a, rows in bd[q].items() for m, r in rows.items()
        ],
        "equal_accuracy": equal_accuracy(cs["task"], 100 * reference[0], roi),
    }  # fmt: skip
    if ground_truth is not None:
        results["ground_truth_objects"] = dict(ground_truth)
    if label_reference is not None:
        results["reference_420"]["labels"] = 100 * label_reference[0]
    if objects_reference is not None and "objects" in qualities:
        results["reference_420"]["objects"] = 100 * objects_reference
        results["equal_accuracy_objects"] = equal_accuracy(cs["objects"], 100 * objects_reference, roi)
    if items is not None and len(items) > 1:
        per_item: dict[str, dict[str, dict[str, Curve]]] = {}
        for key, quality in (("per_item", "task"), ("per_item_objects", "objects")):
            if quality not in qualities:
                continue
            drawn = TaskCurves(task, points, quality)
            per_item[quality] = {name: drawn(drawn.draw(idx)) for name, idx in items.items()}
            results[key] = {
                name: {m: r.to_dict() for m, r in _bd_table(cs_item).get("uniform", {}).items()}
                for name, cs_item in per_item[quality].items()
            }
        results["item_points"] = item_points(per_item)
    for row in results["bd_rate"]:
        if row["quality"] == "task50" and row["comparable"]:
            main = bd["task"].get(row["anchor"], {}).get(row["method"])
            if main is not None and main.pchip is not None and (main.pchip < 0) != (row["pchip"] < 0):
                row["flags"].append("sign-differs-from-mAP50-95")
    _check_signs(results)
    if bootstrap > 0:
        frames = len(points[0].frame_bits)
        by_unit = units or {"frame" if task == "video" else "image": [np.array([i]) for i in range(frames)]}
        results["bootstrap_by"] = {
            unit: bootstrap_intervals(
                task, points, reference[0], bootstrap, seed, roi, groups, unit, workers, baseline=baseline
            )
            for unit, groups in by_unit.items()
        }
        results["bootstrap"] = next(iter(results["bootstrap_by"].values()))
        if "objects" in qualities:
            unit, groups = next(iter(by_unit.items()))
            results["bootstrap_objects"] = bootstrap_intervals(
                task,
                points,
                objects_reference,
                bootstrap,
                seed,
                roi,
                groups,
                unit,
                workers,
                quality="objects",
                baseline=baseline,
            )
    return results


def item_points(per_item: Mapping[str, Mapping[str, Mapping[str, Curve]]]) -> list[dict[str, Any]]:
    """Each item's own curve points, one row per item, method and point (the per-clip curves).

    Args:
        per_item: By quality (``task``, ``objects``), by item name, each method's curve over the
            item's frames alone.
    """
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for quality, by_item in per_item.items():
        for name, by_method in by_item.items():
            for method, curve in by_method.items():
                for label, rate, value in zip(curve.labels, curve.rates, curve.quality, strict=True):
                    row = rows.setdefault((name, method, label), {"item": name, "method": method, "point": label})
                    row["rate"] = rate
                    row[quality] = value
    return list(rows.values())


def _check_signs(results: dict[str, Any]) -> None:
    """Flag BD-rates whose sign disagrees with the saving at equal accuracy (design: they must agree)."""
    for quality, key in (("task", "equal_accuracy"), ("objects", "equal_accuracy_objects")):
        eq = {(r["method"], r["level"]): r for r in results.get(key, [])}
        for row in results["bd_rate"]:
            if row["quality"] != quality or row["anchor"] != ANCHORS["A1"] or row["pchip"] is None:
                continue
            for level in LEVELS:
                e = eq.get((row["method"], level))
                if e and e["vs_A1_percent"] is not None and (e["vs_A1_percent"] < 0) != (row["pchip"] < 0):
                    row["flags"].append(f"sign-differs-at-{int(level * 100)}%")


def bootstrap_intervals(
    task: str,
    points: Sequence[PointResult],
    reference: float | None,
    n: int,
    seed: int,
    roi: str | None = None,
    groups: Sequence[NDArray[np.int64]] | None = None,
    unit: str | None = None,
    workers: int = 1,
    quality: str = "task",
    baseline: str | None = None,
) -> dict[str, Any]:
    """Resample units (frames, images, clips or segments) with replacement; recompute BD-rates (pchip) and savings.

    Each resample draws the same units for every method and point (a paired bootstrap); the
    reference accuracy of the levels is kept at its full-set value, and policies are compared
    with the full set's best ROI setting ``roi``.

    Args:
        task: Task name.
        points: All operating points of all methods.
        reference: The 4:2:0 reference's metric of ``quality`` in 0..1 (None: no bits at equal
            accuracy).
        n: Resamples.
        seed: Random seed.
        roi: The best ROI setting on the full set.
        groups: The units, each the frame indices drawn together; None: every frame alone.
        unit: The units' name for the report.
        workers: Processes the resamples are computed in (the figures do not depend on it: every
            resample is drawn here, from ``seed``).
        quality: ``task`` or ``objects`` (:class:`TaskCurves`); the savings at equal accuracy are
            read on it, at the shares of ``reference``.
        baseline: A policy the others are also measured against in each resample (:func:`analyse`).
    """
    frames = len(points[0].frame_bits)
    units = list(groups) if groups is not None else [np.array([i]) for i in range(frames)]
    rng = np.random.default_rng(seed)
    draws = [np.concatenate([units[k] for k in rng.integers(0, len(units), len(units))]) for _ in range(n)]
    shares = [list(c) for c in np.array_split(np.arange(n), max(1, min(workers, n))) if len(c)]
    drawn = TaskCurves(task, points, quality)  # pooled once; forked workers inherit it
    jobs = [(drawn, reference, roi, [draws[i] for i in share], baseline) for share in shares]
    bd_values: dict[str, list[float | None]] = {}
    eq_values: dict[str, list[float | None]] = {}
    for figures in map_forked(_resample_figures, jobs, workers):
        for bd, eq in figures:
            for key, value in bd.items():
                bd_values.setdefault(key, []).append(value)
            for key, value in eq.items():
                eq_values.setdefault(key, []).append(value)
    return {
        "resamples": n, "seed": seed, "unit": unit or ("frame" if task == "video" else "image"), "units": len(units),
        "quality": quality,
        "bd_rate_pchip": {k: interval(v) for k, v in bd_values.items()},
        "equal_accuracy_vs_A1": {k: interval(v) for k, v in eq_values.items() if any(x is not None for x in v)},
    }  # fmt: skip


def _resample_figures(
    drawn: TaskCurves,
    reference: float | None,
    roi: str | None,
    draws: Sequence[NDArray[np.int64]],
    baseline: str | None = None,
) -> list[tuple[dict[str, float | None], dict[str, float | None]]]:
    """Per resample (its frames drawn), the pchip BD-rates and the savings at equal accuracy against A1 (None: none)."""
    out = []
    for idx in draws:
        cs = drawn(drawn.draw(idx))
        table = _bd_table(cs, roi, drawn.rois, baseline=baseline)
        bd = {f"{m} vs {anchor}": r.pchip for anchor, rows in table.items() for m, r in rows.items()}
        eq = {
            f"{row['method']} at {int(row['level'] * 100)}%": row["vs_A1_percent"]
            for row in (equal_accuracy(cs, 100 * reference, None) if reference is not None else [])
        }
        out.append((bd, eq))
    return out


def point_row(task: str, p: PointResult) -> dict[str, Any]:
    """One CSV/JSON row per point."""
    pooled = PooledScores(task, p.scores)
    main, secondary = pooled.metric()
    return {
        "method": p.method, "family": p.family, "point": p.label,
        "rate": point_rate(task, p), "bits": int(np.sum(p.frame_bits)), "frames": len(p.frame_bits),
        "task": 100 * main, "task50": 100 * secondary, "objects": 100 * pooled.objects(),
        "psnr": float(np.mean(p.psnr)), "psnr_y": float(np.mean(p.psnr_y)), "ssim_y": float(np.mean(p.ssim_y)),
        "mean_qp": p.mean_qp, "encode_s": p.encode_s, "encode_ms_per_frame": 1000 * p.encode_s / len(p.frame_bits),
    }  # fmt: skip


# ---- files -------------------------------------------------------------------------------------


def write_json(path: Path, name: str, description: dict[str, Any], results: dict[str, Any]) -> None:
    """``{"name", "description", "results"}``, atomically."""
    text = json.dumps({"name": name, "description": description, "results": results}, indent=2, default=_json)
    atomic_write(path, (text + "\n").encode())


def _json(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")


def write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """One row per point, atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    atomic_write(path, buf.getvalue().encode())


def fmt(v: float | None, digits: int = 1, signed: bool = True) -> str:
    """A number for a table, or an em dash for none."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    return f"{v:+.{digits}f}" if signed else f"{v:.{digits}f}"


def markdown(task: str, metric: str, unit: str, results: dict[str, Any], description: dict[str, Any]) -> str:
    """The task's Markdown report: reference, BD-rates, equal accuracy, points."""
    lines = [
        f"# BD-rate: {task}", "",
        f"Metric: {metric} x 100; rate in {unit}. Reference for \"no loss\": the 4:2:0 round-tripped picture "
        f"({fmt(results['reference_420']['task'], 2, False)}); on the original files "
        f"{fmt(results['original']['task'], 2, False)}."
        + (" Quality `objects`: the same metric with each class's AP weighted by its ground-truth objects "
           "(every object counts alike; a class seen a few times no longer moves it by a whole class's share)."
           if any(r["quality"] == "objects" for r in results["bd_rate"]) else ""), "",
        *([sparse_classes_line(results["ground_truth_objects"]), ""] if "ground_truth_objects" in results else []),
        f"Command: `{description['command']}`", "",
        f"Data: {description['data']} ({description['items']} items, {description['frames']} frames); "
        f"x265 {description['x265']} (patch {description['x265_patch_hash']}), preset {description['preset']}"
        + "".join(f", --{k} {v}" for k, v in description.get("x265_options", {}).items()) + "; "
        f"weights {description['weights']}; run time {description['run_seconds']:.0f} s on {description['machine']}.",
        "", f"Best ROI setting (lowest pchip BD-rate vs A1 among fits not flagged unstable): {results['best_roi']}", "",
        *([f"Baseline: every other policy is also measured against `{results['baseline']}` (anchor column; "
           "the bootstrap draws the same units for both, so its interval is that of the difference).", ""]
          if "baseline" in results else []),
        "## BD-rate (%; negative = fewer bits for the same quality)", "",
        "| quality | anchor | method | pchip | akima | quality range | overlap | dropped (anchor / test) | flags |",
        "|---|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for r in results["bd_rate"]:
        rng = r["quality_range"]
        value = fmt(r["pchip"]) if r["comparable"] else f"not comparable: {r['reason']}"
        lines.append(
            f"| {r['quality']} | {r['anchor']} | {r['method']} | {value} | {fmt(r['akima'])} | "
            f"{f'{rng[0]:.2f}-{rng[1]:.2f}' if rng else '—'} | {fmt(r['overlap'], 2, False)} | "
            f"{', '.join(r['dropped_anchor']) or '—'} / {', '.join(r['dropped_test']) or '—'} | "
            f"{', '.join(r['flags']) or '—'} |"
        )
    for key, on in (("equal_accuracy", ""), ("equal_accuracy_objects", " on `objects`")):
        if key not in results:
            continue
        lines += [
            "",
            f"## Bits at equal accuracy{on}",
            "",
            f"| level | quality | method | rate ({unit}) | vs A1 % | vs best ROI % |",
            "|---|---|---|---|---|---|",
        ]
        for r in results[key]:
            lines.append(
                f"| {int(r['level'] * 100)}% | {r['quality']:.2f} | {r['method']} | "
                f"{fmt(r['rate'], 4, False) if r['rate'] is not None else 'not reached'} | "
                f"{fmt(r['vs_A1_percent'])} | {fmt(r['vs_A3_percent'])} |"
            )
    boots = list(results.get("bootstrap_by", {"": results["bootstrap"]} if "bootstrap" in results else {}).values())
    for b in [*boots, *([results["bootstrap_objects"]] if "bootstrap_objects" in results else [])]:
        on = " on `objects`" if b.get("quality") == "objects" else ""
        lines += [
            "",
            f"## Bootstrap{on} ({b['resamples']} resamples of {b.get('units', '')} {b['unit']}s, 95 % interval)",
            "",
            "| comparison | median | interval | valid resamples |",
            "|---|---|---|---|",
        ]
        for k, v in {**b["bd_rate_pchip"], **b["equal_accuracy_vs_A1"]}.items():
            bounds = f"[{fmt(v['low'])}, {fmt(v['high'])}]"
            lines.append(f"| {k} | {fmt(v['median'])} | {bounds} | {v['valid']}/{v['total']} |")
    for key, title in (("per_item", "the task metric"), ("per_item_objects", "`objects`")):
        if key not in results:
            continue
        methods = sorted({m for rows in results[key].values() for m in rows})
        lines += [
            "",
            f"## Each item alone: BD-rate vs A1 on {title} (pchip, %)",
            "",
            "| item | " + " | ".join(methods) + " |",
            "|---|" + "---|" * len(methods),
        ]
        for name, rows in results[key].items():
            cells = [fmt(rows[m]["pchip"]) if m in rows else "—" for m in methods]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Points",
        "",
        f"| method | point | rate ({unit}) | {metric} | secondary | objects | PSNR RGB | PSNR-Y | SSIM-Y | mean QP | "
        "encode ms/frame |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in results["points"]:
        lines.append(
            f"| {p['method']} | {p['point']} | {p['rate']:.4f} | {p['task']:.2f} | {p['task50']:.2f} | "
            f"{fmt(p.get('objects'), 2, False)} | "
            f"{p['psnr']:.2f} | {p['psnr_y']:.2f} | {p['ssim_y']:.4f} | {p['mean_qp']:.1f} | "
            f"{p['encode_ms_per_frame']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def plot(path: Path, task: str, metric: str, unit: str, results: dict[str, Any]) -> None:
    """Rate-accuracy and rate-PSNR curves (matplotlib, Agg), written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    by: dict[str, list[dict[str, Any]]] = {}
    for p in results["points"]:
        by.setdefault(p["method"], []).append(p)
    for m, ps in by.items():
        ps = sorted(ps, key=lambda p: p["rate"])
        style = "-" if m in ANCHORS.values() or m == results["best_roi"] else ":"
        for ax, key in zip(axes, ("task", "psnr"), strict=True):
            ax.plot([p["rate"] for p in ps], [p[key] for p in ps], style, marker="o", ms=3, label=m)
    axes[0].axhline(results["reference_420"]["task"], color="grey", lw=0.8, ls="--", label="4:2:0 reference")
    for ax, ylabel in zip(axes, (f"{metric} x 100", "PSNR RGB (dB)"), strict=True):
        ax.set_xscale("log")
        ax.set_xlabel(unit)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{task}: rate-accuracy")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write(path, buf.getvalue())


def _work(desc: dict[str, Any]) -> str:
    work = desc.get("work")
    if not work:
        return ""
    parts = []
    if work["encode_cached"]:
        parts.append(f"{work['encode_cached']}/{work['encoded'] + work['encode_cached']} encodes")
    if work.get("policy_cached"):
        parts.append(f"{work['policy_cached']}/{work.get('policy_run', 0) + work['policy_cached']} policy maps")
    return f" ({', '.join(parts)} cached)" if parts else ""


def summary(results_root: Path, command: str) -> str:
    """A Markdown table of the BD-rate of A2 and the best A3 against A1 per task, from the JSONs."""
    lines = [
        "| task | metric | A2 x265-aq vs A1: pchip (akima) | A3 best ROI vs A1: pchip (akima) | "
        "quality range (A2 / A3) | flags | run time |",
        "|---|---|---|---|---|---|---|",
    ]
    for path in sorted(results_root.glob("*/bdrate.json")):
        data = json.loads(path.read_text())
        res, desc = data["results"], data["description"]
        rows = {(r["method"]): r for r in res["bd_rate"] if r["quality"] == "task" and r["anchor"] == ANCHORS["A1"]}
        cells, ranges, flags = [], [], []
        for m in (ANCHORS["A2"], res.get("best_roi")):
            r = rows.get(m) if m else None
            if r is None:
                cells.append("—")
                ranges.append("—")
                continue
            cells.append(f"{fmt(r['pchip'])} ({fmt(r['akima'])})" if r["comparable"] else f"n/c: {r['reason']}")
            rng = r["quality_range"]
            ranges.append(f"{rng[0]:.1f}-{rng[1]:.1f}" if rng else "—")
            dropped = [f"dropped {m}: {', '.join(r['dropped_test'])}"] if r["dropped_test"] else []
            dropped += (
                [f"dropped A1: {', '.join(r['dropped_anchor'])}"] if r["dropped_anchor"] and m == ANCHORS["A2"] else []
            )
            flags += [f"{m}: {f}" for f in r["flags"]] + dropped
        lines.append(
            f"| {path.parent.name} | {desc['metric']} | {cells[0]} | {cells[1]} ({res.get('best_roi')}) | "
            f"{' / '.join(ranges)} | {'; '.join(flags) or '—'} | {desc['run_seconds'] / 60:.1f} min{_work(desc)} |"
        )
    return "\n".join(
        ["# BD-rate against A1 (uniform QP), on the task metric", "", f"Reproduce: `{command}`", "", *lines, ""]
    )
