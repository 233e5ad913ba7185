"""`tfl bench` runs `bench/suite.py`: results go to an output folder as JSON, the committed
reference in `bench/results/` changes only on request, and regressions on the same machine warn.

Only one test runs a benchmark (a quick run of the step profile and of the start-up time,
shared by a module fixture); the others drive `suite.main` with the benchmark processes
replaced by a fake that writes a result file.
"""

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tfl.errors import TflError

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

import generation  # noqa: E402  (bench/ is a folder of scripts, not a package)
import suite  # noqa: E402
import training  # noqa: E402


def listing(folder):
    """Every file under `folder` with its size and modification time."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """`tfl bench --only startup profile --quick --out DIR --json`, run once for this module."""
    out = tmp_path_factory.mktemp("bench-out")
    reference_before = listing(suite.REFERENCE)
    result = subprocess.run(
        [sys.executable, "-m", "tfl", "bench", "--only", "startup", "profile", "--quick",
         "--out", str(out), "--json"], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return SimpleNamespace(out=out, stdout=result.stdout, stderr=result.stderr,
                           reference_before=reference_before,
                           reference_after=listing(suite.REFERENCE))


def test_a_quick_run_writes_json_into_the_output_folder_only(quick_run):
    assert quick_run.reference_after == quick_run.reference_before  # bench/results untouched
    written = {p.name for p in quick_run.out.iterdir()}
    assert {"startup.json", "profile.json", "profile.png", "summary.json",
            "summary.md"} - written == set()
    assert "history.json" not in written  # quick runs are not recorded
    startup = json.loads((quick_run.out / "startup.json").read_text())["results"]
    assert startup["tfl --help"]["repeats"] == 3  # --quick
    assert set(startup["tfl --help"]) == {"median", "min", "max", "repeats"}
    # Progress: a line per benchmark started and finished, with its elapsed seconds.
    for name in ("startup", "profile"):
        assert f"== {name}: started" in quick_run.stderr
        assert f"== {name}: finished after " in quick_run.stderr


def test_json_prints_the_summary_and_nothing_else(quick_run):
    summary = json.loads(quick_run.stdout)  # fails if anything else reached stdout
    assert summary["out"] == str(quick_run.out.resolve())
    assert summary["quick"] is True and summary["reference_updated"] is False
    assert summary["measured_now"] == ["startup", "profile"]
    assert summary["warnings"] == []  # quick runs are not compared
    assert summary["matmul_gflops"]["profile"] > 0 and summary["matmul_gflops"]["startup"] is None
    figures = {f["name"]: f for f in summary["figures"]}
    assert set(figures) == {"tfl --help start", "training step share in matrix products"}
    assert figures["tfl --help start"]["unit"] == "s" and figures["tfl --help start"]["value"] > 0
    assert all(set(f) == {"benchmark", "name", "value", "unit", "higher_is_better",
                          "matmul_gflops"} for f in summary["figures"])
    written = json.loads((quick_run.out / "summary.json").read_text())
    assert written == {k: v for k, v in summary.items()
                       if k not in ("out", "quick", "reference_updated")}


def test_step_profile_accounts_for_the_model_flops(quick_run):
    # The kernel profile reads the FLOPs of every matrix product from XLA's optimized HLO; their
    # sum must be the closed-form count that MFU is computed with (bench/training.py).
    profile = json.loads((quick_run.out / "profile.json").read_text())
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
    assert (quick_run.out / "profile.png").stat().st_size > 0
    summary = json.loads((quick_run.out / "summary.json").read_text())
    share = next(f for f in summary["figures"]
                 if f["name"] == "training step share in matrix products")
    assert share["value"] == profile["matmul_share"] and share["unit"] == "fraction"


@pytest.fixture
def fake_benchmarks(tmp_path, monkeypatch):
    """`suite.main` with a temporary reference folder and benchmarks that write, instead of
    measuring, a start-up time of `seconds["value"]` (and a plot, for the generation one)."""
    reference = tmp_path / "reference"
    reference.mkdir()
    monkeypatch.setattr(suite, "REFERENCE", reference)
    seconds = {"value": 1.0}

    def run_benchmark(name, out, quick, stdout):
        print(f"{name} table", file=stdout or sys.stdout)  # as a benchmark prints its table
        result = {"benchmark": name, "results": {
            "tfl --help": {"median": seconds["value"], "min": 0, "max": 0, "repeats": 1}}}
        (out / f"{name}.json").write_text(json.dumps(result))
        return True

    monkeypatch.setattr(suite, "run_benchmark", run_benchmark)
    return SimpleNamespace(reference=reference, seconds=seconds)


def test_out_and_update_reference_write_where_they_say(fake_benchmarks, tmp_path, capsys):
    out, reference = tmp_path / "out", fake_benchmarks.reference
    assert suite.main(["--only", "startup", "--out", str(out)]) == 0
    assert listing(reference) == {}  # without --update-reference, the reference is untouched
    assert {p.name for p in out.iterdir()} == {"startup.json", "history.json", "summary.json",
                                               "summary.md"}  # no plot: no panel to draw
    assert "| tfl --help start | 1 | s |  |" in capsys.readouterr().out

    fake_benchmarks.seconds["value"] = 1.5  # 50% slower: both histories warn, each named
    assert suite.main(["--only", "startup", "--out", str(out), "--update-reference",
                       "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [w.split(", in ")[1] for w in printed["warnings"]] == [
        f"the output folder's history ({out.resolve() / 'history.json'})"]
    assert printed["reference_updated"] is True
    assert {p.name for p in reference.iterdir()} == {"startup.json", "history.json",
                                                     "summary.json", "summary.md"}
    assert len(json.loads((out / "history.json").read_text())) == 2
    assert len(json.loads((reference / "history.json").read_text())) == 1

    fake_benchmarks.seconds["value"] = 3.0
    suite.main(["--only", "startup", "--out", str(out), "--json"])
    warnings = json.loads(capsys.readouterr().out)["warnings"]
    assert [w.split(", in ")[1] for w in warnings] == [
        f"the output folder's history ({out.resolve() / 'history.json'})",
        f"the reference history ({reference.resolve() / 'history.json'})"]
    assert len(json.loads((reference / "history.json").read_text())) == 1


def test_the_results_variable_still_names_the_output_folder(fake_benchmarks, tmp_path,
                                                            monkeypatch):
    monkeypatch.setenv("TFL_BENCH_RESULTS", str(tmp_path / "from-env"))
    assert suite.main(["--only", "startup", "--quick"]) == 0
    assert {p.name for p in (tmp_path / "from-env").iterdir()} == {
        "startup.json", "summary.json", "summary.md"}


def test_a_quick_run_cannot_update_the_reference(tmp_path):
    with pytest.raises(TflError, match="drop --quick"):
        suite.main(["--quick", "--update-reference", "--out", str(tmp_path)])


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


def synthetic_results():
    """One result per benchmark, shaped as the scripts write them, with every case they run."""
    median = {"median": 1.0, "min": 1.0, "max": 1.0, "repeats": 1}
    return {
        "training": {"matmul_gflops": 100.0, "ratios": dict.fromkeys(training.PAIRS, 1.0),
                     "results": {case: {"tokens_per_s": median, "peak_rss_mb": 1.0,
                                        **({"mfu": 0.5} if case != "pipeline" else {})}
                                 for case in training.CASES}},
        "generation": {"matmul_gflops": 100.0, "results": [
            {"case": name, "new_tokens": new_tokens, "fast_tokens_per_s": median}
            for name, _, _, new_tokens in generation.CASES]},
        "compression": {"results": {architecture: {"final_val_loss": 1.5, "rows": [
            {"variant": variant, "ms_per_token": 1.0}
            for variant in ("dense-float32", "dense-dynamic-int8", "pruned-dynamic-int8",
                            "clustered-dynamic-int8", "dense-int8")]}
            for architecture in ("transformer", "lstm")}},
        "profile": {"matmul_share": 0.5},
        "startup": {"results": {"tfl --help": median}},
    }


def test_every_summary_figure_has_its_own_name():
    # The regression check matches figures by name: two figures under one name would be
    # compared with each other's history.
    results = synthetic_results()
    assert set(results) == set(suite.BENCHMARKS)
    names = [row[0] for row in suite.figures(results)]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    assert len(names) == len(suite.summarize(results, [], [])["figures"])
