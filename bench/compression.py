"""Compression targets on the char-cpu models trained on Tiny Shakespeare.

    python bench/compression.py [--runs saved_models/bench] [--architectures lstm] [--out DIR]

Trains the char-cpu Transformer (2,000 steps) and LSTM (300 steps, batch 32), or reuses them
if the run directories exist, then runs `tfl optimize` on each (80% pruning + dynamic int8,
16-cluster clustering, full int8) and checks the targets:

- dynamic-range int8 at least 3.5x smaller than float32, perplexity within 2% of Keras;
- 80% sparse + int8 at least 10x smaller than float32 after gzip, perplexity within 10%;
- TFLite float32 logits within 1e-4 of the Keras model's.

Writes `compression.json` and the two reports' size-versus-perplexity plots into the output
folder (see `common.py`).
"""

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
from common import (REPO, add_out_argument, machine_info, matmul_peak_gflops, print_table,
                    progress, write_result)

TARGETS = {"int8_size_ratio": 3.5, "int8_perplexity": 0.02, "sparse_gzip_ratio": 10.0,
           "sparse_perplexity": 0.10, "float32_logits": 1e-4}
RUNS = {
    "transformer": dict(steps=2000, batch_size=12, fine_tune_steps=1000),
    # An LSTM fine-tune step under TF-MOT's wrappers (batch 32 x 100 characters, no XLA) is
    # much slower than a Transformer's: a shorter fine-tune.
    "lstm": dict(steps=300, batch_size=32, fine_tune_steps=300),
}


def trained_run(architecture, runs_dir, corpus):
    from tfl.training.config import TrainConfig
    from tfl.training.workflow import train

    out = Path(runs_dir) / f"{architecture}-char-cpu"
    settings = RUNS[architecture]
    train(architecture, "char-cpu", corpus, out, log=None, train_config=TrainConfig(
        steps=settings["steps"], batch_size=settings["batch_size"], sample_tokens=0))
    return out


def float32_logit_difference(run_dir, tflite_path, windows=8):
    """Largest |TFLite float32 logit - Keras logit| over validation-like random windows."""
    from tfl.edge.litert import LiteRTModel
    from tfl.run import load_run

    run = load_run(run_dir)
    model = LiteRTModel(tflite_path, config=run.model_config)
    ids = np.random.default_rng(0).integers(
        3, run.model_config.vocab_size, (windows, run.model_config.seq_len)).astype(np.int32)
    keras_logits = np.asarray(run.model(ids, training=False))
    return max(float(np.max(np.abs(model.logits(w) - k))) for w, k in zip(ids, keras_logits))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default=str(REPO / "saved_models" / "bench"))
    parser.add_argument("--corpus", default="tiny_shakespeare")
    parser.add_argument("--fine-tune-steps", type=int, default=None,
                        help="pruning fine-tune steps (default: 1000 Transformer, 300 LSTM)")
    parser.add_argument("--architectures", nargs="+", default=list(RUNS), choices=list(RUNS),
                        help="benchmark only these; results of the others already in "
                             "compression.json are kept")
    add_out_argument(parser)
    args = parser.parse_args()
    from tfl.edge.report import optimize_run

    peak = matmul_peak_gflops()
    previous = args.out / "compression.json"
    results = json.loads(previous.read_text())["results"] if previous.is_file() else {}
    for architecture in args.architectures:
        fine_tune_steps = args.fine_tune_steps or RUNS[architecture]["fine_tune_steps"]
        started = time.perf_counter()
        progress(f"  {architecture}: training (or reusing) the char-cpu run")
        run_dir = trained_run(architecture, args.runs, args.corpus)
        trained = time.perf_counter()
        progress(f"  {architecture}: trained in {trained - started:.0f} s; optimizing")
        out = Path(args.runs) / f"{architecture}-char-cpu-optimized"
        report = optimize_run(run_dir, out, prune=0.8, quantize="dynamic-int8", clusters=16,
                              fine_tune_steps=fine_tune_steps, log=print)
        rows = {row["variant"]: row for row in report["rows"]}
        difference = float32_logit_difference(run_dir, out / "dense-float32.tflite")
        args.out.mkdir(parents=True, exist_ok=True)
        shutil.copy(out / "size_vs_perplexity.png",
                    args.out / f"compression-{architecture}-size-vs-perplexity.png")
        history = json.loads((run_dir / "history.json").read_text())
        int8, sparse = rows["dense-dynamic-int8"], rows["pruned-dynamic-int8"]
        results[architecture] = {
            "keras_perplexity": report["keras"]["perplexity"],
            "rows": report["rows"],
            "float32_max_logit_difference": difference,
            "fine_tune_steps": fine_tune_steps, "matmul_gflops": peak,
            "final_val_loss": history[-1]["val_loss"],
            "train_steps": history[-1]["step"], "train_tokens": history[-1]["tokens"],
            "train_wall_seconds": sum(r["interval_seconds"] for r in history),
            "train_seconds": trained - started,
            "optimize_seconds": time.perf_counter() - trained,
            "checks": {  # [measured, target met]
                "int8_size_ratio": [int8["size_ratio"],
                                    int8["size_ratio"] >= TARGETS["int8_size_ratio"]],
                "int8_perplexity": [int8["perplexity_change"], abs(int8["perplexity_change"])
                                    <= TARGETS["int8_perplexity"]],
                "sparse_gzip_ratio": [sparse["gzip_ratio"],
                                      sparse["gzip_ratio"] >= TARGETS["sparse_gzip_ratio"]],
                "sparse_perplexity": [sparse["perplexity_change"], sparse["perplexity_change"]
                                      <= TARGETS["sparse_perplexity"]],
                "float32_logits": [difference, difference <= TARGETS["float32_logits"]],
            },
        }
    path = write_result(args.out, "compression", {
        "benchmark": "compression", "matmul_gflops": peak, "targets": TARGETS, **machine_info(),
        "results": results})
    print(f"\nfp32 matmul peak: {peak:.1f} GFLOP/s")
    for architecture, result in results.items():
        print(f"\n{architecture} char-cpu (Keras perplexity "
              f"{result['keras_perplexity']:.4f})")
        print_table(["variant", "bytes", "gzip", "x smaller", "x after gzip", "perplexity",
                     "vs Keras", "ms/token"],
                    [[r["variant"], f"{r['bytes']:,}", f"{r['gzip_bytes']:,}",
                      f"{r['size_ratio']:.2f}", f"{r['gzip_ratio']:.2f}",
                      f"{r['perplexity']:.4f}", f"{r['perplexity_change']:+.2%}",
                      f"{r['ms_per_token']:.3f}"] for r in result["rows"]])
        for check, (value, ok) in result["checks"].items():
            print(f"  {check:18s} {value:.4g}  {'met' if ok else 'NOT MET'}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
