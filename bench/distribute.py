"""Training throughput on 1, 2 and 4 logical CPU devices with MirroredStrategy.

    python bench/distribute.py [--steps 60]

Each device count runs in its own process (logical devices must be set before TensorFlow
starts) and trains the char-cpu Transformer on Tiny Shakespeare (or python_docs offline) with the
same global batch of 12, without XLA (a mirrored run cannot use it). On one physical machine the
logical devices share the same cores: this measures the overhead of replication and all-reduce,
not a speed-up. Writes bench/results/distribute.json.
"""

import argparse
import json
import subprocess
import sys
import time

from common import REPO, machine_info, matmul_peak_gflops, print_table, summarize, write_result

WORKER = """
import json, sys, time, tempfile
import keras
from tfl.data import load_corpus, encode_splits, make_dataset
from tfl.training.distribute import get_strategy
from tfl.models import TransformerConfig, build_model
from tfl.tokenizers import build_tokenizer
from tfl.training.config import TrainConfig, compile_model
devices, steps, corpus_name = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
strategy = get_strategy(devices)
corpus = load_corpus(corpus_name)
tok = build_tokenizer("char", corpus.train)
ids = encode_splits(corpus, tok, splits=("train",))["train"]
config = TransformerConfig.from_preset("char-cpu", vocab_size=tok.vocab_size)
train_config = TrainConfig(batch_size=12, jit_compile=False, steps=steps)
with strategy.scope():
    model = build_model(config)
    compile_model(model, train_config, distributed=devices > 1)
ds = make_dataset(ids, config.seq_len, 12, shuffle=True, repeat=True)
model.fit(ds, steps_per_epoch=10, epochs=1, verbose=0)  # warm-up: trace
rates = []
for _ in range(3):
    start = time.perf_counter()
    model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
    rates.append(steps * 12 / (time.perf_counter() - start))
print(json.dumps(rates))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--corpus", default="tiny_shakespeare")
    args = parser.parse_args()
    peak = matmul_peak_gflops()
    results = []
    for devices in (1, 2, 4):
        out = subprocess.run([sys.executable, "-c", WORKER, str(devices), str(args.steps),
                              args.corpus], capture_output=True, text=True, cwd=REPO, check=True)
        rates = json.loads(out.stdout.strip().splitlines()[-1])
        results.append({"devices": devices, "samples_per_s": summarize(rates),
                        "tokens_per_s_median": summarize(rates)["median"] * 64})
    base = results[0]["samples_per_s"]["median"]
    for r in results:
        r["relative_to_one_device"] = r["samples_per_s"]["median"] / base
    path = write_result("distribute", {"benchmark": "distribute", "matmul_gflops": peak,
                                       "global_batch": 12, "steps": args.steps,
                                       "corpus": args.corpus, **machine_info(),
                                       "results": results})
    print(f"fp32 matmul peak: {peak:.1f} GFLOP/s; logical CPU devices share the same cores")
    print_table(["devices", "samples/s (median)", "min", "max", "vs 1 device"],
                [[r["devices"], f"{r['samples_per_s']['median']:.1f}",
                  f"{r['samples_per_s']['min']:.1f}", f"{r['samples_per_s']['max']:.1f}",
                  f"{r['relative_to_one_device']:.2f}x"] for r in results])
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
