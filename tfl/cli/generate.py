"""`tfl generate`: text from a run directory or an exported `.tflite` file, streamed.

Settings are checked before anything is loaded, and the prompt is printed with the first
generated piece, so a mistake prints its one error line and nothing else.
"""

import json
import sys
from pathlib import Path

from tfl.cli.common import add_json_flag


def generate(args):
    from tfl.errors import TflError
    from tfl.inference.generate import check_max_new_tokens
    from tfl.inference.sampling import check_sampler_settings

    if (args.run_dir is None) == (args.tflite is None):
        raise TflError("give either a run directory or --tflite FILE")
    check_max_new_tokens(args.max_new_tokens)
    check_sampler_settings(args.sampler, args.temperature, args.top_k, args.top_p,
                           args.num_beams)
    options = dict(sampler=args.sampler, temperature=args.temperature, top_k=args.top_k,
                   top_p=args.top_p, seed=args.seed)
    started = []

    def stream(piece):
        if not started:
            started.append(print(args.prompt, end=""))
        print(piece, end="", flush=True)

    if args.json:
        stream = None
    if args.tflite:
        from tfl.edge.litert import generate_tflite

        _note_top_k_above_vocabulary(args, _tflite_vocab_size(args.tflite))
        text = generate_tflite(args.tflite, args.prompt, args.max_new_tokens, on_text=stream,
                               **options)
    else:
        from tfl.inference.generate import generate as generate_text
        from tfl.run import load_run

        run = load_run(args.run_dir)
        _note_top_k_above_vocabulary(args, run.tokenizer.vocab_size)
        text = generate_text(run, args.prompt, args.max_new_tokens, num_beams=args.num_beams,
                             cached=not args.no_cache, on_text=stream, **options)
    if args.json:
        print(json.dumps({"prompt": args.prompt, "text": text, "sampler": args.sampler,
                          "seed": args.seed}, ensure_ascii=False, indent=2))
    else:
        print("" if started else args.prompt)


def _tflite_vocab_size(path):
    """The vocabulary size of the tokenizer beside a .tflite file (None if there is none:
    `generate_tflite` then says so)."""
    from tfl.tokenizers import load_tokenizer

    tokenizer_dir = Path(path).parent / "tokenizer"
    return load_tokenizer(tokenizer_dir).vocab_size if tokenizer_dir.is_dir() else None


def _note_top_k_above_vocabulary(args, vocab_size):
    # Not an error: k at or above the vocabulary size means "every token", which is what
    # sampling does (the library lowers k to the vocabulary size). Said once, on stderr.
    if args.sampler == "top_k" and vocab_size is not None and args.top_k > vocab_size:
        print(f"tfl: note: --top-k {args.top_k} is more than the {vocab_size} tokens of the "
              "vocabulary; sampling among all of them", file=sys.stderr)


def add_commands(commands):
    parser = commands.add_parser(
        "generate", help="generate text from a run, streamed as it comes",
        epilog="Every sampler setting is checked, also those the chosen sampler does not use: "
        "an impossible value is an error whatever the sampler.")
    parser.add_argument("run_dir", nargs="?")
    parser.add_argument("--tflite", metavar="FILE",
                        help="generate from an exported .tflite file instead of a run")
    parser.add_argument("--prompt", default="", help="text to continue (default: start of text)")
    parser.add_argument("--max-new-tokens", type=int, default=200, help="zero or more")
    parser.add_argument("--sampler", default="top_k",
                        help="greedy, temperature, top_k, top_p or beam (default top_k)")
    parser.add_argument("--temperature", type=float, default=1.0, help="a positive number")
    parser.add_argument("--top-k", type=int, default=10,
                        help="at least 1; above the vocabulary size, every token is kept")
    parser.add_argument("--top-p", type=float, default=0.9, help="in (0, 1]")
    parser.add_argument("--num-beams", type=int, default=4, help="at least 1")
    parser.add_argument("--seed", type=int, default=None, help="same seed, same text")
    parser.add_argument("--no-cache", action="store_true",
                        help="recompute the whole window for every token (slow; for comparison)")
    add_json_flag(parser)
    parser.set_defaults(handler=generate)
