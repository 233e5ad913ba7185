"""What every `tfl` command shares: `--json`, `--data-dir`, and printing a result.

A command handler returns a result dict; `print_result` prints it as JSON (`--json`) or through
the command's renderer. Handlers import what they need when they run, so `tfl --help` starts
without TensorFlow.
"""

import functools
import json


def print_result(args, result, render):
    """Print `result` as one JSON object with `--json`, else as `render(result)`."""
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        print(render(result))


def add_json_flag(parser):
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def add_data_dir(parser):
    parser.add_argument(
        "--data-dir",
        help="directory searched first for local copies of named corpora "
        "(also: the TFL_DATA_DIR environment variable)",
    )


def log_unless_json(args):
    """`print` for progress messages, or None when stdout is reserved for JSON."""
    # Flushed at once: a user reading through a pipe (or a log file) sees progress as it happens.
    return None if args.json else functools.partial(print, flush=True)
