"""Shared benchmark helpers: where results go, the machine's matmul peak, repetition statistics.

Every throughput is stored next to the machine's measured fp32 matmul throughput from the same
run, so results from noisy or different machines can be compared as ratios.

Results go to an output folder: `--out`, else `$TFL_BENCH_RESULTS`, else `saved_models/bench/`
(ignored by git). The committed reference results in `bench/results/` change only when
`bench/suite.py --update-reference` copies a run there.
"""

import importlib.metadata
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
REFERENCE = BENCH / "results"
sys.path.insert(0, str(REPO))  # run from a checkout without installing


def default_out(quick=False):
    """`$TFL_BENCH_RESULTS`, else `saved_models/bench/` (its `quick/` folder for a smoke run, so
    a smoke run never overwrites a full run's results)."""
    if os.environ.get("TFL_BENCH_RESULTS"):
        return Path(os.environ["TFL_BENCH_RESULTS"])
    out = REPO / "saved_models" / "bench"
    return out / "quick" if quick else out


def add_out_argument(parser):
    parser.add_argument("--out", type=Path, default=default_out(),
                        help="folder for the result files (default: $TFL_BENCH_RESULTS, else "
                             "saved_models/bench/)")


def add_corpus_arguments(parser):
    parser.add_argument("--corpus", default="tiny_shakespeare")
    parser.add_argument("--allow-offline-corpus", action="store_true",
                        help="use the offline python_docs corpus when --corpus cannot be had "
                             "here (smoke runs)")


def load_bench_corpus(args):
    """The corpus `args.corpus`, or python_docs with `--allow-offline-corpus` when it is absent
    (a note goes to stderr, and the result files record the corpus used)."""
    from tfl.data.corpora import load_corpus, load_corpus_or_fallback

    if args.allow_offline_corpus:
        return load_corpus_or_fallback(args.corpus, log=progress)
    return load_corpus(args.corpus)


def progress(message):
    """A progress line on stderr (stdout carries results: tables, or JSON)."""
    print(message, file=sys.stderr, flush=True)


def matmul_peak_gflops(size=1024, repeats=30):
    """Median GFLOP/s of a `size` x `size` float32 matmul in TensorFlow (2 n^3 FLOPs each)."""
    import tensorflow as tf

    a = tf.random.normal((size, size))
    b = tf.random.normal((size, size))
    matmul = tf.function(lambda x, y: tf.matmul(x, y))
    matmul(a, b).numpy()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        matmul(a, b).numpy()
        rates.append(2 * size**3 / (time.perf_counter() - start) / 1e9)
    return statistics.median(rates)


def summarize(values):
    """Median, min and max of repeated measurements."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "repeats": len(values)}


def _version(*packages):
    for package in packages:
        try:
            return importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def machine_info():
    """Cores, Python, TensorFlow and Keras versions (read from package metadata: this does not
    import TensorFlow)."""
    return {"cores": os.cpu_count(), "python": platform.python_version(),
            "tensorflow": _version("tensorflow", "tensorflow-cpu"), "keras": _version("keras"),
            "machine": platform.machine()}


def write_result(out, name, payload):
    """Write `<out>/<name>.json` and return its path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def print_table(headers, rows):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    line = "  ".join(f"{h:>{w}}" for h, w in zip(headers, widths))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(f"{str(c):>{w}}" for c, w in zip(r, widths)))
