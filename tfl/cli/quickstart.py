"""`tfl quickstart`: the whole path end to end, from a corpus to a summary table."""

from tfl.cli.common import add_data_dir, add_json_flag, log_unless_json, print_result


def quickstart(args):
    from tfl.quickstart import render_summary, run_quickstart

    result = run_quickstart(out_dir=args.out, fast=args.fast, corpus=args.data,
                            data_dir=args.data_dir, log=log_unless_json(args))
    print_result(args, result, render_summary)


def add_commands(commands):
    parser = commands.add_parser(
        "quickstart", help="the whole path end to end: corpus to summary table and plots")
    parser.add_argument("--fast", action="store_true", help="tiny settings, about a minute (CI)")
    parser.add_argument("--data", default="tiny_shakespeare", help="corpus name or path")
    parser.add_argument("--out", default="saved_models/quickstart", help="output directory")
    add_data_dir(parser)
    add_json_flag(parser)
    parser.set_defaults(handler=quickstart)
