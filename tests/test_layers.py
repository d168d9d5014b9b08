"""The layers point one way: each package imports only packages of lower layers (lazy imports included)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"semrl.errors"}),
    frozenset({"semrl.files", "semrl.paths"}),
    frozenset({"semrl", "semrl.samples", "semrl.codec", "semrl.assets", "semrl.cluster"}),
    frozenset({"semrl.media", "semrl.qp_maps", "semrl.ratecontrol"}),
    frozenset({"semrl.semantics"}),
    frozenset({"semrl.fidelity"}),
    frozenset({"semrl.policy"}),
    frozenset({"envs"}),
    frozenset({"semrl.agent"}),
    frozenset({"semrl.pipeline", "semrl.bench", "semrl.smoke", "semrl.evaluate"}),
    frozenset({"semrl.cli"}),
    frozenset({"semrl.__main__"}),
)
"""From the bottom up; the README's "Development" section describes the same order."""

RANK = {unit: rank for rank, layer in enumerate(LAYERS) for unit in layer}
HEAVY = ("torch", "gymnasium", "ultralytics", "stable_baselines3")


def _unit(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] == "envs":
        return "envs"
    if parts[0] != "semrl":
        return None
    return "semrl" if len(parts) == 1 else f"semrl.{parts[1]}"


def _imports() -> list[tuple[str, str, str]]:
    """(file, importing unit, imported module) for every import in semrl/ and envs/."""
    out = []
    for file in sorted([*ROOT.glob("semrl/**/*.py"), *ROOT.glob("envs/*.py")]):
        module = ".".join(file.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        unit = _unit(module)
        assert unit is not None
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.Import):
                out += [(str(file.relative_to(ROOT)), unit, alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                out.append((str(file.relative_to(ROOT)), unit, node.module))
    return out


def test_every_package_has_a_layer() -> None:
    units = {unit for _, unit, _ in _imports()}
    assert units <= set(RANK), f"packages without a layer: {sorted(units - set(RANK))}"


def test_imports_point_down() -> None:
    upward = [
        f"{file}: {unit} imports {module}"
        for file, unit, module in _imports()
        if (target := _unit(module)) is not None and target != unit and RANK[target] >= RANK[unit]
    ]
    assert not upward, "\n".join(upward)


@pytest.mark.parametrize("unit", ["semrl.codec", "semrl.media", "semrl.policy"])
def test_low_layers_name_no_heavy_package(unit: str) -> None:
    found = [f"{file}: {module}" for file, u, module in _imports() if u == unit and module.split(".")[0] in HEAVY]
    assert not found, "\n".join(found)


def test_importing_the_codec_and_policy_layers_loads_no_heavy_package() -> None:
    code = f"import sys, semrl.codec, semrl.media, semrl.policy; print([m for m in {HEAVY!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert result.stdout.strip() == "[]"


def test_only_the_benchmark_imports_the_benchmark() -> None:
    found = [
        f"{file}: {module}"
        for file, unit, module in _imports()
        if unit != "semrl.bench" and _unit(module) == "semrl.bench"
    ]
    assert not found, "\n".join(found)
