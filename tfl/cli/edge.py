"""`tfl export` (SavedModel and TFLite files) and `tfl optimize` (compress and measure)."""

from tfl.cli.common import add_data_dir, add_json_flag, log_unless_json, print_result


def export(args):
    from tfl.edge.export import export_run

    result = export_run(args.run_dir, args.out, quantizations=args.quantize,
                        saved_model=not args.no_saved_model, data_dir=args.data_dir,
                        log=log_unless_json(args))
    print_result(args, result, lambda r: "\n".join(
        ([f"SavedModel: {r['saved_model']}"] if r["saved_model"] else [])
        + [f"TFLite {q}: {path}" for q, path in r["tflite"].items()]))


def optimize(args):
    from tfl.edge.report import optimize_run, render_report

    report = optimize_run(args.run_dir, args.out, prune=args.prune, quantize=args.quantize,
                          clusters=args.cluster, qat=args.qat,
                          fine_tune_steps=args.fine_tune_steps, batch_size=args.batch_size,
                          max_chars=args.max_chars, data_dir=args.data_dir,
                          log=log_unless_json(args))
    print_result(args, report, lambda r: render_report(r) + f"\nwritten to {r['out']}")


def add_commands(commands):
    parser = commands.add_parser("export", help="export a run to SavedModel and TFLite")
    parser.add_argument("run_dir")
    parser.add_argument("--out", required=True,
                        help="a new folder to write, or a previous export's, which is replaced "
                             "(never a run or a folder holding other files)")
    parser.add_argument("--quantize", nargs="+", default=["float32"],
                        choices=["float32", "float16", "dynamic-int8", "int8"],
                        help="TFLite variants to write (default float32)")
    parser.add_argument("--no-saved-model", action="store_true")
    add_data_dir(parser)
    add_json_flag(parser)
    parser.set_defaults(handler=export)

    opt = commands.add_parser(
        "optimize", help="prune, cluster and quantize a run; measure every TFLite variant")
    opt.add_argument("run_dir")
    opt.add_argument("--out", required=True,
                     help="a new folder to write, or a previous optimize output, which is "
                          "replaced (never a run or a folder holding other files)")
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
    opt.add_argument("--batch-size", type=int, default=None,
                     help="fine-tuning batch (default: the run's)")
    opt.add_argument("--max-chars", type=int, default=None,
                     help="measure perplexity on the first N characters of validation only")
    add_data_dir(opt)
    add_json_flag(opt)
    opt.set_defaults(handler=optimize)
