"""The benchmark suite: `tfl bench` runs this.

    tfl bench                          # everything (about 25 minutes on 2 cores)
    tfl bench --only training startup  # some of it

Runs each benchmark script in its own process (startup, training, generation, compression, and
profile: the training step's kernel time by what the kernels do),
then gathers their JSON into `bench/results/summary.json`, `summary.md` and `summary.png`.
Every throughput sits next to the fp32 matmul throughput measured in the same benchmark run.

Regressions: each run's figures are appended to `bench/results/history.json`. A figure more
than 10% worse than the last recorded one *on the same machine* prints a warning. Throughputs
are compared as fractions of that run's matmul peak, so a machine that is busier or slower
today does not look like a regression in tfl.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time

from common import RESULTS, machine_info, results_dir

BENCHMARKS = {
    "startup": ["startup.py"],
    "training": ["training.py"],
    "generation": ["generation.py"],
    "compression": ["compression.py"],
    "profile": ["step_profile.py"],
}
QUICK_ARGS = {
    "startup": ["--repeats", "3"],
    "training": ["--steps", "10", "--repeats", "2", "--cases", "transformer", "pipeline"],
    "generation": ["--repeats", "1"],
    "profile": ["--steps", "3", "--repeats", "1"],
}
REGRESSION_TOLERANCE = 0.10


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


def check_regressions(rows, history, machine):
    """Warnings for figures more than 10% worse than the last run on this machine."""
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
                            "last time on this machine" + (" (per GFLOP/s of peak)" if peak
                                                           else ""))
    return warnings


def write_summary(results, rows, warnings):
    lines = ["# Benchmark summary", "",
             f"Machine: {machine_info()['cores']} cores; TensorFlow "
             f"{machine_info()['tensorflow']}; fp32 matmul peak measured in each run shown "
             "beside its throughputs.", "",
             "| figure | value | unit | matmul GFLOP/s in the same run |", "|---|---:|---|---:|"]
    for name, value, unit, _, peak in rows:
        shown = f"{value:.1%}" if unit == "fraction" else f"{value:,.4g}"
        lines.append(f"| {name} | {shown} | {unit} | {f'{peak:.0f}' if peak else ''} |")
    if warnings:
        lines += [""] + [f"- {w}" for w in warnings]
    (results_dir() / "summary.md").write_text("\n".join(lines) + "\n")
    (results_dir() / "summary.json").write_text(json.dumps(
        {"figures": [dict(zip(("name", "value", "unit", "higher_is_better", "matmul_gflops"), r))
                     for r in rows], "warnings": warnings}, indent=2) + "\n")
    plot_summary(results, results_dir() / "summary.png")


def plot_summary(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
        return
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 2.6 * len(panels)))
    for ax, (title, labels, values) in zip(list(getattr(axes, "flat", [axes])), panels):
        ax.barh(labels, values)
        ax.set_title(title, fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description="Run tfl's benchmarks and summarise them.")
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), default=list(BENCHMARKS))
    parser.add_argument("--quick", action="store_true",
                        help="fewer steps and repeats (a smoke run; not for the README)")
    args = parser.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    if args.quick:  # a smoke run must not overwrite the recorded results
        os.environ.setdefault("TFL_BENCH_RESULTS", str(RESULTS / "quick"))
    results_dir().mkdir(parents=True, exist_ok=True)
    results = {}
    for name in args.only:
        if args.quick and name not in QUICK_ARGS:
            print(f"== {name}: skipped with --quick")
            continue
        print(f"== {name}", flush=True)
        started = time.perf_counter()
        command = [sys.executable, os.path.join(here, BENCHMARKS[name][0])]
        command += QUICK_ARGS.get(name, []) if args.quick else []
        if subprocess.run(command).returncode != 0:
            print(f"{name} failed; see its output above", file=sys.stderr)
            return 1
        results[name] = json.loads((results_dir() / f"{name}.json").read_text())
        print(f"({name}: {time.perf_counter() - started:.0f} s)")
    rows = figures(results)
    history_file = results_dir() / "history.json"
    history = json.loads(history_file.read_text()) if history_file.is_file() else []
    machine = machine_id()
    warnings = check_regressions(rows, history, machine)
    if not args.quick:
        history.append({"machine": machine, "time": time.strftime("%Y-%m-%d %H:%M"),
                        "figures": [[name, value, peak] for name, value, _, _, peak in rows]})
        history_file.write_text(json.dumps(history, indent=1) + "\n")
    # The summary also shows the latest recorded results of benchmarks not run this time.
    for name in BENCHMARKS:
        recorded = results_dir() / f"{name}.json"
        if name not in results and recorded.is_file():
            results[name] = json.loads(recorded.read_text())
    write_summary(results, figures(results), warnings)
    print((results_dir() / "summary.md").read_text())
    for warning in warnings:
        print(warning)
    return 0


if __name__ == "__main__":
    sys.exit(main())
