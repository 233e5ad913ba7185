"""The benchmark suite: `tfl bench` runs this.

    python bench/suite.py                          # everything (long: tens of minutes)
    python bench/suite.py --only training startup  # some of it
    python bench/suite.py --quick                  # a smoke run: few steps, nothing recorded
    python bench/suite.py --update-reference       # also refresh the committed bench/results/
    python bench/suite.py --json                   # the summary as one JSON object on stdout

Runs each benchmark script in its own process (startup, training, generation, compression, and
profile: the training step's kernel time by what the kernels do), then gathers their JSON into
`summary.json`, `summary.md` and `summary.png`. Everything goes to the output folder: `--out`,
else `$TFL_BENCH_RESULTS`, else `saved_models/bench/` (ignored by git; `saved_models/bench/quick/`
for `--quick`). Every throughput sits next to the fp32 matmul throughput measured in the same
benchmark run. Progress (a line per benchmark started and finished, with elapsed seconds) goes
to stderr; stdout carries the summary (Markdown, or one JSON object with `--json`).

The committed reference results in `bench/results/` change only with `--update-reference`: the
run's JSON and plots are copied there, the summary there is rewritten and the run is appended to
`bench/results/history.json`.

Regressions: each full run's figures are appended to `history.json` in the output folder. A
figure more than 10% worse than the last one recorded *on the same machine*, in the output
folder's history or in the reference history, prints a warning that says which history.
Throughputs are compared as fractions of that run's matmul peak, so a machine that is busier or
slower today does not look like a regression in tfl. Quick runs are neither recorded nor
compared (their figures come from a few steps).
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from common import BENCH, REFERENCE, default_out, machine_info, progress


@dataclass(frozen=True)
class Benchmark:
    """A benchmark script in `bench/`, its arguments for a quick run, and the plots it writes."""

    script: str
    quick_args: tuple | None  # None: skipped with --quick
    plots: tuple = ()  # file patterns of the figures it writes beside its JSON


BENCHMARKS = {
    "startup": Benchmark("startup.py", ("--repeats", "3")),
    "training": Benchmark("training.py", ("--steps", "10", "--repeats", "2", "--cases",
                                          "transformer", "pipeline", "--allow-offline-corpus")),
    "generation": Benchmark("generation.py", ("--repeats", "1"), plots=("generation.png",)),
    "compression": Benchmark("compression.py", None,
                             plots=("compression-*-size-vs-perplexity.png",)),
    "profile": Benchmark("step_profile.py", ("--steps", "3", "--repeats", "1",
                                             "--allow-offline-corpus"), plots=("profile.png",)),
}
REGRESSION_TOLERANCE = 0.10
SUMMARY_FILES = ("summary.json", "summary.md", "summary.png")


def machine_id():
    """A name for this machine: host, core count and CPU model."""
    model = ""
    try:
        with open("/proc/cpuinfo") as info:
            model = next((line.split(":", 1)[1].strip() for line in info
                          if line.startswith("model name")), "")
    except OSError:
        pass
    return f"{platform.node()}|{os.cpu_count()} cores|{model}"


def figures(results):
    """(name, value, unit, higher_is_better, matmul_gflops) for every headline figure."""
    rows = []
    training = results.get("training")
    if training:
        peak = training["matmul_gflops"]
        for case, r in training["results"].items():
            rows.append((f"training {case} tokens/s", r["tokens_per_s"]["median"], "tokens/s",
                         True, peak))
            if "mfu" in r:
                rows.append((f"training {case} MFU", r["mfu"], "fraction", True, None))
            rows.append((f"training {case} peak memory", r["peak_rss_mb"], "MB", False, None))
        for name, value in training["ratios"].items():
            rows.append((name.replace("_", " "), value, "ratio", True, None))
    generation = results.get("generation")
    if generation:
        for r in generation["results"]:
            rows.append((f"generation {r['case']}, {r['new_tokens']} new tokens",
                         r["fast_tokens_per_s"]["median"], "tokens/s", True,
                         generation["matmul_gflops"]))
    compression = results.get("compression")
    if compression:
        for architecture, result in compression["results"].items():
            for row in result["rows"]:
                rows.append((f"tflite {architecture} {row['variant']} latency",
                             row["ms_per_token"], "ms/token", False, None))
            if "final_val_loss" in result:
                rows.append((f"{architecture} char-cpu validation loss", result["final_val_loss"],
                             "nats/token", False, None))
    profile = results.get("profile")
    if profile:
        rows.append(("training step share in matrix products", profile["matmul_share"],
                     "fraction", True, None))
    startup = results.get("startup")
    if startup:
        rows.append(("tfl --help start", startup["results"]["tfl --help"]["median"], "s", False,
                     None))
    return rows


def check_regressions(rows, history, machine, against="the history"):
    """Warnings for figures more than 10% worse than the last run on this machine in `history`
    (`against` names that history in the warning)."""
    previous = {}
    for entry in history:
        if entry["machine"] == machine:
            for name, value, peak in entry["figures"]:
                previous[name] = (value, peak)
    warnings = []
    for name, value, _, higher_is_better, peak in rows:
        if name not in previous:
            continue
        old, old_peak = previous[name]
        if peak and old_peak:  # compare throughputs as fractions of the machine's peak
            value, old = value / peak, old / old_peak
        worse = value < old * (1 - REGRESSION_TOLERANCE) if higher_is_better else \
            value > old * (1 + REGRESSION_TOLERANCE)
        if worse:
            warnings.append(f"WARNING: {name} regressed: {value:.4g} now against {old:.4g} "
                            "last time on this machine"
                            + (" (per GFLOP/s of peak)" if peak else "") + f", in {against}")
    return warnings


def read_json(path, default):
    """The JSON in `path`, or `default` when there is no such file."""
    return json.loads(path.read_text()) if path.is_file() else default


def recorded_results(folder):
    """benchmark name -> its latest result JSON in `folder`."""
    return {name: read_json(folder / f"{name}.json", None) for name in BENCHMARKS
            if (folder / f"{name}.json").is_file()}


def summarize(results, measured_now, warnings):
    """The summary: every figure (with the benchmark it comes from), each benchmark's matmul
    peak, which benchmarks this run measured, and the regression warnings."""
    rows = [{"benchmark": benchmark,
             **dict(zip(("name", "value", "unit", "higher_is_better", "matmul_gflops"), row))}
            for benchmark in BENCHMARKS if benchmark in results
            for row in figures({benchmark: results[benchmark]})]
    return {"machine": machine_info(), "figures": rows,
            "matmul_gflops": {name: results[name].get("matmul_gflops")
                              for name in BENCHMARKS if name in results},
            "measured_now": list(measured_now), "warnings": list(warnings)}


def render_summary(summary):
    """The summary as Markdown."""
    machine = summary["machine"]
    lines = ["# Benchmark summary", "",
             f"Machine: {machine['cores']} cores; TensorFlow {machine['tensorflow']}; fp32 "
             "matmul peak measured in each run shown beside its throughputs.", "",
             "| figure | value | unit | matmul GFLOP/s in the same run |", "|---|---:|---|---:|"]
    for row in summary["figures"]:
        value, peak = row["value"], row["matmul_gflops"]
        shown = f"{value:.1%}" if row["unit"] == "fraction" else f"{value:,.4g}"
        lines.append(f"| {row['name']} | {shown} | {row['unit']} | "
                     f"{f'{peak:.0f}' if peak else ''} |")
    if summary["warnings"]:
        lines += [""] + [f"- {w}" for w in summary["warnings"]]
    return "\n".join(lines) + "\n"


def plot_summary(results, path):
    """Bar charts of training throughput, MFU and TFLite latency (nothing when none ran)."""
    from tfl.plotting import figure

    panels = []
    training = results.get("training")
    if training:
        cases = [c for c in training["results"] if c != "pipeline"]
        panels.append(("training tokens/s", cases,
                       [training["results"][c]["tokens_per_s"]["median"] for c in cases]))
        mfu = [c for c in cases if "mfu" in training["results"][c]]
        panels.append(("model FLOP utilisation", mfu,
                       [training["results"][c]["mfu"] for c in mfu]))
    compression = results.get("compression")
    if compression:
        for architecture, result in compression["results"].items():
            panels.append((f"TFLite {architecture}: ms per token",
                           [r["variant"] for r in result["rows"]],
                           [r["ms_per_token"] for r in result["rows"]]))
    if not panels:
        path.unlink(missing_ok=True)  # no stale plot beside a summary that has no panels
        return
    with figure(path, size=(8, 2.6 * len(panels)), rows=len(panels)) as axes:
        for ax, (title, labels, values) in zip(axes if len(panels) > 1 else [axes], panels):
            ax.barh(labels, values)
            ax.set_title(title, fontsize=10)
            ax.grid(axis="x", alpha=0.3)


def write_summary(folder, results, measured_now, warnings):
    """Write `summary.json`, `summary.md` and `summary.png` into `folder`; return the summary."""
    summary = summarize(results, measured_now, warnings)
    (folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (folder / "summary.md").write_text(render_summary(summary))
    plot_summary(results, folder / "summary.png")
    return summary


def append_history(folder, rows, machine):
    path = folder / "history.json"
    history = read_json(path, [])
    history.append({"machine": machine, "time": time.strftime("%Y-%m-%d %H:%M"),
                    "figures": [[name, value, peak] for name, value, _, _, peak in rows]})
    path.write_text(json.dumps(history, indent=1) + "\n")


def copy_results(names, source, target):
    """Copy the result JSON and the plots of the benchmarks `names` from `source` to `target`."""
    for name in names:
        patterns = (f"{name}.json", *BENCHMARKS[name].plots)
        for path in sorted(p for pattern in patterns for p in source.glob(pattern)):
            shutil.copy2(path, target / path.name)


def run_benchmark(name, out, quick, stdout):
    """Run one benchmark script in its own process; True when it succeeded."""
    command = [sys.executable, str(BENCH / BENCHMARKS[name].script), "--out", str(out),
               *(BENCHMARKS[name].quick_args if quick else ())]
    env = {**os.environ}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep the progress lines readable
    progress(f"== {name}: started")
    started = time.perf_counter()
    code = subprocess.run(command, stdout=stdout, env=env).returncode
    elapsed = time.perf_counter() - started
    progress(f"== {name}: " + (f"finished after {elapsed:.0f} s" if code == 0 else
                               f"FAILED after {elapsed:.0f} s (see its output above)"))
    return code == 0


def main(argv=None):
    from tfl.errors import TflError

    parser = argparse.ArgumentParser(description="Run tfl's benchmarks and summarise them.")
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), default=list(BENCHMARKS))
    parser.add_argument("--quick", action="store_true",
                        help="fewer steps and repeats (a smoke run; recorded nowhere)")
    parser.add_argument("--out", help="output folder (default: $TFL_BENCH_RESULTS, else "
                                      "saved_models/bench/, or its quick/ with --quick)")
    parser.add_argument("--update-reference", action="store_true",
                        help="also copy the results into bench/results/ (committed), rewrite "
                             "its summary and append to its history.json")
    parser.add_argument("--json", action="store_true",
                        help="print the summary as one JSON object on stdout (progress and "
                             "the benchmarks' own tables go to stderr)")
    args = parser.parse_args(argv)
    if args.quick and args.update_reference:
        raise TflError("--update-reference records full runs only: drop --quick")
    out = (default_out(args.quick) if args.out is None else Path(args.out)).resolve()
    out.mkdir(parents=True, exist_ok=True)
    reference = REFERENCE.resolve()

    results = {}
    stdout = sys.stderr if args.json else None  # with --json, stdout holds the JSON only
    for name in args.only:
        if args.quick and BENCHMARKS[name].quick_args is None:
            progress(f"== {name}: skipped with --quick")
            continue
        if not run_benchmark(name, out, args.quick, stdout):
            return 1  # its error is above, on stderr
        results[name] = read_json(out / f"{name}.json", None)

    rows = figures(results)  # this run's figures only: they are what is compared and recorded
    machine = machine_id()
    histories = {out: f"the output folder's history ({out / 'history.json'})",
                 reference: f"the reference history ({reference / 'history.json'})"}
    warnings = [] if args.quick else [
        warning for folder, label in histories.items()
        for warning in check_regressions(rows, read_json(folder / "history.json", []), machine,
                                         label)]
    if not args.quick:
        append_history(out, rows, machine)
    # The summary also shows the latest recorded results of benchmarks not run this time.
    summary = write_summary(out, {**recorded_results(out), **results}, results, warnings)
    if args.update_reference and reference != out:
        copy_results(results, out, reference)
        write_summary(reference, recorded_results(reference), results, warnings)
        append_history(reference, rows, machine)

    if args.json:
        print(json.dumps({**summary, "out": str(out), "quick": args.quick,
                          "reference_updated": args.update_reference}, indent=2))
    else:
        print(render_summary(summary))
        for warning in warnings:
            print(warning)
        print(f"written to {out}" + (f"; reference results refreshed in {reference}"
                                     if args.update_reference else ""))
    return 0


if __name__ == "__main__":
    from tfl.errors import TflError

    try:
        sys.exit(main())
    except TflError as e:  # a user's mistake: one line, as `tfl` prints it
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
