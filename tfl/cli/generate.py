"""`tfl generate`: text from a run directory or an exported `.tflite` file, streamed."""

import json

from tfl.cli.common import add_json_flag


def generate(args):
    from tfl.errors import TflError

    if (args.run_dir is None) == (args.tflite is None):
        raise TflError("give either a run directory or --tflite FILE")
    options = dict(sampler=args.sampler, temperature=args.temperature, top_k=args.top_k,
                   top_p=args.top_p, seed=args.seed)
    started = []

    def stream(piece):
        # The prompt is printed with the first piece, so a bad prompt or setting reports its
        # error alone.
        if not started:
            started.append(print(args.prompt, end=""))
        print(piece, end="", flush=True)

    if args.json:
        stream = None
    if args.tflite:
        from tfl.edge.litert import generate_tflite

        text = generate_tflite(args.tflite, args.prompt, args.max_new_tokens, on_text=stream,
                               **options)
    else:
        from tfl.inference.generate import generate as generate_text

        text = generate_text(args.run_dir, args.prompt, args.max_new_tokens,
                             num_beams=args.num_beams, cached=not args.no_cache,
                             on_text=stream, **options)
    if args.json:
        print(json.dumps({"prompt": args.prompt, "text": text, "sampler": args.sampler,
                          "seed": args.seed}, ensure_ascii=False, indent=2))
    else:
        print("" if started else args.prompt)


def add_commands(commands):
    parser = commands.add_parser("generate", help="generate text from a run, streamed as it comes")
    parser.add_argument("run_dir", nargs="?")
    parser.add_argument("--tflite", metavar="FILE",
                        help="generate from an exported .tflite file instead of a run")
    parser.add_argument("--prompt", default="", help="text to continue (default: start of text)")
    parser.add_argument("--max-new-tokens", type=int, default=200)
    parser.add_argument("--sampler", default="top_k",
                        help="greedy, temperature, top_k, top_p or beam (default top_k)")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--top-p", type=float, default=0.9)
    parser.add_argument("--num-beams", type=int, default=4)
    parser.add_argument("--seed", type=int, default=None, help="same seed, same text")
    parser.add_argument("--no-cache", action="store_true",
                        help="recompute the whole window for every token (slow; for comparison)")
    add_json_flag(parser)
    parser.set_defaults(handler=generate)
