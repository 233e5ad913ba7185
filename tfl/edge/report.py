"""`tfl optimize`: every compression variant of a run, exported to TFLite and measured.

For one trained run this writes, into one output directory:
- a `.tflite` file per variant: dense float32, float16, dynamic-range int8 and full int8; the
  pruned model (float32 and with the chosen quantization); the clustered model; and, with
  `qat=True`, the quantization-aware-trained model (int8);
- `report.md` and `report.json`: file size and gzip size (and their ratio to dense float32),
  validation perplexity (and its change from the Keras model's), median latency per generated
  token in the LiteRT interpreter, and the achieved sparsity or cluster count;
- `size_vs_perplexity.png`; `config.json` and `tokenizer/`, so each file generates on its own
  (`tfl generate --tflite DIR/pruned-dynamic-int8.tflite`).

Nothing is left in the output directory if any step fails.
"""

import numbers
import time
from pathlib import Path

from tfl.errors import TflError
from tfl.io import atomic_directory, write_json_atomic, write_text_atomic


def optimize_run(run_dir, out, prune=0.8, quantize="dynamic-int8", clusters=16, qat=False,
                 fine_tune_steps=1000, batch_size=None, max_chars=None, data_dir=None,
                 log=print):
    """Compress, export and measure a run (see the module docstring). Returns the report dict.

    Every option and `out` are checked before anything is loaded. `out` is a new folder, or
    one an earlier `optimize_run` wrote, which is replaced as a whole.

    Args:
        prune: target sparsity in [0, 1) (0 skips pruning).
        quantize: quantization applied to the pruned model ("dynamic-int8", "int8",
            "float16" or "float32").
        clusters: clusters per weight matrix, at least 2 (0 skips clustering).
        qat: also run quantization-aware training.
        fine_tune_steps: training steps while pruning (clustering and QAT use a third).
        batch_size: fine-tuning batch (default: the run's training batch).
        max_chars: measure perplexity on only the first `max_chars` of the validation split.
        log: where messages go (None: nowhere); with a `log`, long steps show progress lines.

    >>> report = optimize_run("saved_models/tx", "saved_models/tx-optimized")  # doctest: +SKIP
    >>> [row["variant"] for row in report["rows"]][:2]  # doctest: +SKIP
    ['dense-float32', 'dense-float16']
    """
    from tfl.data import load_corpus
    from tfl.edge import compression
    from tfl.edge.export import (QUANTIZATIONS, calibration_windows_for_run, check_output_folder,
                                 save_export_metadata, tflite_converter)
    from tfl.edge.litert import LiteRTModel, measure_tflite
    from tfl.inference.evaluate import evaluate_ids
    from tfl.io import mark_output
    from tfl.models.twin import make_twin
    from tfl.run import load_run

    if quantize not in QUANTIZATIONS:
        raise TflError(f"--quantize takes one of {', '.join(QUANTIZATIONS)}, not {quantize!r}")
    compression.check_options(prune, clusters, fine_tune_steps, batch_size)
    if max_chars is not None and not (isinstance(max_chars, numbers.Integral)
                                      and max_chars >= 1):
        raise TflError(f"--max-chars takes a whole number of at least 1, got {max_chars}")
    check_output_folder(out, "optimize", run_dir)
    show_progress = log is not None
    log = log or (lambda *a, **k: None)
    run = load_run(run_dir)
    config = run.model_config
    corpus = load_corpus(run.data.corpus, data_dir=data_dir)
    if not corpus.validation:
        raise TflError(f"{corpus.name} has no validation split to measure perplexity on")
    train_ids = run.tokenizer.encode(corpus.train)
    val_ids = run.tokenizer.encode(corpus.validation[:max_chars])
    prompt_ids = run.tokenizer.encode(corpus.validation[:8])
    batch_size = batch_size or run.train_config.batch_size
    dense = make_twin(run.model, config)
    twin_difference = compression.twin_check(run.model, dense, config)
    keras_eval = evaluate_ids(run.model, val_ids, config.seq_len)
    log(f"Keras model: validation perplexity {keras_eval['perplexity']:.4f}; tf_keras twin "
        f"matches to {twin_difference:.1e}")
    calibration = calibration_windows_for_run(run, data_dir=data_dir)

    models = {"dense": (dense, {})}
    fine_tune = {"batch_size": batch_size, "show_progress": show_progress}
    if prune:
        log(f"pruning to {prune:.0%} sparsity over {fine_tune_steps} fine-tuning steps ...")
        models["pruned"] = compression.prune(run.model, config, train_ids, prune,
                                             steps=fine_tune_steps, **fine_tune)
    if clusters:
        steps = max(2, fine_tune_steps // 3)
        log(f"clustering to {clusters} values per matrix over {steps} steps ...")
        models["clustered"] = compression.cluster(run.model, config, train_ids, clusters,
                                                  steps=steps, **fine_tune)
    if qat:
        steps = max(2, fine_tune_steps // 3)
        log(f"quantization-aware training of the Dense layers over {steps} steps ...")
        models["qat"] = compression.quantization_aware(run.model, config, train_ids,
                                                       steps=steps, **fine_tune)

    # The TFLite variants of each model (a model is traced once for all of its variants).
    plan = {"dense": QUANTIZATIONS, "pruned": list(dict.fromkeys(["float32", quantize])),
            "clustered": ["float32"], "qat": ["int8"]}

    out = Path(out).expanduser()
    rows = []
    with atomic_directory(out) as tmp:
        mark_output(tmp, "optimize")
        save_export_metadata(run, tmp)
        total = sum(len(plan[source]) for source in models)
        for source, (model, details) in models.items():
            with tflite_converter(model, config) as convert:
                for quantization in plan[source]:
                    name = f"{source}-{quantization}"
                    counter = f"[{len(rows) + 1}/{total}] {name}"
                    converting, evaluating = ((f"{counter}: TFLite conversion",
                                               f"{counter}: LiteRT evaluation") if show_progress
                                              else (None, None))
                    started = time.perf_counter()
                    (tmp / f"{name}.tflite").write_bytes(
                        convert(quantization, calibration, converting))
                    measured = measure_tflite(LiteRTModel(tmp / f"{name}.tflite", config=config),
                                              val_ids, prompt_ids, progress_label=evaluating)
                    rows.append({"variant": name, "file": f"{name}.tflite", "source": source,
                                 "quantization": quantization, **measured, **_summary(details)})
                    log(f"  {name:22s} {measured['bytes']:>10,} bytes  perplexity "
                        f"{measured['perplexity']:.4f}  ({time.perf_counter() - started:.0f} s)")
        reference = rows[0]
        for row in rows:
            row["size_ratio"] = reference["bytes"] / row["bytes"]
            row["gzip_ratio"] = reference["bytes"] / row["gzip_bytes"]
            row["perplexity_change"] = row["perplexity"] / keras_eval["perplexity"] - 1
        report = {
            "run_dir": str(run_dir), "architecture": config.architecture,
            "keras": keras_eval, "twin_max_logit_difference": twin_difference,
            "validation_chars": len(corpus.validation[:max_chars]),
            "rows": rows,
            "compression": {source: details for source, (_, details) in models.items()
                            if details},
            "left_dense_by_pruning": compression.left_dense(config) if prune else {},
        }
        write_json_atomic(tmp / "report.json", report)
        write_text_atomic(tmp / "report.md", render_report(report))
        plot_size_vs_perplexity(report, tmp / "size_vs_perplexity.png")
    report["out"] = str(out)
    return report


def _summary(details):
    if "achieved_sparsity" in details:
        return {"sparsity": details["achieved_sparsity"]["overall"]}
    if "max_distinct_values" in details:
        return {"distinct_values": details["max_distinct_values"]}
    return {}


def render_report(report):
    """The report as a Markdown table (sizes relative to dense float32, the first row)."""
    keras_ppl = report["keras"]["perplexity"]
    lines = [
        f"# Compression report: {report['run_dir']} ({report['architecture']})",
        "",
        f"Keras model validation perplexity: {keras_ppl:.4f} "
        f"({report['keras']['tokens']:,} tokens). tf_keras twin logits within "
        f"{report['twin_max_logit_difference']:.1e} of the Keras model.",
        "",
        "| variant | bytes | gzip bytes | smaller (x) | smaller after gzip (x) | perplexity | "
        "vs Keras | ms / token | sparsity |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in report["rows"]:
        sparsity = f"{row['sparsity']:.1%}" if "sparsity" in row else ""
        lines.append(
            f"| {row['variant']} | {row['bytes']:,} | {row['gzip_bytes']:,} | "
            f"{row['size_ratio']:.2f} | {row['gzip_ratio']:.2f} | {row['perplexity']:.4f} | "
            f"{row['perplexity_change']:+.2%} | {row['ms_per_token']:.3f} | {sparsity} |")
    qat = report["compression"].get("qat")
    if qat:
        lines += ["", "Quantization-aware training covered: "
                  + ", ".join(qat["quantized_layers"]) + ". Not covered (kept float during "
                  "QAT): " + "; ".join(f"{k} ({v})" for k, v in qat["not_quantized"].items())
                  + "."]
    if report["left_dense_by_pruning"]:
        lines += ["", "Left dense by pruning: " + "; ".join(
            f"{k}: {v}" for k, v in report["left_dense_by_pruning"].items()) + "."]
    lines += ["", "Sizes compare with the dense float32 file; `ms / token` is the median "
              "latency of one greedy token in the LiteRT interpreter on this machine."]
    return "\n".join(lines) + "\n"


def plot_size_vs_perplexity(report, path):
    """Each variant's gzip size against its validation perplexity, saved as a PNG at `path`."""
    from tfl.plotting import figure

    with figure(path, size=(7, 4.5)) as ax:
        for row in report["rows"]:
            ax.scatter(row["gzip_bytes"] / 1024, row["perplexity"], s=30)
            ax.annotate(row["variant"], (row["gzip_bytes"] / 1024, row["perplexity"]),
                        fontsize=8, xytext=(4, 3), textcoords="offset points")
        ax.axhline(report["keras"]["perplexity"], color="grey", linestyle="--", linewidth=1,
                   label="Keras model")
        ax.set_xscale("log")
        ax.set_xlabel("gzip size (KiB, log scale)")
        ax.set_ylabel("validation perplexity")
        ax.set_title(f"Size versus perplexity: {report['architecture']}")
        ax.grid(alpha=0.3)
        ax.legend()

