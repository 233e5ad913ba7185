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
        args.handler(args)
    except TflError as e:
        print(f"tfl: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tfl: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `tfl data inspect ... --json | head`
        sys.stderr.close()
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
