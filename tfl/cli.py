"""The `tfl` command line.

Each subcommand imports what it needs when it runs, so `tfl --help` starts without TensorFlow.
A user's mistake (a `TflError`) prints one line, `tfl: error: ...`, and exits with status 2.
Every subcommand takes `--json` and then prints one JSON object on stdout.

    tfl data list
    tfl data inspect tiny_shakespeare --tokenizer char
    tfl quickstart --fast
"""

import argparse
import json
import sys

from tfl import __version__


def _print(args, result, render):
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        print(render(result))


# --- tfl data ---------------------------------------------------------------------------------


def cmd_data_list(args):
    from tfl.data.corpora import available_corpora

    corpora = available_corpora()
    _print(args, {"corpora": corpora},
           lambda r: "\n".join(f"{name:18s} {desc}" for name, desc in r["corpora"].items()))


def cmd_data_inspect(args):
    from tfl.data.inspect import inspect_corpus, render_inspection

    result = inspect_corpus(
        args.corpus,
        tokenizer=args.tokenizer,
        vocab_size=args.vocab_size,
        seq_len=args.seq_len,
        batch_size=args.batch_size,
        data_dir=args.data_dir,
        seed=args.seed,
    )
    _print(args, result, render_inspection)


# --- tfl train / eval / ngram -----------------------------------------------------------------


def cmd_train(args):
    from tfl.training.config import TrainConfig
    from tfl.training.workflow import train

    options = {"steps": args.steps, "batch_size": args.batch_size, "seed": args.seed,
               "learning_rate": args.learning_rate, "eval_interval": args.eval_interval,
               "jit_compile": not args.no_jit, "mixed_precision": args.mixed_precision,
               "sample_tokens": args.sample_tokens, "clip_norm": args.clip_norm}
    if args.epochs:
        options["steps"] = _steps_for_epochs(args)
    train_config = TrainConfig.from_dict({k: v for k, v in options.items() if v is not None})
    out = args.out or f"saved_models/{args.model}-{args.preset}-{_slug(args.data)}"
    overrides = {}
    if args.dropout is not None:
        overrides["dropout"] = args.dropout
    if args.position is not None:
        overrides["position"] = args.position
    history = train(args.model, args.preset, args.data, out, tokenizer=args.tokenizer,
                    vocab_size=args.vocab_size, train_config=train_config,
                    model_overrides=overrides or None, data_dir=args.data_dir,
                    log=None if args.json else print, devices=args.devices,
                    multi_worker=args.multi_worker)
    last = history[-1]
    result = {"run_dir": out, "steps": last["step"], "tokens": last["tokens"],
              "history_loss": [r["loss"] for r in history],
              "weights_sha256": history.weights_sha256,
              "loss": last["loss"], "val_loss": last["val_loss"],
              "best_val_loss": min(r["val_loss"] for r in history),
              "seconds": sum(r["interval_seconds"] for r in history)}
    _print(args, result, lambda r: (
        f"done: {r['steps']} steps, {r['tokens']:,} tokens in {r['seconds']:.0f} s; "
        f"validation loss {r['val_loss']:.4f} (best {r['best_val_loss']:.4f}) -> {r['run_dir']}"))


def cmd_tf_config(args):
    from tfl.errors import TflError
    from tfl.training.multi_worker import local_tf_configs

    if args.workers < 1:
        raise TflError(f"--workers must be at least 1, got {args.workers}")
    configs = local_tf_configs(args.workers)
    _print(args, {"tf_configs": configs}, lambda r: "\n".join(
        f"# worker {i}:\nexport TF_CONFIG='{c}'" for i, c in enumerate(r["tf_configs"])))


def _steps_for_epochs(args):
    """Steps for `--epochs` passes over the training windows of the chosen corpus."""
    from tfl.data import load_corpus, num_windows
    from tfl.models import config_class
    from tfl.tokenizers import build_tokenizer

    corpus = load_corpus(args.data, data_dir=args.data_dir)
    tok = build_tokenizer(args.tokenizer, corpus.train, vocab_size=args.vocab_size)
    seq_len = config_class(args.model).from_preset(args.preset, vocab_size=tok.vocab_size).seq_len
    windows = num_windows(len(tok.encode(corpus.train)), seq_len)
    batch = args.batch_size or 12
    return max(1, args.epochs * windows // batch)


def _slug(name):
    from pathlib import Path

    return Path(str(name)).stem.replace(" ", "_") or "corpus"


def cmd_eval(args):
    from tfl.inference.evaluate import evaluate_run

    result = evaluate_run(args.run_dir, splits=args.split, max_chars=args.max_chars,
                          ngram_order=args.ngram, data_dir=args.data_dir)
    _print(args, result, render_evaluation)


def render_evaluation(result):
    width = max(len(row["model"]) for row in result["rows"])
    lines = [f"{'model':{width}s} {'split':11s} {'loss':>8s} {'perplexity':>11s} {'bits/char':>10s}"]
    for row in result["rows"]:
        lines.append(f"{row['model']:{width}s} {row['split']:11s} {row['loss']:8.4f} "
                     f"{row['perplexity']:11.3f} {row['bits_per_char']:10.4f}")
    return "\n".join(lines)


def cmd_ngram(args):
    from tfl.data import load_corpus
    from tfl.models.ngram import ngram_baseline
    from tfl.tokenizers import build_tokenizer

    if args.tokenizer == "wordpiece":  # learned with TensorFlow Text
        from tfl.runtime import import_tensorflow_quietly

        import_tensorflow_quietly()
    corpus = load_corpus(args.corpus, data_dir=args.data_dir)
    tok = build_tokenizer(args.tokenizer, corpus.train, vocab_size=args.vocab_size)
    rows = []
    for order in args.order:
        r = ngram_baseline(corpus, tok, order=order, smoothing=args.smoothing, split=args.split)
        rows.append({"model": f"{order}-gram {args.smoothing}", **r})
    _print(args, {"corpus": corpus.name, "tokenizer": args.tokenizer, "rows": rows},
           render_evaluation)


# --- tfl generate -----------------------------------------------------------------------------


def cmd_generate(args):
    from tfl.inference.generate import generate

    def stream(piece):
        print(piece, end="", flush=True)

    if (args.run_dir is None) == (args.tflite is None):
        from tfl.errors import TflError

        raise TflError("give either a run directory or --tflite FILE")
    if not args.json:
        print(args.prompt, end="", flush=True)
    if args.tflite:
        from tfl.edge.litert import generate_tflite

        text = generate_tflite(args.tflite, args.prompt, args.max_new_tokens,
                               sampler=args.sampler, temperature=args.temperature,
                               top_k=args.top_k, top_p=args.top_p, seed=args.seed,
                               on_text=None if args.json else stream)
    else:
        text = generate(args.run_dir, args.prompt, args.max_new_tokens, sampler=args.sampler,
                        temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                        num_beams=args.num_beams, seed=args.seed, cached=not args.no_cache,
                        on_text=None if args.json else stream)
    if args.json:
        print(json.dumps({"prompt": args.prompt, "text": text, "sampler": args.sampler,
                          "seed": args.seed}, ensure_ascii=False, indent=2))
    else:
        print()


# --- tfl export / optimize ---------------------------------------------------------------------


def cmd_export(args):
    from tfl.edge.export import export_run

    result = export_run(args.run_dir, args.out, quantizations=args.quantize,
                        saved_model=not args.no_saved_model, data_dir=args.data_dir)
    _print(args, result, lambda r: "\n".join(
        ([f"SavedModel: {r['saved_model']}"] if r["saved_model"] else [])
        + [f"TFLite {q}: {path}" for q, path in r["tflite"].items()]))


def cmd_optimize(args):
    from tfl.edge.report import optimize_run, render_report

    report = optimize_run(args.run_dir, args.out, prune=args.prune, quantize=args.quantize,
                          clusters=args.cluster, qat=args.qat,
                          fine_tune_steps=args.fine_tune_steps, batch_size=args.batch_size,
                          max_chars=args.max_chars, data_dir=args.data_dir,
                          log=None if args.json else print)
    _print(args, report, lambda r: render_report(r) + f"\nwritten to {r['out']}")


# --- tfl bench -------------------------------------------------------------------------------


def cmd_bench(args):
    import subprocess
    from pathlib import Path

    from tfl.errors import TflError

    suite = Path(__file__).resolve().parents[1] / "bench" / "suite.py"
    if not suite.is_file():
        raise TflError("tfl bench runs the scripts in the repository's bench/ folder; run it "
                       "from a clone of tfl (pip install -e .)")
    command = [sys.executable, str(suite), *(["--only", *args.only] if args.only else []),
               *(["--quick"] if args.quick else [])]
    return subprocess.run(command).returncode


# --- tfl quickstart ---------------------------------------------------------------------------


def cmd_quickstart(args):
    from tfl.quickstart import render_summary, run_quickstart

    result = run_quickstart(out_dir=args.out, fast=args.fast, corpus=args.data,
                            data_dir=args.data_dir, log=None if args.json else print)
    _print(args, result, render_summary)


# --- parser -----------------------------------------------------------------------------------


def _add_common(parser):
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def _add_data_source(parser):
    parser.add_argument(
        "--data-dir",
        help="directory searched first for local copies of named corpora "
        "(also: the TFL_DATA_DIR environment variable)",
    )


def build_parser():
    parser = argparse.ArgumentParser(
        prog="tfl",
        description="Language models from theory to practice, in Keras and TensorFlow.",
    )
    parser.add_argument("--version", action="version", version=f"tfl {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    data = commands.add_parser("data", help="corpora: list them, inspect one")
    data_commands = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    listing = data_commands.add_parser("list", help="list the named corpora")
    _add_common(listing)
    listing.set_defaults(handler=cmd_data_list, needs_tensorflow=False)
    inspect = data_commands.add_parser(
        "inspect", help="sizes, vocabulary, split sizes and an example batch decoded back to text"
    )
    inspect.add_argument("corpus", help="a named corpus (see `tfl data list`) or a path or glob")
    inspect.add_argument("--tokenizer", default="char", help="char, byte, word or wordpiece")
    inspect.add_argument("--vocab-size", type=int, default=None, help="target vocabulary size")
    inspect.add_argument("--seq-len", type=int, default=64, help="tokens per example")
    inspect.add_argument("--batch-size", type=int, default=4, help="examples per batch")
    inspect.add_argument("--seed", type=int, default=0, help="shuffle seed for the example batch")
    _add_data_source(inspect)
    _add_common(inspect)
    inspect.set_defaults(handler=cmd_data_inspect)

    train = commands.add_parser("train", help="train an LSTM or Transformer into a run directory")
    train.add_argument("--model", choices=["lstm", "transformer"], default="transformer")
    train.add_argument("--preset", default="char-cpu", help="nano, micro, char-cpu or char-gpu")
    train.add_argument("--data", default="tiny_shakespeare", help="corpus name or path")
    train.add_argument("--tokenizer", default="char", help="char, byte, word or wordpiece")
    train.add_argument("--vocab-size", type=int, default=None)
    length = train.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, default=None, help="optimizer steps (default 2000)")
    length.add_argument("--epochs", type=int, default=None, help="passes over the training split")
    train.add_argument("--batch-size", type=int, default=None, help="global batch (default 12)")
    train.add_argument("--learning-rate", type=float, default=None)
    train.add_argument("--dropout", type=float, default=None, help="override the preset's dropout")
    train.add_argument("--position", choices=["learned", "sinusoidal", "rotary"], default=None,
                       help="Transformer position encoding (default: the preset's, learned)")
    train.add_argument("--clip-norm", type=float, default=None,
                       help="global gradient-norm clipping (default 1.0; 0 turns it off)")
    train.add_argument("--eval-interval", type=int, default=None,
                       help="steps between evaluation, checkpoint and sample (default 250)")
    train.add_argument("--sample-tokens", type=int, default=None,
                       help="tokens in the greedy sample after each interval (0: none)")
    train.add_argument("--seed", type=int, default=None)
    train.add_argument("--no-jit", action="store_true", help="do not compile with XLA")
    train.add_argument("--mixed-precision", action="store_true")
    train.add_argument("--devices", default=None,
                       help="mirror over N devices (GPUs, else N logical CPU devices) or 'auto'")
    train.add_argument("--multi-worker", action="store_true",
                       help="train as one worker of the cluster in TF_CONFIG "
                            "(see `tfl tf-config`); only the chief writes --out")
    train.add_argument("--out", help="run directory (default saved_models/MODEL-PRESET-CORPUS)")
    _add_data_source(train)
    _add_common(train)
    train.set_defaults(handler=cmd_train)

    tf_config = commands.add_parser(
        "tf-config", help="print a TF_CONFIG per worker for a cluster on this machine")
    tf_config.add_argument("--workers", type=int, default=2)
    _add_common(tf_config)
    tf_config.set_defaults(handler=cmd_tf_config, needs_tensorflow=False)

    evaluate = commands.add_parser("eval", help="perplexity and bits per character of a run")
    evaluate.add_argument("run_dir")
    evaluate.add_argument("--split", nargs="+", default=["validation", "test"],
                          help="splits to evaluate (empty splits are skipped)")
    evaluate.add_argument("--max-chars", type=int, default=None,
                          help="evaluate only the first N characters of each split")
    evaluate.add_argument("--ngram", type=int, default=0, metavar="N",
                          help="also fit and evaluate an N-gram Kneser-Ney baseline")
    _add_data_source(evaluate)
    _add_common(evaluate)
    evaluate.set_defaults(handler=cmd_eval)

    ngram = commands.add_parser("ngram", help="the n-gram baseline's perplexity on a corpus")
    ngram.add_argument("corpus")
    ngram.add_argument("--tokenizer", default="char")
    ngram.add_argument("--vocab-size", type=int, default=None)
    ngram.add_argument("--order", type=int, nargs="+", default=[3, 5])
    ngram.add_argument("--smoothing", choices=["kneser_ney", "add_k"], default="kneser_ney")
    ngram.add_argument("--split", default="validation")
    _add_data_source(ngram)
    _add_common(ngram)
    ngram.set_defaults(handler=cmd_ngram, needs_tensorflow=False)

    gen = commands.add_parser("generate", help="generate text from a run, streamed as it comes")
    gen.add_argument("run_dir", nargs="?")
    gen.add_argument("--tflite", metavar="FILE",
                     help="generate from an exported .tflite file instead of a run")
    gen.add_argument("--prompt", default="", help="text to continue (default: start of text)")
    gen.add_argument("--max-new-tokens", type=int, default=200)
    gen.add_argument("--sampler", default="top_k",
                     help="greedy, temperature, top_k, top_p or beam (default top_k)")
    gen.add_argument("--temperature", type=float, default=1.0)
    gen.add_argument("--top-k", type=int, default=10)
    gen.add_argument("--top-p", type=float, default=0.9)
    gen.add_argument("--num-beams", type=int, default=4)
    gen.add_argument("--seed", type=int, default=None, help="same seed, same text")
    gen.add_argument("--no-cache", action="store_true",
                     help="recompute the whole window for every token (slow; for comparison)")
    _add_common(gen)
    gen.set_defaults(handler=cmd_generate)

    export = commands.add_parser("export", help="export a run to SavedModel and TFLite")
    export.add_argument("run_dir")
    export.add_argument("--out", required=True, help="directory to write (replaced if present)")
    export.add_argument("--quantize", nargs="+", default=["float32"],
                        choices=["float32", "float16", "dynamic-int8", "int8"],
                        help="TFLite variants to write (default float32)")
    export.add_argument("--no-saved-model", action="store_true")
    _add_data_source(export)
    _add_common(export)
    export.set_defaults(handler=cmd_export)

    opt = commands.add_parser(
        "optimize", help="prune, cluster and quantize a run; measure every TFLite variant")
    opt.add_argument("run_dir")
    opt.add_argument("--out", required=True, help="directory to write (replaced if present)")
    opt.add_argument("--prune", type=float, default=0.8,
                     help="target sparsity of the pruned variant (0: no pruning; default 0.8)")
    opt.add_argument("--quantize", default="dynamic-int8",
                     help="quantization of the pruned variant: dynamic-int8 (default), int8 "
                          "(full integer), float16 or float32")
    opt.add_argument("--cluster", type=int, default=16,
                     help="clusters per weight matrix (0: no clustering; default 16)")
    opt.add_argument("--qat", action="store_true",
                     help="also run quantization-aware training (Dense layers)")
    opt.add_argument("--fine-tune-steps", type=int, default=1000,
                     help="training steps while pruning (clustering and QAT use a third)")
    opt.add_argument("--batch-size", type=int, default=None)
    opt.add_argument("--max-chars", type=int, default=None,
                     help="measure perplexity on the first N characters of validation only")
    _add_data_source(opt)
    _add_common(opt)
    opt.set_defaults(handler=cmd_optimize)

    bench = commands.add_parser(
        "bench", help="run the benchmark suite (bench/) and write bench/results/summary.*")
    bench.add_argument("--only", nargs="+",
                       choices=["startup", "training", "generation", "compression", "profile"])
    bench.add_argument("--quick", action="store_true",
                       help="fewer steps and repeats, results in bench/results/quick/")
    bench.set_defaults(handler=cmd_bench, needs_tensorflow=False)

    quick = commands.add_parser(
        "quickstart", help="the whole path end to end: corpus to summary table and plots"
    )
    quick.add_argument("--fast", action="store_true", help="tiny settings, about a minute (CI)")
    quick.add_argument("--data", default="tiny_shakespeare", help="corpus name or path")
    quick.add_argument("--out", default="saved_models/quickstart", help="output directory")
    _add_data_source(quick)
    _add_common(quick)
    quick.set_defaults(handler=cmd_quickstart)
    return parser


def main(argv=None):
    """Run the CLI; returns the exit status (0 ok, 2 for a user's mistake)."""
    from tfl.errors import TflError

    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "needs_tensorflow", True):
            from tfl.runtime import import_tensorflow_quietly

            import_tensorflow_quietly()
        status = args.handler(args)
    except TflError as e:
        print(f"tfl: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tfl: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `tfl data inspect ... --json | head`
        sys.stderr.close()
        return 0
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
