"""`tfl eval` (a trained run's perplexity) and `tfl ngram` (the n-gram baseline's)."""

from tfl.cli.common import add_data_dir, add_json_flag, print_result


def render_evaluation(result):
    """A table: model, split, loss, perplexity, bits per character."""
    width = max(len(row["model"]) for row in result["rows"])
    lines = [f"{'model':{width}s} {'split':11s} {'loss':>8s} {'perplexity':>11s} {'bits/char':>10s}"]
    for row in result["rows"]:
        lines.append(f"{row['model']:{width}s} {row['split']:11s} {row['loss']:8.4f} "
                     f"{row['perplexity']:11.3f} {row['bits_per_char']:10.4f}")
    return "\n".join(lines)


def evaluate(args):
    from tfl.inference.evaluate import evaluate_run

    result = evaluate_run(args.run_dir, splits=args.split, max_chars=args.max_chars,
                          ngram_order=args.ngram, data_dir=args.data_dir)
    print_result(args, result, render_evaluation)


def ngram(args):
    from tfl.models.ngram import ngram_baselines

    result = ngram_baselines(args.corpus, tokenizer=args.tokenizer, vocab_size=args.vocab_size,
                             orders=args.order, smoothing=args.smoothing, split=args.split,
                             data_dir=args.data_dir)
    print_result(args, result, render_evaluation)


def add_commands(commands):
    parser = commands.add_parser("eval", help="perplexity and bits per character of a run")
    parser.add_argument("run_dir")
    parser.add_argument("--split", nargs="+", default=["validation", "test"],
                        help="splits to evaluate (empty splits are skipped)")
    parser.add_argument("--max-chars", type=int, default=None, metavar="N",
                        help="evaluate only the first N characters of each split (N >= 1)")
    parser.add_argument("--ngram", type=int, default=0, metavar="N",
                        help="also fit and evaluate an N-gram Kneser-Ney baseline (N >= 1; "
                        "1 is a unigram model; default 0: none)")
    add_data_dir(parser)
    add_json_flag(parser)
    parser.set_defaults(handler=evaluate)

    baseline = commands.add_parser("ngram", help="the n-gram baseline's perplexity on a corpus")
    baseline.add_argument("corpus")
    baseline.add_argument("--tokenizer", default="char")
    baseline.add_argument("--vocab-size", type=int, default=None)
    baseline.add_argument("--order", type=int, nargs="+", default=[3, 5],
                          help="n-gram orders, each at least 1 (1 is a unigram model)")
    baseline.add_argument("--smoothing", choices=["kneser_ney", "add_k"], default="kneser_ney")
    baseline.add_argument("--split", default="validation")
    add_data_dir(baseline)
    add_json_flag(baseline)
    baseline.set_defaults(handler=ngram, needs_tensorflow=False)
