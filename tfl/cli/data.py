"""`tfl data list` and `tfl data inspect`: the named corpora, and what a corpus looks like."""

from tfl.cli.common import add_data_dir, add_json_flag, print_result


def list_corpora(args):
    from tfl.data.corpora import available_corpora

    print_result(args, {"corpora": available_corpora()},
                 lambda r: "\n".join(f"{name:18s} {desc}" for name, desc in r["corpora"].items()))


def inspect(args):
    from tfl.data.inspect import inspect_corpus, render_inspection

    result = inspect_corpus(args.corpus, tokenizer=args.tokenizer, vocab_size=args.vocab_size,
                            seq_len=args.seq_len, batch_size=args.batch_size,
                            data_dir=args.data_dir, seed=args.seed)
    print_result(args, result, render_inspection)


def add_commands(commands):
    data = commands.add_parser("data", help="corpora: list them, inspect one")
    actions = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="list the named corpora")
    add_json_flag(listing)
    listing.set_defaults(handler=list_corpora, needs_tensorflow=False)

    inspecting = actions.add_parser(
        "inspect", help="sizes, vocabulary, split sizes and an example batch decoded back to text")
    inspecting.add_argument("corpus", help="a named corpus (see `tfl data list`) or a path or glob")
    inspecting.add_argument("--tokenizer", default="char", help="char, byte, word or wordpiece")
    inspecting.add_argument("--vocab-size", type=int, default=None, help="target vocabulary size")
    inspecting.add_argument("--seq-len", type=int, default=64, help="tokens per example")
    inspecting.add_argument("--batch-size", type=int, default=4, help="examples per batch")
    inspecting.add_argument("--seed", type=int, default=0,
                            help="shuffle seed for the example batch")
    add_data_dir(inspecting)
    add_json_flag(inspecting)
    inspecting.set_defaults(handler=inspect)
