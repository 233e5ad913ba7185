"""Training throughput on 1, 2 and 4 logical CPU devices with MirroredStrategy.

    python bench/distribute.py [--steps 60] [--out DIR]

Each device count runs in its own process (this script with `--worker-devices N`: logical
devices must be set before TensorFlow starts) and trains the char-cpu Transformer on Tiny
Shakespeare (or python_docs offline) with the same global batch of 12, without XLA (a mirrored
run cannot use it). On one physical machine the logical devices share the same cores: this
measures the overhead of replication and all-reduce, not a speed-up. Writes `distribute.json`
into the output folder (see `common.py`); not part of `bench/suite.py`.
"""

import argparse
import json
import subprocess
import sys
import time

from common import (BENCH, add_corpus_arguments, add_out_argument, load_bench_corpus,
                    machine_info, matmul_peak_gflops, print_table, progress, summarize,
                    write_result)

DEVICES = (1, 2, 4)
GLOBAL_BATCH = 12
REPEATS = 3


def samples_per_second(devices, steps, args):
    """The corpus used and the samples per second of `model.fit` on `devices` logical CPU
    devices, one figure per repetition. Must run before anything else in the process touches
    TensorFlow."""
    from tfl.data import encode_splits, make_dataset
    from tfl.models import TransformerConfig, build_model
    from tfl.tokenizers import build_tokenizer
    from tfl.training.config import TrainConfig, compile_model
    from tfl.training.distribute import get_strategy

    strategy = get_strategy(devices)  # configures the logical devices: first TensorFlow call
    corpus = load_bench_corpus(args)
    tokenizer = build_tokenizer("char", corpus.train)
    ids = encode_splits(corpus, tokenizer, splits=("train",))["train"]
    config = TransformerConfig.from_preset("char-cpu", vocab_size=tokenizer.vocab_size)
    train_config = TrainConfig(batch_size=GLOBAL_BATCH, jit_compile=False, steps=steps)
    with strategy.scope():
        model = build_model(config)
        compile_model(model, train_config, distributed=devices > 1)
    dataset = make_dataset(ids, config.seq_len, GLOBAL_BATCH, shuffle=True, repeat=True)
    model.fit(dataset, steps_per_epoch=10, epochs=1, verbose=0)  # warm-up: trace
    rates = []
    for repeat in range(REPEATS):
        start = time.perf_counter()
        model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
        rates.append(steps * GLOBAL_BATCH / (time.perf_counter() - start))
        progress(f"  {devices} device(s): repetition {repeat + 1}/{REPEATS}: "
                 f"{rates[-1]:.1f} samples/s")
    return {"corpus": corpus.name, "samples_per_s": rates}


def run_worker(devices, args):
    """`samples_per_second(devices)` in a fresh process; returns its result."""
    command = [sys.executable, str(BENCH / "distribute.py"), "--worker-devices", str(devices),
               "--steps", str(args.steps), "--corpus", args.corpus,
               *(["--allow-offline-corpus"] if args.allow_offline_corpus else [])]
    out = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--worker-devices", type=int, metavar="N",
                        help="measure N devices in this process and print the rates as JSON "
                             "(the benchmark runs itself this way, one process per count)")
    add_corpus_arguments(parser)
    add_out_argument(parser)
    args = parser.parse_args()
    if args.worker_devices:
        print(json.dumps(samples_per_second(args.worker_devices, args.steps, args)))
        return
    peak = matmul_peak_gflops()
    results = []
    for devices in DEVICES:
        progress(f"  {devices} device(s): a process of its own")
        measured = run_worker(devices, args)
        corpus, rates = measured["corpus"], measured["samples_per_s"]
        results.append({"devices": devices, "samples_per_s": summarize(rates),
                        "tokens_per_s_median": summarize(rates)["median"] * 64})
    base = results[0]["samples_per_s"]["median"]
    for r in results:
        r["relative_to_one_device"] = r["samples_per_s"]["median"] / base
    path = write_result(args.out, "distribute", {
        "benchmark": "distribute", "matmul_gflops": peak, "global_batch": GLOBAL_BATCH,
        "steps": args.steps, "corpus": corpus, **machine_info(), "results": results})
    print(f"fp32 matmul peak: {peak:.1f} GFLOP/s; logical CPU devices share the same cores")
    print_table(["devices", "samples/s (median)", "min", "max", "vs 1 device"],
                [[r["devices"], f"{r['samples_per_s']['median']:.1f}",
                  f"{r['samples_per_s']['min']:.1f}", f"{r['samples_per_s']['max']:.1f}",
                  f"{r['relative_to_one_device']:.2f}x"] for r in results])
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
