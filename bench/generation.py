"""Generation speed: key/value-cached and stateful decoding against full recomputation.

    python bench/generation.py [--repeats 3] [--out DIR]

For the char-cpu Transformer (context 64, and the same model with a 256-token context) and the
char-cpu LSTM, generates N new tokens greedily from a one-token prompt, with the fast decoder
and with the recomputing reference, and reports tokens per second (median of the repeats after
one warm-up run, with min and max) and the speed-up. Weights are untrained: speed does not depend
on them. Writes `generation.json` and `generation.png` into the output folder (see `common.py`).
"""

import argparse
import time

from common import (add_out_argument, machine_info, matmul_peak_gflops, print_table, progress,
                    summarize, write_result)

CASES = [
    # (name, architecture, overrides, new tokens)
    ("transformer char-cpu, context 64", "transformer", {}, 64),
    ("transformer char-cpu, context 64", "transformer", {}, 256),
    ("transformer char-cpu, context 256", "transformer", {"seq_len": 256}, 64),
    ("transformer char-cpu, context 256", "transformer", {"seq_len": 256}, 256),
    ("lstm char-cpu", "lstm", {}, 64),
    ("lstm char-cpu", "lstm", {}, 256),
]
VOCAB_SIZE = 68  # Tiny Shakespeare's 65 characters and 3 special tokens


def tokens_per_second(model, config, new_tokens, cached, repeats):
    from tfl.inference.generate import generate_ids

    generate_ids(model, config, [3], new_tokens, cached=cached)  # warm-up: trace and compile
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        generate_ids(model, config, [3], new_tokens, cached=cached)
        rates.append(new_tokens / (time.perf_counter() - start))
    return summarize(rates)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    add_out_argument(parser)
    args = parser.parse_args()

    from tfl.models import build_model, config_class

    peak = matmul_peak_gflops()
    models = {}
    results = []
    for number, (name, architecture, overrides, new_tokens) in enumerate(CASES, 1):
        progress(f"  {name}, {new_tokens} new tokens ({number}/{len(CASES)})")
        if name not in models:
            config = config_class(architecture).from_preset("char-cpu", vocab_size=VOCAB_SIZE,
                                                            **overrides)
            models[name] = (build_model(config), config)
        model, config = models[name]
        fast = tokens_per_second(model, config, new_tokens, True, args.repeats)
        slow = tokens_per_second(model, config, new_tokens, False, args.repeats)
        results.append({"case": name, "new_tokens": new_tokens,
                        "fast_tokens_per_s": fast, "recompute_tokens_per_s": slow,
                        "speedup": fast["median"] / slow["median"]})
    payload = {"benchmark": "generation", "matmul_gflops": peak, **machine_info(),
               "results": results}
    path = write_result(args.out, "generation", payload)
    print(f"fp32 matmul peak: {peak:.1f} GFLOP/s")
    print_table(
        ["case", "new", "fast tok/s", "recompute tok/s", "speed-up"],
        [[r["case"], r["new_tokens"], f"{r['fast_tokens_per_s']['median']:,.0f}",
          f"{r['recompute_tokens_per_s']['median']:,.0f}", f"{r['speedup']:.1f}x"]
         for r in results])
    plot(results, args.out / "generation.png")
    print(f"wrote {path}")


def plot(results, path):
    from tfl.plotting import figure

    labels = [f"{r['case']}\n{r['new_tokens']} new" for r in results]
    fast = [r["fast_tokens_per_s"]["median"] for r in results]
    slow = [r["recompute_tokens_per_s"]["median"] for r in results]
    x = range(len(results))
    with figure(path, size=(10, 4)) as ax:
        ax.bar([i - 0.2 for i in x], fast, width=0.4, label="cached / stateful")
        ax.bar([i + 0.2 for i in x], slow, width=0.4, label="full recomputation")
        ax.set_xticks(list(x), labels, fontsize=7)
        ax.set_ylabel("generated tokens / s")
        ax.legend()


if __name__ == "__main__":
    main()
