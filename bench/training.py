"""Training throughput, model FLOP utilisation, the input pipeline, and peak memory.

    python bench/training.py [--steps 100] [--repeats 5]

Each case warms up (tracing and XLA compilation), then times `--repeats` runs of `--steps`
training steps with `model.fit`. This machine's speed moves by tens of percent from minute to
minute, so the cases a target compares run in one process with their repetitions interleaved,
and their ratio is the median of the per-repetition ratios (peak memory is then the pair's):

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
import statistics
import subprocess
import sys

from common import REPO, machine_info, matmul_peak_gflops, print_table, summarize, write_result

WORKER = r"""
import json, resource, sys, time
import keras, numpy as np, tensorflow as tf
sys.path.insert(0, "bench")
from common import matmul_peak_gflops
from tfl.data import load_corpus, make_dataset
from tfl.models import LSTMConfig, TransformerConfig, build_model
from tfl.tokenizers import build_tokenizer
from tfl.training.config import TrainConfig, compile_model

# One case, or two (comma-separated) measured side by side with their repetitions interleaved.
names, steps, repeats, corpus_name = (sys.argv[1].split(","), int(sys.argv[2]), int(sys.argv[3]),
                                      sys.argv[4])
case = names[0]
corpus = load_corpus(corpus_name)
tok = build_tokenizer("char", corpus.train)
ids = tok.encode(corpus.train)
batch = 12
architecture = "lstm" if case.startswith("lstm") else "transformer"
if architecture == "lstm":
    config = LSTMConfig.from_preset("char-cpu", vocab_size=tok.vocab_size)
else:
    config = TransformerConfig.from_preset("char-cpu", vocab_size=tok.vocab_size)
dataset = make_dataset(ids, config.seq_len, batch, shuffle=True, repeat=True, seed=0)
result = {"batch": batch, "seq_len": config.seq_len}

if case == "pipeline":
    iterator = iter(dataset)
    for _ in range(20):
        next(iterator)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps * 10):
            next(iterator)
        rates.append(steps * 10 * batch * config.seq_len / (time.perf_counter() - start))
    rates = {case: rates}
else:
    def plain_keras_lstm():
        inputs = keras.Input((config.seq_len,), dtype="int32")
        x = keras.layers.Embedding(config.vocab_size, config.embedding_dim)(inputs)
        x = keras.layers.LSTM(config.hidden_dim, return_sequences=True)(x)
        return keras.Model(inputs, keras.layers.Dense(config.vocab_size)(x))

    models = {name: plain_keras_lstm() if name == "lstm-keras" else build_model(config)
              for name in names}
    datasets = {name: dataset for name in names}
    if "transformer-in-memory" in names:
        batches = list(dataset.take(steps).as_numpy_iterator())
        datasets["transformer-in-memory"] = tf.data.Dataset.from_tensor_slices(
            tuple(np.stack([b[i] for b in batches]) for i in (0, 1))).repeat().with_options(
            dataset.options())  # the pipeline's tf.data settings (autotuning off)
    for name, model in models.items():
        compile_model(model, TrainConfig(steps=10 ** 6, batch_size=batch))
        model.fit(datasets[name], steps_per_epoch=10, epochs=1, verbose=0)  # trace, compile
    rates = {name: [] for name in names}
    peaks = {name: [] for name in names}  # the matmul peak measured just before each repetition
    for _ in range(repeats):
        for name, model in models.items():
            peaks[name].append(matmul_peak_gflops(repeats=10))
            start = time.perf_counter()
            model.fit(datasets[name], steps_per_epoch=steps, epochs=1, verbose=0)
            rates[name].append(steps * batch * config.seq_len / (time.perf_counter() - start))
    result["parameters"] = {name: model.count_params() for name, model in models.items()}
    result["matmul_gflops_per_repeat"] = peaks
result["config"] = {k: v for k, v in vars(config).items()}
result["tokens_per_s"] = rates
result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(result))
"""

CASES = ["transformer", "transformer-in-memory", "lstm", "lstm-keras", "pipeline"]
# The cases a target compares, measured in one process: ratio name -> (numerator, denominator).
PAIRS = {"pipeline_vs_in_memory": ("transformer", "transformer-in-memory"),
         "lstm_vs_keras_lstm": ("lstm", "lstm-keras")}


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
    parser.add_argument("--corpus", default="tiny_shakespeare")
    parser.add_argument("--cases", nargs="+", default=CASES, choices=CASES)
    args = parser.parse_args()
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
    for worker_cases in workers:
        out = subprocess.run([sys.executable, "-c", WORKER, ",".join(worker_cases),
                              str(args.steps), str(args.repeats), args.corpus],
                             capture_output=True, text=True, cwd=REPO, check=True)
        measured = json.loads(out.stdout.strip().splitlines()[-1])
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
    path = write_result("training", {"benchmark": "training", "matmul_gflops": peak,
                                     "steps": args.steps, **machine_info(), "results": results,
                                     "ratios": ratios})
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
