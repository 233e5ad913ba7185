"""Shared benchmark helpers: the machine's matmul peak, repetition statistics, result files.

Every throughput is stored next to the machine's measured fp32 matmul throughput from the same
run, so results from noisy or different machines can be compared as ratios.
"""

import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
REPO = RESULTS.parent.parent
sys.path.insert(0, str(REPO))  # run from a checkout without installing


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


def machine_info():
    import keras
    import tensorflow as tf

    return {"cores": os.cpu_count(), "python": platform.python_version(),
            "tensorflow": tf.__version__, "keras": keras.__version__,
            "machine": platform.machine()}


def results_dir():
    """`bench/results`, or `$TFL_BENCH_RESULTS` (quick and test runs write there instead)."""
    return Path(os.environ.get("TFL_BENCH_RESULTS", RESULTS))


def write_result(name, payload):
    """Write `<results>/<name>.json` and return its path."""
    results_dir().mkdir(parents=True, exist_ok=True)
    path = results_dir() / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def print_table(headers, rows):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    line = "  ".join(f"{h:>{w}}" for h, w in zip(headers, widths))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(f"{str(c):>{w}}" for c, w in zip(r, widths)))
