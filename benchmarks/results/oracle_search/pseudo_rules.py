"""Selection rules for the label-free (``--pseudo``) search, judged after on the labels.

Reads the codings a ``--pseudo`` search keeps beside its choices (``search-*.codings.json``: every
picture coded uniformly and with every map of its path at every base QP, its detections matched
against the net's own finds and against the labels) and, per rule, chooses each picture's map at
each base QP from the pseudo matches alone, then scores the set's pooled mAP50-95 on the labels.
Prints each rule's BD-rate against uniform coding (pchip, :func:`semrl.bench.bdrate.bd_rate`)::

    python benchmarks/results/oracle_search/pseudo_rules.py <cache>/oracle_search/search-<key>.codings.json
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from oracle_search import BENCH_POINTS, Coded, _unpack, set_score

from semrl.bench.bdrate import Curve, bd_rate

Rule = Callable[[Sequence[Coded], dict[int, Coded], Sequence[Any], int], Coded]


def keeping(margin: float = 0.0, finer: bool = False, truth: bool = False) -> Rule:
    """Fewest bits whose score among the pool is at least uniform coding's (at ``base - 5``: ``finer``) + ``margin``.

    ``margin`` is in mAP (0.01: one point of mAP50-95 x 100).
    """

    def rule(path: Sequence[Coded], uniform: dict[int, Coded], pool: Sequence[Any], base: int) -> Coded:
        def score(c: Coded) -> float:
            return float(set_score([*pool, c.truth if truth else c.matches]))

        ref = uniform.get(base - 5, uniform[base]) if finer else uniform[base]
        keep = score(ref) + margin
        for c in sorted((c for c in path if c.bits < uniform[base].bits), key=lambda c: c.bits):
            if score(c) >= keep:
                return c
        return uniform[base]

    return rule


def main(path: str) -> None:
    """Print every rule's curve and BD-rate."""
    data = json.loads(Path(path).read_text())
    uniform = [{int(q): _unpack(c) for q, c in u.items()} for u in data["uniform"]]
    pool = [{int(q): _unpack(c) for q, c in u.items()} for u in data["pool"]]
    recoded = [{int(q): [_unpack(c) for c in cs] for q, cs in r.items()} for r in data["recoded"]]
    rules: dict[str, Rule] = {
        "keep (the search's rule)": keeping(),
        "keep +0.5 point": keeping(0.005),
        "keep +1 point": keeping(0.01),
        "keep +2 points": keeping(0.02),
        "keep the finer base's": keeping(finer=True),
        "keep the finer base's +1 point": keeping(0.01, finer=True),
        "labels, in-sample (not a method)": keeping(truth=True),
    }

    def curve(chosen: dict[int, list[Coded]]) -> Curve:
        rates = [sum(c.bits for c in chosen[q]) for q in BENCH_POINTS]
        return Curve.of(rates, [100 * set_score([c.truth for c in chosen[q]]) for q in BENCH_POINTS])

    anchor = curve({q: [u[q] for u in uniform] for q in BENCH_POINTS})
    print("uniform:", " ".join(f"{q}:{a:.1f}" for q, a in zip(BENCH_POINTS, anchor.quality, strict=True)))
    for name, rule in rules.items():
        chosen: dict[int, list[Coded]] = {}
        for q in BENCH_POINTS:
            truth = "labels" in name
            others = [(p[q].truth if truth else p[q].matches) for p in pool]
            chosen[q] = [rule(r[q], u, others, q) for r, u in zip(recoded, uniform, strict=True)]
        c = curve(chosen)
        ratio = " ".join(
            f"{q}:{a:.1f}/{r / ar:.2f}x"
            for q, a, r, ar in zip(BENCH_POINTS, c.quality, c.rates, anchor.rates, strict=True)
        )
        bd = bd_rate(anchor, c)
        print(f"{name}: BD-rate {bd.pchip if bd.pchip is None else round(bd.pchip, 1)}  [{ratio}]")


if __name__ == "__main__":
    main(sys.argv[1])
