r"""What one departure from the video reference coding is worth: the measured deviations of a ``--algo deviation`` run.

Reads the ``deviations.npz`` that ``semrl train --algo deviation`` keeps beside its checkpoint and
prints, per base QP and per boost, the mean measured advantage (reward units: a frame's mean bits
at the base QP, :mod:`envs.video`), the share of departures that paid, and the gain per decision
of the best single departure (the ceiling of any policy over these boosts, one step from the
reference), next to the run's cross-validated gain (``timing.json``)::

    python benchmarks/video_deviations.py /tmp/vdev/s0 --output benchmarks/results/video-deviation/deviations
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from envs.video import VideoSettings
from semrl.agent.config import PolicyConfig, config_path
from semrl.agent.deviation import Deviations, oracle_gain
from semrl.agent.train import CHECKPOINT_NAME
from semrl.agent.video import DEVIATIONS_NAME
from semrl.errors import SemrlError
from semrl.files import atomic_write


def report(run: Path) -> str:
    """The Markdown report of a run folder."""
    deviations = Deviations.load(run / DEVIATIONS_NAME)
    config = PolicyConfig.from_json(config_path(run / CHECKPOINT_NAME).read_text())
    settings = VideoSettings.from_dict(config.env)
    lines = [f"# Measured deviations of `{run}`", "",
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
    timing = run / "timing.json"
    if timing.exists():
        cv = json.loads(timing.read_text()).get("deviation", {})
        if cv:
            lines += ["", "Cross-validation over clips (`timing.json`): gain per decision on the clip left out, "
                      "by margin: "
                      + ", ".join(f"{m}: {g:.3f}" for m, g in cv["left_out_gain"].items())
                      + f"; the best single departure's {cv['oracle_gain']:.3f}; rank correlation of predicted and "
                      f"measured advantages {cv['spearman']:.2f}; margin chosen {cv['margin']}."]  # fmt: skip
    return "\n".join(lines) + "\n"


def _actions(settings: VideoSettings) -> list[int]:
    return [a for a in range(settings.n_actions) if a != settings.reference_action]


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path, help="the folder of a `semrl train --algo deviation` run")
    parser.add_argument("--output", type=Path, help="write report.md into this folder")
    args = parser.parse_args(argv)
    try:
        if not (args.run / DEVIATIONS_NAME).exists():
            raise SemrlError(f"{args.run} holds no {DEVIATIONS_NAME}: is it a `semrl train --algo deviation` run?")
        text = report(args.run)
    except SemrlError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(text, end="")
    if args.output is not None:
        atomic_write(args.output / "report.md", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
