"""`tfl bench` runs the suite; the suite warns about regressions on the same machine."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

import suite  # noqa: E402  (bench/ is a folder of scripts, not a package)


def test_tfl_bench_runs_and_writes_a_summary(tmp_path):
    env = {**os.environ, "TFL_BENCH_RESULTS": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "tfl", "bench", "--only", "startup",
                             "--quick"], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    startup = json.loads((tmp_path / "startup.json").read_text())["results"]
    assert startup["tfl --help"]["repeats"] == 3  # --quick
    assert set(startup["tfl --help"]) == {"median", "min", "max", "repeats"}
    assert "| tfl --help start |" in (tmp_path / "summary.md").read_text()
    assert not (tmp_path / "history.json").exists()  # quick runs are not recorded


@pytest.mark.parametrize("now, warned", [(0.85, True), (0.95, False), (1.2, False)])
def test_a_throughput_more_than_ten_percent_down_warns(now, warned):
    history = [{"machine": "m", "figures": [["training tokens/s", 1000.0, 100.0]]}]
    # Same matmul peak in both runs: the raw ratio decides.
    rows = [("training tokens/s", 1000.0 * now, "tokens/s", True, 100.0)]
    assert bool(suite.check_regressions(rows, history, "m")) == warned


def test_throughputs_are_compared_per_unit_of_matmul_peak():
    history = [{"machine": "m", "figures": [["training tokens/s", 1000.0, 100.0]]}]
    # 20% fewer tokens/s on a machine measured 25% slower today: not a regression in tfl.
    rows = [("training tokens/s", 800.0, "tokens/s", True, 75.0)]
    assert suite.check_regressions(rows, history, "m") == []
    assert suite.check_regressions(rows, history, "another machine") == []
    # A latency (lower is better) 20% up warns.
    history = [{"machine": "m", "figures": [["tfl --help start", 1.0, None]]}]
    assert suite.check_regressions([("tfl --help start", 1.2, "s", False, None)], history, "m")


def test_step_profile_accounts_for_the_model_flops(tmp_path):
    # The kernel profile reads the FLOPs of every matrix product from XLA's optimized HLO; their
    # sum must be the closed-form count that MFU is computed with (bench/training.py).
    env = {**os.environ, "TFL_BENCH_RESULTS": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "tfl", "bench", "--only", "profile",
                             "--quick"], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    profile = json.loads((tmp_path / "profile.json").read_text())
    groups = {g["group"]: g for g in profile["groups"]}
    hlo_gflop = sum(g["gflop_per_step"] or 0 for g in groups.values())
    assert hlo_gflop == pytest.approx(profile["model_gflop_per_step"], rel=1e-9)
    # Forward feed-forward: 4 layers x 2 products x 2 x (12 x 64) x 128 x 512 FLOPs.
    assert groups["matmul: feed-forward"]["gflop_per_step"] == pytest.approx(
        4 * 2 * 2 * 768 * 128 * 512 / 1e9)
    assert groups["matmul: feed-forward (backward)"]["gflop_per_step"] == pytest.approx(
        2 * groups["matmul: feed-forward"]["gflop_per_step"])
    assert sum(g["share"] for g in groups.values()) == pytest.approx(1.0)
    assert 0 < profile["matmul_share"] < 1
    assert "optimizer: AdamW, clipping, gradient sums" in groups
    assert (tmp_path / "profile.png").stat().st_size > 0
    assert "| training step share in matrix products |" in (tmp_path / "summary.md").read_text()


def test_every_summary_figure_has_its_own_name():
    # The regression check matches figures by name: two figures under one name would be
    # compared with each other's history.
    recorded = {name: json.loads((BENCH / "results" / f"{name}.json").read_text())
                for name in suite.BENCHMARKS if (BENCH / "results" / f"{name}.json").is_file()}
    assert "generation" in recorded and "training" in recorded
    names = [row[0] for row in suite.figures(recorded)]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
