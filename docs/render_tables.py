"""Render the measured tables and figures in README.md and docs/*.md from bench/results/*.json.

    python docs/render_tables.py           # rewrite every marked block from the JSON files
    python docs/render_tables.py --check   # only compare; exit status 1 if a block differs

A measured table sits between two markers; the line after the first names the table:

    <!-- table: training -->
    ... (rendered here from bench/results/training.json; do not edit by hand)
    <!-- /table -->

A measured figure inside a sentence is marked the same way, with a path into a JSON file (its
name without `.json`, then keys or list indices) and a Python format spec, optionally followed
by `*SCALE`:

    trains <!-- value: training.ratios.lstm_vs_keras_lstm .2f -->2.50<!-- /value -->x as fast

A value marker must not start a line, even indented (Markdown would read the line as an HTML
block).

A table or value whose JSON file is missing is left as it is, with a note (by `--check` too),
so a checkout without, for example, `bench/results/quickstart.json` still passes; an empty
table block gets a one-line placeholder. Standard library only: no TensorFlow, no tfl import.
"""

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path("bench") / "results"
HISTORY = "transformer-char-cpu-tiny-shakespeare-history"

TABLE = re.compile(r"(?P<open><!-- table: (?P<name>[\w-]+) -->\n)(?P<body>.*?)"
                   r"(?P<close><!-- /table -->)", re.S)
VALUE = re.compile(r"(?P<open><!-- value: (?P<path>[\w.\-]+) (?P<spec>[^ ]*?) -->)(?P<text>.*?)"
                   r"(?P<close><!-- /value -->)")

# The project's performance targets (goals, not measurements). Validation loss 1.88 is what
# nanoGPT's README reports for its CPU configuration on Tiny Shakespeare.
TARGETS = {
    "val_loss": 1.88,
    "lstm_vs_keras_lstm": 2.0,
    "pipeline_vs_in_memory": 0.95,
    "transformer_mfu": 0.75,
}

TRAINING_CASES = {
    "transformer": "Transformer char-cpu, `tf.data` pipeline",
    "transformer-in-memory": "Transformer char-cpu, batches held in memory",
    "lstm": "LSTM char-cpu as tfl builds it (`FastLSTM`)",
    "lstm-keras": "plain `keras.layers.LSTM`, same shape and compile",
    "pipeline": "input pipeline alone (nothing trained)",
}


class Missing(Exception):
    """A JSON file a table or value needs is not in bench/results/."""


class Results:
    """The JSON files of one results folder, read on first use."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self._loaded = {}

    def __getitem__(self, stem):
        if stem not in self._loaded:
            path = self.folder / f"{stem}.json"
            if not path.is_file():
                raise Missing(f"{RESULTS / path.name} is missing")
            self._loaded[stem] = json.loads(path.read_text(encoding="utf-8"))
        return self._loaded[stem]


# ---------------------------------------------------------------------------------------------
# Formatting helpers

def num(value, digits=0):
    return f"{value:,.{digits}f}"


def spread(stats, digits=0):
    """'median (min-max)' of a {median, min, max} record."""
    low, high = num(stats["min"], digits), num(stats["max"], digits)
    return f"{num(stats['median'], digits)} ({low}-{high})"


def table(headers, aligns, rows):
    """A Markdown table; `aligns` is a string of 'l' and 'r', one letter per column."""
    rule = "|" + "|".join("---" if a == "l" else "---:" for a in aligns) + "|"
    lines = ["| " + " | ".join(headers) + " |", rule]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def code_block(text):
    """Generated text in a fenced block (its leading and trailing line breaks dropped)."""
    return "```\n" + text.strip("\n") + "\n```"


def result_file(stem):
    return f"`{(RESULTS / stem).as_posix()}.json`"


def source(*stems):
    return "Source: " + ", ".join(result_file(stem) for stem in stems) + "."


def peak(data):
    return f"fp32 matmul peak measured in the same run: {data['matmul_gflops']:.0f} GFLOP/s"


# ---------------------------------------------------------------------------------------------
# Tables: name -> function(results) returning Markdown

def render_quickstart(r):
    summary = r["quickstart"]
    rows = []
    for row in summary["rows"]:
        rows.append([row["model"], num(row["parameters"]) if row["parameters"] else "counts",
                     row["steps"] if row["steps"] is not None else "-",
                     row["train_seconds"] if row["train_seconds"] is not None else "-",
                     f"{row['val_loss']:.4f}", f"{row['perplexity']:.3f}",
                     f"{row['bits_per_char']:.4f}"])
    fast = " with `--fast` settings" if summary["fast"] else ""
    note = (f"`tfl quickstart`{fast} on {summary['corpus']}, character tokenizer "
            f"({summary['tokenizer']['vocab_size']} ids): {summary['seconds']:.0f} s in all, "
            "compression and export included. Loss is in nats per character on the validation "
            "split; perplexity = e^loss; bits/char = loss / ln 2. The quickstart records no "
            "matmul peak. " + source("quickstart"))
    return table(["model", "parameters", "steps", "train s", "val loss", "perplexity",
                  "bits/char"], "lrrrrrr", rows) + "\n\n" + note


def render_quickstart_sample(r):
    summary = r["quickstart"]
    row = next(row for row in summary["rows"] if row["sample"])
    return (f"A sample from {row['model']} (top-k 10, temperature 0.8, seed 0; "
            f"{result_file('quickstart')}):\n\n" + code_block(row["sample"]))


def render_quickstart_compression(r):
    compression = r["quickstart"]["compression"]
    rows = [[f"`{row['file']}`", num(row["bytes"]), num(row["gzip_bytes"]),
             f"{row['gzip_ratio']:.1f}", f"{row['perplexity']:.3f}", f"{row['ms_per_token']:.2f}"]
            for row in compression["rows"]]
    edge = compression["edge_file"].replace("\\", "/").rsplit("/", 1)[-1]
    return (f"{compression['model']} compressed by `tfl quickstart` (Keras model perplexity "
            f"{compression['keras_perplexity']:.3f}; sizes relative to the float32 TFLite file):"
            "\n\n" + table(["TFLite file", "bytes", "gzip bytes", "x smaller after gzip",
                            "perplexity", "ms / token"], "lrrrrr", rows)
            + f"\n\nA sample from `{edge}` in the LiteRT interpreter (top-k 10, temperature 0.8, "
            "seed 0):\n\n" + code_block(compression["edge_sample"]) + "\n\n" + source("quickstart"))


def render_training(r):
    data = r["training"]
    rows = []
    for case, result in data["results"].items():
        rows.append([TRAINING_CASES.get(case, case),
                     num(result["parameters"]) if "parameters" in result else "-",
                     spread(result["tokens_per_s"]),
                     f"{result['matmul_gflops']['median']:.0f}" if "matmul_gflops" in result
                     else "-",
                     f"{result['mfu']:.1%}" if "mfu" in result else "-",
                     f"{num(result['peak_rss_mb'])} MB"])
    first = next(iter(data["results"].values()))
    repeats = first["tokens_per_s"]["repeats"]
    note = (f"Batch {first['batch']}, XLA, {repeats} timed repetitions of {data['steps']} steps "
            "after a warm-up. The matmul peak is measured again just before every repetition "
            "(the column \"matmul GFLOP/s\" is their median), and each repetition's MFU is taken "
            "against the peak measured beside it. Cases compared by a target run in one process "
            "with interleaved repetitions, so their peak memory is the pair's. "
            f"{peak(data)} at its start. " + source("training"))
    return table(["case", "parameters", "tokens/s median (min-max)", "matmul GFLOP/s", "MFU",
                  "peak memory"], "lrrrrr", rows) + "\n\n" + note


def render_training_history(r):
    history = r[HISTORY]
    rows = [[num(e["step"]), num(e["tokens"]), f"{e['loss']:.4f}", f"{e['val_loss']:.4f}",
             f"{e['learning_rate']:.2e}", num(e["tokens_per_s"])] for e in history]
    return table(["step", "tokens", "train loss", "val loss", "learning rate", "tokens/s"],
                 "rrrrrr", rows) + (
        "\n\nLoss in nats per character; val loss on the evaluation batches of each interval. "
        "Tokens/s includes evaluation and the printed sample; the first interval also includes "
        "compilation. The history records no matmul peak. " + source(HISTORY))


def render_generation(r):
    data = r["generation"]
    rows = [[row["case"], row["new_tokens"], spread(row["fast_tokens_per_s"]),
             spread(row["recompute_tokens_per_s"]), f"{row['speedup']:.1f}x"]
            for row in data["results"]]
    repeats = data["results"][0]["fast_tokens_per_s"]["repeats"]
    return table(["model", "new tokens", "cached or stateful tokens/s", "recomputing tokens/s",
                  "speed-up"], "lrrrr", rows) + (
        f"\n\nGreedy, one-token prompt, untrained weights (speed does not depend on them); "
        f"median (min-max) of {repeats} runs after a warm-up. The LSTM's recomputing reference "
        f"re-reads a window of its sequence length. {peak(data)}. " + source("generation"))


def compression_renderer(architecture):
    def render(r):
        data = r["compression"]
        result = data["results"][architecture]
        rows = []
        for row in result["rows"]:
            extra = (f"{row['sparsity']:.1%} zeros" if "sparsity" in row else
                     f"{row['distinct_values']} values per matrix" if "distinct_values" in row
                     else "")
            rows.append([row["variant"], num(row["bytes"]), num(row["gzip_bytes"]),
                         f"{row['size_ratio']:.2f}", f"{row['gzip_ratio']:.2f}",
                         f"{row['perplexity']:.4f}", f"{row['perplexity_change']:+.2%}",
                         f"{row['ms_per_token']:.2f}", extra])
        head = (f"**{architecture} char-cpu**: Keras model validation perplexity "
                f"{result['keras_perplexity']:.4f} after {num(result['train_steps'])} training "
                f"steps; pruning fine-tune {num(result['fine_tune_steps'])} steps.")
        return head + "\n\n" + table(
            ["variant", "bytes", "gzip bytes", "x smaller", "x smaller after gzip", "perplexity",
             "vs Keras", "ms / token", "measured"], "lrrrrrrrl", rows) + (
            f"\n\n\"x smaller\" is against the dense float32 file. {peak(data)}. "
            + source("compression"))
    return render


def render_compression_targets(r):
    data = r["compression"]
    targets = data["targets"]
    labels = {
        "int8_size_ratio": (f"dynamic int8 at least {targets['int8_size_ratio']:g}x smaller than "
                            "float32", lambda v: f"{v:.2f}x"),
        "int8_perplexity": (f"... with perplexity within {targets['int8_perplexity']:.0%} of "
                            "Keras", lambda v: f"{v:+.3%}"),
        "sparse_gzip_ratio": (f"80% sparse + int8 at least {targets['sparse_gzip_ratio']:g}x "
                              "smaller after gzip", lambda v: f"{v:.2f}x"),
        "sparse_perplexity": (f"... with perplexity within {targets['sparse_perplexity']:.0%}",
                              lambda v: f"{v:+.2%}"),
        "float32_logits": (f"TFLite float32 logits within {targets['float32_logits']:g} of Keras",
                           lambda v: f"{v:.1e}"),
    }
    architectures = list(data["results"])
    rows = []
    for key, (label, fmt) in labels.items():
        cells = []
        for architecture in architectures:
            value, met = data["results"][architecture]["checks"][key]
            cells.append(f"{fmt(value)}, {'met' if met else '**not met**'}")
        rows.append([label, *cells])
    return table(["target", *architectures], "l" + "l" * len(architectures), rows) + (
        f"\n\n{peak(data)}. " + source("compression"))


def render_profile(r):
    data = r["profile"]
    rows = [[g["group"], f"{g['ms_per_step']:.2f}", f"{g['share']:.1%}", g["kernels_per_step"],
             f"{g['gflops']:.0f}" if g["gflops"] else "-"] for g in data["groups"]]
    return table(["kernels", "ms / step", "share", "kernels / step", "GFLOP/s"], "lrrrr",
                 rows) + (
        f"\n\nThe char-cpu Transformer, batch {data['batch']}, context {data['seq_len']}, "
        f"compiled as `tfl train` compiles it: {data['wall_ms_per_step']['median']:.1f} ms per "
        f"step untraced (median of {data['wall_ms_per_step']['repeats']}), "
        f"{data['kernel_ms_per_step']:.1f} ms of kernel time per step traced; "
        f"{data['model_gflop_per_step']:.2f} GFLOP per step; MFU {data['mfu']:.1%}; matrix "
        f"products {data['matmul_share']:.1%} of the kernel time. {peak(data)}. "
        + source("profile"))


def render_startup(r):
    data = r["startup"]
    rows = [[f"`{command}`", spread(stats, 2).replace("(", "s (", 1), stats["repeats"]]
            for command, stats in data["results"].items()]
    return table(["command", "seconds, median (min-max)", "repeats"], "lrr", rows) + (
        "\n\nEach in a fresh process after one warm-up run. " + source("startup"))


def render_distribute(r):
    data = r["distribute"]
    rows = [[row["devices"], spread(row["samples_per_s"], 1), num(row["tokens_per_s_median"]),
             f"{row['relative_to_one_device']:.2f}x"] for row in data["results"]]
    repeats = data["results"][0]["samples_per_s"]["repeats"]
    return table(["logical CPU devices", "samples/s median (min-max)", "tokens/s",
                  "vs 1 device"], "rrrr", rows) + (
        f"\n\nThe char-cpu Transformer on {data['corpus']}, global batch "
        f"{data['global_batch']}, {data['steps']} steps, no XLA, median of {repeats} runs. The "
        f"logical devices share the same cores: this is the cost of replication, not a "
        f"speed-up. {peak(data)}. " + source("distribute"))


PEAK_FILES = ("training", "generation", "compression", "profile", "distribute")


def render_matmul_peaks(r):
    rows = [[result_file(name), f"{r[name]['matmul_gflops']:.0f}"]
            for name in PEAK_FILES]
    return table(["result file", "fp32 matmul GFLOP/s in that run"], "lr", rows)


def render_targets(r):
    training, compression = r["training"], r["compression"]
    transformer = compression["results"]["transformer"]
    ratios = training["ratios"]
    mfu = training["results"]["transformer"]["mfu"]

    def met(ok):
        return "met" if ok else "**not met**"

    rows = [
        [f"char-cpu Transformer: validation loss at most {TARGETS['val_loss']} after "
         f"{num(transformer['train_steps'])} steps of batch 12 "
         f"({num(transformer['train_tokens'])} tokens)",
         f"{transformer['final_val_loss']:.4f} ({transformer['train_wall_seconds']:.0f} s)",
         met(transformer["final_val_loss"] <= TARGETS["val_loss"])],
        [f"LSTM at least {TARGETS['lstm_vs_keras_lstm']:g}x as fast as a plain Keras LSTM",
         f"{ratios['lstm_vs_keras_lstm']:.2f}x",
         met(ratios["lstm_vs_keras_lstm"] >= TARGETS["lstm_vs_keras_lstm"])],
        [f"input pipeline within {1 - TARGETS['pipeline_vs_in_memory']:.0%} of batches in "
         "memory", f"{ratios['pipeline_vs_in_memory']:.2f} of its speed",
         met(ratios["pipeline_vs_in_memory"] >= TARGETS["pipeline_vs_in_memory"])],
        [f"Transformer MFU at least {TARGETS['transformer_mfu']:.0%}", f"{mfu:.1%}",
         met(mfu >= TARGETS["transformer_mfu"])],
    ]
    return table(["target", "measured", "result"], "lrl", rows) + (
        f"\n\nThe validation loss comes from the run that `bench/compression.py` trains "
        f"(its training wall time, evaluation included, in brackets); the rest from "
        f"`bench/training.py` "
        f"({peak(training)} at its start). " + source("compression", "training"))


TABLES = {
    "quickstart": render_quickstart,
    "quickstart-sample": render_quickstart_sample,
    "quickstart-compression": render_quickstart_compression,
    "training": render_training,
    "training-history": render_training_history,
    "targets": render_targets,
    "generation": render_generation,
    "compression-transformer": compression_renderer("transformer"),
    "compression-lstm": compression_renderer("lstm"),
    "compression-targets": render_compression_targets,
    "profile": render_profile,
    "startup": render_startup,
    "distribute": render_distribute,
    "matmul-peaks": render_matmul_peaks,
}


# ---------------------------------------------------------------------------------------------
# Values: figures computed from several fields, addressed like any other path

def _matmul_ms(r):
    profile = r["profile"]
    return profile["kernel_ms_per_step"] * profile["matmul_share"]


DERIVED = {
    # Matrix-product kernel time per step, and the MFU if every other kernel took no time.
    "profile.matmul_ms_per_step": _matmul_ms,
    "profile.matmul_only_mfu": lambda r: (r["profile"]["model_gflop_per_step"] / _matmul_ms(r)
                                          * 1000 / r["profile"]["matmul_gflops"]),
    "profile.other_kernels_per_step": lambda r: sum(
        g["kernels_per_step"] for g in r["profile"]["groups"] if g["gflops"] is None),
    # How many times the tokens per second the Transformer's training uses, the pipeline makes.
    "training.pipeline_headroom": lambda r: (
        r["training"]["results"]["pipeline"]["tokens_per_s"]["median"]
        / r["training"]["results"]["transformer"]["tokens_per_s"]["median"]),
    "matmul.lowest": lambda r: min(r[name]["matmul_gflops"] for name in PEAK_FILES),
    "matmul.highest": lambda r: max(r[name]["matmul_gflops"] for name in PEAK_FILES),
}


def lookup(results, path):
    if path in DERIVED:
        return DERIVED[path](results)
    stem, *keys = path.split(".")
    value = results[stem]
    for key in keys:
        value = value[int(key)] if isinstance(value, list) else value[key]
    return value


def format_value(value, spec):
    spec, _, scale = spec.partition("*")
    return format(value * float(scale) if scale else value, spec)


# ---------------------------------------------------------------------------------------------
# Rewriting and checking

def placeholder(reason):
    return (f"_Not rendered: {reason}. Add it, then run `python docs/render_tables.py`._")


def render_text(text, results, where, notes):
    """`text` with every marked block rendered; notes about skipped blocks go to `notes`."""
    for line_no, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("<!-- value:"):
            raise SystemExit(f"{where}:{line_no}: a value marker must not start a line")

    def table_block(match):
        name = match["name"]
        if name not in TABLES:
            raise SystemExit(f"{where}: unknown table {name!r}; known: {', '.join(TABLES)}")
        try:
            body = TABLES[name](results)
        except Missing as e:
            # Keep what is there (it cannot be checked); an empty block gets a placeholder.
            notes.append(f"{where}: table {name!r} not checked: {e}")
            if match["body"].strip():
                return match[0]
            body = placeholder(str(e))
        except (KeyError, IndexError, TypeError) as e:
            raise SystemExit(f"{where}: table {name!r} cannot be rendered: its JSON has no "
                             f"{e} (has the result format changed? update {Path(__file__).name})")
        return f"{match['open']}\n{body}\n\n{match['close']}"

    def value(match):
        try:
            shown = format_value(lookup(results, match["path"]), match["spec"])
        except Missing as e:
            notes.append(f"{where}: value {match['path']!r} not checked: {e}")
            return match[0]
        except (KeyError, IndexError, ValueError, TypeError) as e:
            raise SystemExit(f"{where}: value {match['path']!r} {match['spec']!r}: "
                             f"{type(e).__name__} {e}")
        return f"{match['open']}{shown}{match['close']}"

    return VALUE.sub(value, TABLE.sub(table_block, text))


def documents(root):
    root = Path(root)
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def first_difference(old, new):
    for line_no, (a, b) in enumerate(zip(old.splitlines(), new.splitlines()), 1):
        if a != b:
            return f"line {line_no}: has {a.strip()!r}, the JSON gives {b.strip()!r}"
    return "the blocks differ in length"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="compare only; exit status 1 if a rendered block is out of date")
    parser.add_argument("--root", type=Path, default=ROOT,
                        help="repository root (default: the one this script is in)")
    args = parser.parse_args(argv)
    results = Results(args.root / RESULTS)
    notes, stale = [], []
    for path in documents(args.root):
        if not path.is_file():
            continue
        where = path.relative_to(args.root).as_posix()
        old = path.read_text(encoding="utf-8")
        new = render_text(old, results, where, notes)
        if new == old:
            continue
        if args.check:
            stale.append(f"{where}: out of date with bench/results/ ({first_difference(old, new)})")
        else:
            path.write_text(new, encoding="utf-8")
            print(f"rewrote {where}")
    for note in dict.fromkeys(notes):
        print(f"note: {note}")
    for line in stale:
        print(line)
    if stale:
        print("run `python docs/render_tables.py` to render them from the JSON files")
        return 1
    if args.check:
        print("docs match bench/results/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
