"""The `tfl` command line: one small module per command group, each parsing and calling.

    tfl data list
    tfl data inspect tiny_shakespeare --tokenizer char
    tfl train --model transformer --preset char-cpu --out saved_models/tx
    tfl quickstart --fast

Each command imports what it needs when it runs, so `tfl --help` starts without TensorFlow.
A user's mistake (a `TflError`, or a wrong option) prints one line, `tfl: error: ...`, and exits
with status 2. Every command takes `--json` and then prints one JSON object on stdout.
"""

import argparse
import sys

from tfl import __version__
from tfl.cli import bench, data, edge, evaluate, generate, quickstart, train

COMMAND_GROUPS = (data, train, evaluate, generate, edge, bench, quickstart)


class OneLineErrorParser(argparse.ArgumentParser):
    """An argument parser whose mistakes are one line (`tfl: error: ...`), not a usage block."""

    def error(self, message):
        self.exit(2, f"tfl: error: {message}; see `{self.prog} --help`\n")


def build_parser():
    parser = OneLineErrorParser(
        prog="tfl", description="Language models from theory to practice, in Keras and TensorFlow.")
    parser.add_argument("--version", action="version", version=f"tfl {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in COMMAND_GROUPS:
        group.add_commands(commands)
    return parser


def main(argv=None):
    """Run the CLI; returns the exit status (0 ok, 2 for a user's mistake, 130 interrupted)."""
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
