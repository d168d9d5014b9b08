"""Selection rules for the label-free (``--pseudo``) search, judged after on the labels.

Reads the codings a ``--pseudo`` search keeps beside its choices (``search-*.codings.json``: every
picture coded uniformly and with every map of its path at every base QP, its detections matched
against the net's own finds and against the labels) and, per rule, chooses each picture's map at
each base QP from the pseudo matches alone, then scores the set's pooled mAP50-95 on the labels.
Prints each rule's BD-rate against uniform coding (pchip, :func:`semrl.bench.bdrate.bd_rate`)::

    python benchmarks/results/oracle_search/pseudo_rules.py <cache>/oracle_search/search-<key>.codings.json
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from oracle_search import BENCH_POINTS, Coded, choose_alone, read_codings, set_score

from semrl.bench.bdrate import Curve, bd_rate


@dataclass(frozen=True)
class Rule:
    """Fewest bits whose score among the pool is at least uniform coding's (at ``base - 5``: ``finer``) + ``margin``.

    Attributes:
        margin: In mAP (0.01: one point of mAP50-95 x 100).
        finer: Keep the score of uniform coding at the next finer base QP.
        truth: Choose on the labels instead of the net's own finds (in-sample: not a method).
    """

    margin: float = 0.0
    finer: bool = False
    truth: bool = False

    def records(self, coded: Coded) -> Coded:
        """The coding with the matches this rule chooses on (its bits and ``truth`` as they were)."""
        return replace(coded, matches=coded.truth) if self.truth else coded

    def choose(self, path: Sequence[Coded], uniform: dict[int, Coded], pool: Sequence[Coded], base: int) -> Coded:
        """The picture's map at ``base`` (:func:`oracle_search.choose_alone` with this rule's score to keep)."""
        others = [self.records(p).matches for p in pool]
        reference = uniform.get(base - 5, uniform[base]) if self.finer else uniform[base]
        keep = set_score([*others, self.records(reference).matches]) + self.margin
        return choose_alone([self.records(c) for c in path], self.records(uniform[base]), others, keep)


def main(path: str) -> None:
    """Print every rule's curve and BD-rate."""
    codings = read_codings(Path(path))
    uniform, pool, recoded = codings["uniform"], codings["pool"], codings["recoded"]
    rules = {
        "keep (the search's rule)": Rule(),
        "keep +0.5 point": Rule(0.005),
        "keep +1 point": Rule(0.01),
        "keep +2 points": Rule(0.02),
        "keep the finer base's": Rule(finer=True),
        "keep the finer base's +1 point": Rule(0.01, finer=True),
        "labels, in-sample (not a method)": Rule(truth=True),
    }

    def curve(chosen: dict[int, list[Coded]]) -> Curve:
        rates = [sum(c.bits for c in chosen[q]) for q in BENCH_POINTS]
        return Curve.of(rates, [100 * set_score([c.truth for c in chosen[q]]) for q in BENCH_POINTS])

    anchor = curve({q: [u[q] for u in uniform] for q in BENCH_POINTS})
    print("uniform:", " ".join(f"{q}:{a:.1f}" for q, a in zip(BENCH_POINTS, anchor.quality, strict=True)))
    for name, rule in rules.items():
        chosen: dict[int, list[Coded]] = {}
        for q in BENCH_POINTS:
            pooled = [p[q] for p in pool]
            chosen[q] = [rule.choose(r[q], u, pooled, q) for r, u in zip(recoded, uniform, strict=True)]
        c = curve(chosen)
        ratio = " ".join(
            f"{q}:{a:.1f}/{r / ar:.2f}x"
            for q, a, r, ar in zip(BENCH_POINTS, c.quality, c.rates, anchor.rates, strict=True)
        )
        bd = bd_rate(anchor, c)
        print(f"{name}: BD-rate {bd.pchip if bd.pchip is None else round(bd.pchip, 1)}  [{ratio}]")


if __name__ == "__main__":
    main(sys.argv[1])
