"""``semrl --version``: semrl's version, the x265 build in use and the detector weights found."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import semrl
from semrl.errors import SemrlError


def version_report() -> str:
    """The text ``semrl --version`` prints; never raises for a missing part, it says so."""
    lines = [f"semrl {semrl.__version__}"]
    try:
        from semrl.codec import load_library

        build = load_library().build
        lines.append(
            f"x265 {build.version} (API build {build.build_number}, semrl patches {build.patch_hash})\n"
            f"  library: {build.library_path}"
        )
    except SemrlError as error:
        lines.append(f"x265: not available: {error}")
    lines.extend(_weights_lines())
    return "\n".join(lines)


def _weights_lines() -> list[str]:
    from pathlib import Path

    from semrl import assets
    from semrl.semantics.config import DEFAULT_WEIGHTS

    lines = []
    for task, name in DEFAULT_WEIGHTS.items():
        try:
            resolved = Path(assets.resolve_weights(name))
            where = str(resolved) if resolved.is_file() else "not found locally (Ultralytics downloads it by name)"
        except SemrlError as error:
            where = f"not found: {error}"
        lines.append(f"{task} weights {name}: {where}")
    return lines


class VersionAction(argparse.Action):
    """An argparse action that prints :func:`version_report` and exits."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:  # fmt: skip
        """Prints the report and exits with status 0."""
        print(version_report())
        sys.exit(0)
