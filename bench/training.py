"""Training throughput, model FLOP utilisation, the input pipeline, and peak memory.

    python bench/training.py [--steps 100] [--repeats 5] [--out DIR]

Each case warms up (tracing and XLA compilation), then times `--repeats` runs of `--steps`
training steps with `model.fit`, with a progress line per repetition on stderr. Each group of
cases runs in a fresh process (this script with `--worker`). A shared machine's speed drifts
from minute to minute, so the cases a target compares run in one process with their
repetitions interleaved, and their ratio is the median of the per-repetition ratios (peak
memory is then the pair's):

- transformer: the char-cpu Transformer, batch 12, XLA, on the real `tf.data` pipeline;
- transformer-in-memory: the same steps on the same batches already held in memory, to show
  what the pipeline costs (target: within 5%); paired with `transformer`;
- lstm: the char-cpu LSTM as tfl builds and compiles it (`FastLSTM`), batch 12, XLA;
- lstm-keras: the same shape with a plain `keras.layers.LSTM` (Embedding, LSTM, Dense), compiled
  the same way (target: `lstm` twice as fast); paired with `lstm`;
- pipeline: batches per second of `make_dataset` alone, nothing trained, in its own process.

Model FLOPs per token (training = 3 x forward, each multiply-add = 2 FLOPs):
- Transformer: 6 * (L * (4 d^2 + 2 d f) + d V) + 12 * L * T * d: the weight matmuls and the
  tied output projection (6 per weight), plus attention scores and weighted values
  (4 T d per layer forward, masked half included, as PaLM's appendix and nanoGPT count it);
- LSTM: 6 * (4 h (e + h) + h V).
MFU = FLOPs per token * tokens per second / the fp32 matmul throughput. The matmul peak is
measured again just before every timed repetition, and each repetition's MFU is taken against
the peak measured beside it: on a machine whose speed drifts, a ratio of two figures measured
seconds apart is steadier than either figure. The MFU reported is the median of those.
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

from common import (BENCH, add_corpus_arguments, add_out_argument, load_bench_corpus,
                    machine_info, matmul_peak_gflops, print_table, progress, summarize,
                    write_result)

CASES = ["transformer", "transformer-in-memory", "lstm", "lstm-keras", "pipeline"]
# The cases a target compares, measured in one process: ratio name -> (numerator, denominator).
PAIRS = {"pipeline_vs_in_memory": ("transformer", "transformer-in-memory"),
         "lstm_vs_keras_lstm": ("lstm", "lstm-keras")}
BATCH = 12


def plain_keras_lstm(config):
    """Embedding, `keras.layers.LSTM` and Dense: the same shape as tfl's LSTM, built plainly."""
    import keras

    inputs = keras.Input((config.seq_len,), dtype="int32")
    x = keras.layers.Embedding(config.vocab_size, config.embedding_dim)(inputs)  # (B, T, e)
    x = keras.layers.LSTM(config.hidden_dim, return_sequences=True)(x)  # (B, T, h)
    return keras.Model(inputs, keras.layers.Dense(config.vocab_size)(x))  # (B, T, V)


def pipeline_rates(dataset, steps, repeats, seq_len):
    """Tokens per second of the `tf.data` pipeline alone, one rate per repetition."""
    iterator = iter(dataset)
    for _ in range(20):
        next(iterator)
    rates = []
    for repeat in range(repeats):
        start = time.perf_counter()
        for _ in range(steps * 10):
            next(iterator)
        rates.append(steps * 10 * BATCH * seq_len / (time.perf_counter() - start))
        progress(f"  pipeline: repetition {repeat + 1}/{repeats}: {rates[-1]:,.0f} tokens/s")
    return rates


def measure(cases, steps, repeats, corpus):
    """Measure `cases` in this process, their repetitions interleaved (see the module
    docstring). Runs in a worker process of its own: returns tokens/s per case and repetition,
    the matmul peak beside each repetition, parameters, the config and the peak memory."""
    import numpy as np
    import tensorflow as tf

    from tfl.data import make_dataset
    from tfl.models import LSTMConfig, TransformerConfig, build_model
    from tfl.tokenizers import build_tokenizer
    from tfl.training.config import TrainConfig, compile_model

    tokenizer = build_tokenizer("char", corpus.train)
    ids = tokenizer.encode(corpus.train)
    config_class = LSTMConfig if cases[0].startswith("lstm") else TransformerConfig
    config = config_class.from_preset("char-cpu", vocab_size=tokenizer.vocab_size)
    dataset = make_dataset(ids, config.seq_len, BATCH, shuffle=True, repeat=True, seed=0)
    result = {"batch": BATCH, "seq_len": config.seq_len, "corpus": corpus.name,
              "config": dict(vars(config))}
    if cases == ["pipeline"]:
        rates = {"pipeline": pipeline_rates(dataset, steps, repeats, config.seq_len)}
    else:
        models = {case: plain_keras_lstm(config) if case == "lstm-keras" else build_model(config)
                  for case in cases}
        datasets = {case: dataset for case in cases}
        if "transformer-in-memory" in cases:
            batches = list(dataset.take(steps).as_numpy_iterator())
            datasets["transformer-in-memory"] = tf.data.Dataset.from_tensor_slices(
                tuple(np.stack([b[i] for b in batches]) for i in (0, 1))).repeat().with_options(
                dataset.options())  # the pipeline's tf.data settings (autotuning off)
        for case, model in models.items():
            started = time.perf_counter()
            compile_model(model, TrainConfig(steps=10 ** 6, batch_size=BATCH))
            model.fit(datasets[case], steps_per_epoch=10, epochs=1, verbose=0)  # trace, compile
            progress(f"  {case}: traced and compiled in {time.perf_counter() - started:.0f} s")
        rates = {case: [] for case in cases}
        peaks = {case: [] for case in cases}  # the matmul peak measured before each repetition
        for repeat in range(repeats):
            for case, model in models.items():
                peaks[case].append(matmul_peak_gflops(repeats=10))
                start = time.perf_counter()
                model.fit(datasets[case], steps_per_epoch=steps, epochs=1, verbose=0)
                rates[case].append(steps * BATCH * config.seq_len / (time.perf_counter() - start))
                progress(f"  {case}: repetition {repeat + 1}/{repeats}: "
                         f"{rates[case][-1]:,.0f} tokens/s")
        result["parameters"] = {case: model.count_params() for case, model in models.items()}
        result["matmul_gflops_per_repeat"] = peaks
    result["tokens_per_s"] = rates
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def run_worker(cases, args):
    """`measure(cases)` in a fresh process (`--worker`), so each group's memory and compiled
    functions are its own; returns its result."""
    command = [sys.executable, str(BENCH / "training.py"), "--worker", "--cases", *cases,
               "--steps", str(args.steps), "--repeats", str(args.repeats),
               "--corpus", args.corpus,
               *(["--allow-offline-corpus"] if args.allow_offline_corpus else [])]
    out = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def flops_per_token(case, config):
    """Training FLOPs per token (see the module docstring)."""
    if case.startswith("lstm"):
        e, h, v = config["embedding_dim"], config["hidden_dim"], config["vocab_size"]
        return 6 * (4 * h * (e + h) + h * v)
    d, layers, t, v = (config["hidden_dim"], config["num_layers"], config["seq_len"],
                       config["vocab_size"])
    f = config["intermediate_dim"] or 4 * d
    return 6 * (layers * (4 * d * d + 2 * d * f) + d * v) + 12 * layers * t * d


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cases", nargs="+", default=CASES, choices=CASES)
    parser.add_argument("--worker", action="store_true",
                        help="measure --cases in this process and print their measurements as "
                             "JSON (the benchmark runs itself this way, one process per group)")
    add_corpus_arguments(parser)
    add_out_argument(parser)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(args.cases, args.steps, args.repeats, load_bench_corpus(args))))
        return
    peak = matmul_peak_gflops()
    results = {}
    ratios = {}
    # Cases compared by a target run in one process, interleaved (see the module docstring).
    workers = []  # tuples of cases, one process each
    for case in args.cases:
        pair = next((p for p in PAIRS.values() if case in p and set(p) <= set(args.cases)),
                    (case,))
        if pair not in workers:
            workers.append(pair)
    for number, worker_cases in enumerate(workers, 1):
        progress(f"  {' and '.join(worker_cases)}: a process of its own ({number}/{len(workers)})")
        measured = run_worker(worker_cases, args)
        rates = measured.pop("tokens_per_s")  # case -> one rate per repetition
        peaks = measured.pop("matmul_gflops_per_repeat", {})  # case -> one peak per repetition
        for ratio_name, (first, second) in PAIRS.items():
            if (first, second) == worker_cases:
                ratios[ratio_name] = float(statistics.median(
                    a / b for a, b in zip(rates[first], rates[second])))
        for case, case_rates in rates.items():
            result = {**measured, "case": case, "tokens_per_s": summarize(case_rates)}
            if case != "pipeline":
                result["parameters"] = result["parameters"][case]
                result["flops_per_token"] = flops_per_token(case, result["config"])
                result["matmul_gflops"] = summarize(peaks[case])
                result["mfu"] = float(statistics.median(
                    result["flops_per_token"] * rate / (rep_peak * 1e9)
                    for rate, rep_peak in zip(case_rates, peaks[case])))
            results[case] = result
    path = write_result(args.out, "training", {
        "benchmark": "training", "matmul_gflops": peak, "steps": args.steps, **machine_info(),
        "results": results, "ratios": ratios})
    print(f"fp32 matmul peak: {peak:.1f} GFLOP/s at the start of the run")
    print_table(["case", "tokens/s (median)", "min", "max", "matmul GFLOP/s beside", "MFU",
                 "peak RSS MB"],
                [[case, f"{r['tokens_per_s']['median']:,.0f}", f"{r['tokens_per_s']['min']:,.0f}",
                  f"{r['tokens_per_s']['max']:,.0f}",
                  f"{r['matmul_gflops']['median']:.0f}" if "mfu" in r else "-",
                  f"{r['mfu']:.1%}" if "mfu" in r else "-", f"{r['peak_rss_mb']:.0f}"]
                 for case, r in results.items()])
    for name, value in ratios.items():
        print(f"{name}: {value:.2f}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
