"""`tfl quickstart`: the whole path, end to end, with settings worth looking at.

Corpus -> character tokenizer -> a small Transformer and a small LSTM trained on it -> perplexity
and bits per character against a 5-gram Kneser-Ney baseline -> generated text -> the Transformer
pruned, clustered and quantized, exported to TFLite, measured, and generating text from the
pruned int8 file with the LiteRT interpreter -> a summary table (`summary.md`, `summary.json`)
and plots, all under `saved_models/quickstart/`.

`fast=True` runs the same path with tiny models in about a minute (for CI).
Re-running resumes or reuses the runs already in the output directory.
"""

import time
from pathlib import Path

from tfl.io import write_json_atomic, write_text_atomic

FULL = {
    "models": [
        ("transformer", "char-cpu", dict(steps=2000, batch_size=12, eval_interval=250)),
        ("lstm", "char-cpu", dict(steps=300, batch_size=32, eval_interval=100)),
    ],
    "ngram_order": 5,
    "eval_chars": None,
    "sample_tokens": 300,
    "fine_tune_steps": 1000,
}
FAST = {
    "models": [
        ("transformer", "nano", dict(steps=300, batch_size=16, eval_interval=150, eval_batches=5,
                                     learning_rate=3e-3, warmup_steps=20)),
        ("lstm", "nano", dict(steps=300, batch_size=16, eval_interval=150, eval_batches=5,
                              learning_rate=1e-2, warmup_steps=20)),
    ],
    "ngram_order": 3,
    "eval_chars": 20_000,
    "sample_tokens": 60,
    "fine_tune_steps": 20,
}
PROMPT = "\n"


def run_quickstart(out_dir="saved_models/quickstart", fast=False, corpus="tiny_shakespeare",
                   data_dir=None, log=print):
    """Run the quickstart into `out_dir`; returns the summary dict (also in summary.json)."""
    from tfl.data.corpora import load_corpus_or_fallback
    from tfl.edge.report import optimize_run
    from tfl.inference.evaluate import evaluate_split
    from tfl.inference.generate import generate
    from tfl.edge.litert import generate_tflite
    from tfl.models.ngram import ngram_baseline
    from tfl.run import load_run
    from tfl.tokenizers import build_tokenizer, tokenizer_stats
    from tfl.training.config import TrainConfig
    from tfl.training.workflow import train

    quiet = log is None  # long steps show progress only for a caller that logs
    log = log or (lambda *a, **k: None)
    plan = FAST if fast else FULL
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    log("== 1. corpus")
    corpus_obj = load_corpus_or_fallback(corpus, data_dir, log)
    sizes = corpus_obj.split_sizes()
    log(f"{corpus_obj.name}: {len(corpus_obj.text):,} characters "
        f"(train {sizes['train']:,}, validation {sizes['validation']:,})")

    log("== 2. tokenizer")
    tokenizer = build_tokenizer("char", corpus_obj.train)
    stats = tokenizer_stats(tokenizer, corpus_obj.validation)
    log(f"character vocabulary of {tokenizer.vocab_size} ids; unknown rate on validation "
        f"{100 * stats.unk_rate:.3f}%")

    log(f"== 3. baseline: {plan['ngram_order']}-gram Kneser-Ney")
    baseline = ngram_baseline(corpus_obj, tokenizer, order=plan["ngram_order"],
                              max_chars=plan["eval_chars"])
    rows = [{"model": f"{plan['ngram_order']}-gram Kneser-Ney", "parameters": None,
             "steps": None, "train_seconds": None, **_metrics(baseline), "sample": None}]
    log(f"validation loss {baseline['loss']:.4f}, perplexity {baseline['perplexity']:.3f}")

    histories = {}
    for architecture, preset, options in plan["models"]:
        name = f"{architecture}-{preset}"
        log(f"== 4. train {name}")
        config = TrainConfig(sample_tokens=0 if fast else 100, **options)
        history = train(architecture, preset, corpus_obj.name, out / name,
                        train_config=config, data_dir=data_dir, log=None if quiet else log)
        histories[name] = history
        run = load_run(out / name)
        result = evaluate_split(run.model, run.tokenizer, corpus_obj.validation,
                                run.model_config.seq_len, max_chars=plan["eval_chars"])
        sample = generate(run, PROMPT, plan["sample_tokens"], sampler="top_k", top_k=10,
                          temperature=0.8, seed=0)
        rows.append({"model": name, "parameters": run.model.count_params(),
                     "steps": history[-1]["step"],
                     "train_seconds": round(sum(r["interval_seconds"] for r in history), 1),
                     **_metrics(result), "sample": sample})
        log(f"validation loss {result['loss']:.4f}, perplexity {result['perplexity']:.3f}")
        log(f"sample (top-k 10, temperature 0.8, seed 0):\n{sample}")

    architecture, preset, _ = plan["models"][0]
    name = f"{architecture}-{preset}"
    log(f"== 5. compress and export {name}: pruning, clustering, quantization, TFLite")
    compression = optimize_run(out / name, out / f"{name}-tflite", prune=0.8,
                               quantize="dynamic-int8", clusters=16,
                               fine_tune_steps=plan["fine_tune_steps"],
                               max_chars=plan["eval_chars"], data_dir=data_dir,
                               log=None if quiet else log)
    edge_file = out / f"{name}-tflite" / "pruned-dynamic-int8.tflite"
    edge_sample = generate_tflite(edge_file, PROMPT, plan["sample_tokens"], sampler="top_k",
                                  top_k=10, temperature=0.8, seed=0)
    log(f"sample from {edge_file.name} in the LiteRT interpreter:\n{edge_sample}")

    log("== 6. summary")
    _plot_losses(histories, baseline["loss"], out / "loss_curves.png")
    _plot_perplexities(rows, out / "perplexity.png")
    summary = {
        "corpus": corpus_obj.name,
        "fast": fast,
        "tokenizer": {"kind": "char", "vocab_size": tokenizer.vocab_size},
        "rows": rows,
        "compression": {"model": name, "rows": compression["rows"],
                        "keras_perplexity": compression["keras"]["perplexity"],
                        "edge_file": str(edge_file), "edge_sample": edge_sample},
        "seconds": round(time.perf_counter() - started, 1),
        "files": ["summary.md", "summary.json", "loss_curves.png", "perplexity.png",
                  f"{name}-tflite/report.md", f"{name}-tflite/size_vs_perplexity.png"],
        "out_dir": str(out),
    }
    write_json_atomic(out / "summary.json", summary)
    write_text_atomic(out / "summary.md", render_summary(summary) + "\n")
    return summary


def _metrics(result):
    return {"val_loss": round(result["loss"], 4), "perplexity": round(result["perplexity"], 3),
            "bits_per_char": round(result["bits_per_char"], 4)}


def render_summary(summary):
    """The summary as a Markdown table, followed by the samples."""
    lines = [
        f"Corpus: {summary['corpus']}, character tokenizer ({summary['tokenizer']['vocab_size']} "
        f"ids){' (fast settings)' if summary['fast'] else ''}; {summary['seconds']:.0f} s in all.",
        "",
        "| model | parameters | steps | train s | val loss | perplexity | bits/char |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in summary["rows"]:
        params = f"{r['parameters']:,}" if r["parameters"] else "counts"
        steps = r["steps"] if r["steps"] is not None else "-"
        seconds = r["train_seconds"] if r["train_seconds"] is not None else "-"
        lines.append(f"| {r['model']} | {params} | {steps} | {seconds} | {r['val_loss']:.4f} | "
                     f"{r['perplexity']:.3f} | {r['bits_per_char']:.4f} |")
    for r in summary["rows"]:
        if r["sample"]:
            lines += ["", f"Sample from {r['model']} (top-k 10, temperature 0.8, seed 0):", "",
                      "```", r["sample"], "```"]
    compression = summary.get("compression")
    if compression:
        lines += ["", f"Compressed and exported {compression['model']} (Keras perplexity "
                  f"{compression['keras_perplexity']:.3f}; sizes relative to float32 TFLite):",
                  "", "| TFLite file | bytes | gzip bytes | x smaller (gzip) | perplexity | "
                  "ms / token |", "|---|---:|---:|---:|---:|---:|"]
        for r in compression["rows"]:
            lines.append(f"| {r['file']} | {r['bytes']:,} | {r['gzip_bytes']:,} | "
                         f"{r['gzip_ratio']:.1f} | {r['perplexity']:.3f} | "
                         f"{r['ms_per_token']:.2f} |")
        lines += ["", f"Sample from {Path(compression['edge_file']).name} in the LiteRT "
                  "interpreter (top-k 10, temperature 0.8, seed 0):", "", "```",
                  compression["edge_sample"], "```"]
    lines += ["", "Plots: " + ", ".join(f for f in summary["files"] if f.endswith(".png"))]
    return "\n".join(lines)


def _plot_losses(histories, baseline_loss, path):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    for name, history in histories.items():
        ax.plot([r["tokens"] for r in history], [r["val_loss"] for r in history], marker="o",
                label=f"{name} (validation)")
    ax.axhline(baseline_loss, color="gray", linestyle="--", label="n-gram baseline")
    ax.set_xlabel("training tokens")
    ax.set_ylabel("loss (nats / token)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def _plot_perplexities(rows, path):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.5))
    ax = fig.subplots()
    ax.bar([r["model"] for r in rows], [r["perplexity"] for r in rows], color="tab:blue")
    ax.set_ylabel("validation perplexity")
    ax.tick_params(axis="x", labelrotation=15)
    fig.tight_layout()
    fig.savefig(path, dpi=100)

