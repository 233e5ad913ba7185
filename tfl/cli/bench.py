"""`tfl bench`: runs the benchmark suite in the repository's `bench/` folder."""

from tfl.cli.common import add_json_flag

BENCHMARKS = ["startup", "training", "generation", "compression", "profile"]


def bench(args):
    import subprocess
    import sys
    from pathlib import Path

    from tfl.errors import TflError

    suite = Path(__file__).resolve().parents[2] / "bench" / "suite.py"
    if not suite.is_file():
        raise TflError("tfl bench runs the scripts in the repository's bench/ folder; run it "
                       "from a clone of tfl (pip install -e .)")
    command = [sys.executable, str(suite),
               *(["--only", *args.only] if args.only else []),
               *(["--quick"] if args.quick else []),
               *(["--out", args.out] if args.out else []),
               *(["--update-reference"] if args.update_reference else []),
               *(["--json"] if args.json else [])]
    return subprocess.run(command).returncode


def add_commands(commands):
    parser = commands.add_parser(
        "bench", help="run the benchmark suite (bench/); results go to saved_models/bench/")
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS)
    parser.add_argument("--quick", action="store_true",
                        help="fewer steps and repeats: a smoke run that records no history")
    parser.add_argument("--out", help="output folder (default saved_models/bench/, or saved_models/bench/quick/ "
                             "with --quick)")
    parser.add_argument("--update-reference", action="store_true",
                        help="also refresh the committed reference results in bench/results/")
    add_json_flag(parser)
    parser.set_defaults(handler=bench, needs_tensorflow=False)
