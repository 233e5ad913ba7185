"""`tfl train` (one device, several, or one worker of a cluster) and `tfl tf-config`."""

from tfl.cli.common import add_data_dir, add_json_flag, log_unless_json, print_result
from tfl.training.config import DEFAULT_BATCH_SIZE  # (a dataclass module: no TensorFlow)
from tfl.training.multi_worker import DEFAULT_CLUSTER_TIMEOUT  # (no TensorFlow either)


def train(args):
    from pathlib import Path

    from tfl.training.config import TrainConfig
    from tfl.training.workflow import train as train_run

    options = {"steps": args.steps, "batch_size": args.batch_size, "seed": args.seed,
               "learning_rate": args.learning_rate, "eval_interval": args.eval_interval,
               "jit_compile": not args.no_jit, "mixed_precision": args.mixed_precision,
               "sample_tokens": args.sample_tokens, "clip_norm": args.clip_norm}
    if args.learning_rate is not None and args.learning_rate < TrainConfig.min_learning_rate:
        # The schedule decays to min_learning_rate: below the peak rate, never above it.
        options["min_learning_rate"] = args.learning_rate
    train_config = TrainConfig.from_dict({k: v for k, v in options.items() if v is not None})
    overrides = {name: value for name, value in
                 (("dropout", args.dropout), ("position", args.position)) if value is not None}
    out = args.out or f"saved_models/{args.model}-{args.preset}-{Path(str(args.data)).stem}"
    history = train_run(args.model, args.preset, args.data, out, tokenizer=args.tokenizer,
                        vocab_size=args.vocab_size, train_config=train_config,
                        epochs=args.epochs, model_overrides=overrides or None,
                        data_dir=args.data_dir, log=log_unless_json(args),
                        devices=args.devices, multi_worker=args.multi_worker,
                        cluster_timeout=args.cluster_timeout)
    last = history[-1]
    result = {"run_dir": out, "steps": last["step"], "tokens": last["tokens"],
              "history_loss": [r["loss"] for r in history],
              "weights_sha256": history.weights_sha256,
              "loss": last["loss"], "val_loss": last["val_loss"],
              "best_val_loss": min(r["val_loss"] for r in history),
              "seconds": sum(r["interval_seconds"] for r in history)}
    print_result(args, result, lambda r: (
        f"done: {r['steps']} steps, {r['tokens']:,} tokens in {r['seconds']:.0f} s; "
        f"validation loss {r['val_loss']:.4f} (best {r['best_val_loss']:.4f}) -> {r['run_dir']}"))


def tf_config(args):
    from tfl.training.multi_worker import local_tf_configs

    configs = local_tf_configs(args.workers)
    print_result(args, {"tf_configs": configs}, lambda r: "\n".join(
        f"# worker {i}:\nexport TF_CONFIG='{c}'" for i, c in enumerate(r["tf_configs"])))


def add_commands(commands):
    parser = commands.add_parser("train", help="train an LSTM or Transformer into a run directory")
    parser.add_argument("--model", choices=["lstm", "transformer"], default="transformer")
    parser.add_argument("--preset", default="char-cpu", help="nano, micro, char-cpu or char-gpu")
    parser.add_argument("--data", default="tiny_shakespeare", help="corpus name or path")
    parser.add_argument("--tokenizer", default="char", help="char, byte, word or wordpiece")
    parser.add_argument("--vocab-size", type=int, default=None)
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, default=None, help="optimizer steps (default 2000)")
    length.add_argument("--epochs", type=int, default=None,
                        help="passes over the training split (instead of --steps)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help=f"global batch (default {DEFAULT_BATCH_SIZE})")
    parser.add_argument("--learning-rate", type=float, default=None)
    parser.add_argument("--dropout", type=float, default=None,
                        help="override the preset's dropout")
    parser.add_argument("--position", choices=["learned", "sinusoidal", "rotary"], default=None,
                        help="Transformer position encoding (default: the preset's, learned)")
    parser.add_argument("--clip-norm", type=float, default=None,
                        help="global gradient-norm clipping (default 1.0; 0 turns it off)")
    parser.add_argument("--eval-interval", type=int, default=None,
                        help="steps between evaluation, checkpoint and sample (default 250)")
    parser.add_argument("--sample-tokens", type=int, default=None,
                        help="tokens in the greedy sample after each interval (0: none)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--no-jit", action="store_true", help="do not compile with XLA")
    parser.add_argument("--mixed-precision", action="store_true")
    parser.add_argument("--devices", default=None,
                        help="mirror over N devices (GPUs, else N logical CPU devices) or 'auto'")
    parser.add_argument("--multi-worker", action="store_true",
                        help="train as one worker of the cluster in TF_CONFIG "
                             "(see `tfl tf-config`); only the chief writes --out")
    parser.add_argument("--cluster-timeout", type=float, default=DEFAULT_CLUSTER_TIMEOUT,
                        metavar="SECONDS",
                        help="with --multi-worker: how long to wait for the other workers, at "
                             f"start-up and at every step (default {DEFAULT_CLUSTER_TIMEOUT})")
    parser.add_argument("--out", help="run directory (default saved_models/MODEL-PRESET-CORPUS); "
                                      "a new or empty directory, or the same run to resume")
    add_data_dir(parser)
    add_json_flag(parser)
    parser.set_defaults(handler=train)

    cluster = commands.add_parser(
        "tf-config", help="print a TF_CONFIG per worker for a cluster on this machine")
    cluster.add_argument("--workers", type=int, default=2)
    add_json_flag(cluster)
    cluster.set_defaults(handler=tf_config, needs_tensorflow=False)
