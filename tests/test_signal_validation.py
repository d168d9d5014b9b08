"""The training-signal validation runs on real pictures with the real x265 and detector."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from benchmark_scripts import load_benchmark
from shared_assets import require_assets


@pytest.fixture(scope="module")
def validation() -> ModuleType:
    return load_benchmark("signal_validation")


def test_rank_correlation(validation: ModuleType) -> None:
    assert validation.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert validation.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert np.isnan(validation.spearman([1, 2], [1, 2])) and np.isnan(validation.spearman([1, 1, 1], [1, 2, 3]))
    assert validation.spearman([1, 2, 3, np.nan], [1, 2, 3, 9]) == pytest.approx(1.0)  # a picture without objects
    rows = [
        {"picture": p, "x": x, "y": y}
        for p, x, y in [("a", 1, 1), ("a", 2, 2), ("a", 3, 3), ("b", 1, 3), ("b", 2, 2), ("b", 3, 1)]
    ]
    assert validation.within_pictures(rows, "x", "y") == pytest.approx(0.0)  # +1 and -1


@pytest.mark.x265
@pytest.mark.weights
@pytest.mark.slow
def test_validation_runs_on_real_pictures(validation: ModuleType, tmp_path: Path) -> None:
    require_assets("models/yolov8n.pt", "datasets/coco-det")
    out = tmp_path / "signal.json"
    assert validation.main(["--task", "detection", "--pictures", "1", "--random-maps", "3", "--output", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["results"]["random"]["maps"] == 3 and report["results"]["policy"]["maps"] == 6
    assert report["results"]["all"]["spearman_bits"] > 0.9  # the tables' bits track the exact bits
    assert all(row["live_bits"] > 0 for row in report["maps"])
    signals = {"trained", *validation.SIGNALS}
    assert set(report["results"]["all"]["spearman_task"]) == signals
    assert "spearman_retest" in report["results"]["all"]
    assert set(report["results"]["all"]["spearman_live_terms"]) == signals
    for row in report["maps"]:
        assert {f"predicted_{name}" for name in signals} <= set(row) and "retest_score_drop" in row
        assert {f"live_{name}" for name in signals} <= set(row)
        assert all(np.isfinite(row[f"live_{name}"]) for name in signals)
    # Random maps move the live terms (each is the change from the same picture coded uniformly).
    assert any(row["live_objects+mse"] != 0.0 for row in report["maps"] if row["kind"] == "random")


@pytest.mark.weights
def test_class_weighted_policy_is_refused(
    validation: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    require_assets("models/yolov8n.pt")
    from semrl.agent.checkpoint import shipped_policy
    from semrl.agent.config import config_path

    shipped = shipped_policy("detection")
    config = json.loads(config_path(shipped).read_text())
    config["train"]["object_weighting"] = "class"
    (tmp_path / "ckpt.zip").write_bytes(shipped.read_bytes())
    config_path(tmp_path / "ckpt.zip").write_text(json.dumps(config))
    out = tmp_path / "signal.json"
    args = ["--task", "detection", "--policy", str(tmp_path / "ckpt.zip"), "--output", str(out)]
    from semrl.cli import run_script

    assert run_script(lambda: validation.main(args)) == 2
    assert "class object weighting" in capsys.readouterr().err and not out.exists()
