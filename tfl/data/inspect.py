"""`tfl data inspect`: what a corpus looks like once tokenized and windowed.

>>> result = inspect_corpus("python_docs", tokenizer="char", seq_len=32, batch_size=2)
>>> result["splits"]["train"]["characters"] > 0
True
"""

from tfl.data.corpora import SPLITS, load_corpus
from tfl.tokenizers import build_tokenizer, tokenizer_stats


def inspect_corpus(corpus, tokenizer="char", vocab_size=None, seq_len=64, batch_size=4,
                   data_dir=None, seed=0, example_rows=2):
    """A dict describing `corpus` under `tokenizer`, with an example batch decoded to text."""
    corpus = load_corpus(corpus, data_dir=data_dir)
    tok = build_tokenizer(tokenizer, corpus.train, vocab_size=vocab_size)
    from tfl.data.pipeline import encode_splits, make_dataset, num_windows

    ids = encode_splits(corpus, tok)
    validation_stats = tokenizer_stats(tok, corpus.validation)
    train = make_dataset(ids["train"], seq_len, batch_size, shuffle=True, seed=seed,
                         split_name="train")
    inputs, targets = next(iter(train))
    # The validation split must hold at least one window too, or no model could be evaluated.
    make_dataset(ids["validation"], seq_len, 1, split_name="validation")
    rows = min(example_rows, batch_size)
    return {
        "corpus": corpus.name,
        "source": corpus.source,
        "characters": len(corpus.text),
        "tokenizer": tokenizer,
        "vocab_size": tok.vocab_size,
        "vocabulary_sample": [tok.id_to_token(i) for i in range(min(tok.vocab_size, 40))],
        "splits": {
            name: {
                "characters": len(corpus.split(name)),
                "tokens": int(len(ids[name])),
                "windows": num_windows(len(ids[name]), seq_len),
            }
            for name in SPLITS
        },
        "validation_tokens_per_char": round(validation_stats.tokens_per_char, 4),
        "validation_unk_rate": round(validation_stats.unk_rate, 6),
        "seq_len": seq_len,
        "batch_shape": inputs.shape.as_list(),
        "example_inputs": [tok.decode(row) for row in inputs.numpy()[:rows]],
        "example_targets": [tok.decode(row) for row in targets.numpy()[:rows]],
    }


def shorten(text, limit=160):
    """`text` cut to `limit` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_inspection(r):
    """The inspection dict as a few aligned lines of text."""
    splits = r["splits"]

    def per_split(key):
        return " / ".join(f"{name} {splits[name][key]:,}" for name in SPLITS)

    lines = [
        f"corpus        {r['corpus']}  ({r['source']})",
        f"characters    {r['characters']:,}  ({per_split('characters')})",
        f"tokenizer     {r['tokenizer']}, vocabulary {r['vocab_size']:,}",
        f"tokens        {per_split('tokens')}",
        f"validation    {r['validation_tokens_per_char']:.3f} tokens/char, "
        f"unknown rate {100 * r['validation_unk_rate']:.3f}%",
        f"windows       seq_len {r['seq_len']}: {per_split('windows')}",
        "vocabulary    " + " ".join(repr(t) for t in r["vocabulary_sample"]),
        f"example batch {r['batch_shape']} (first rows, inputs decoded):",
    ]
    lines += [f"  {shorten(text)!r}" for text in r["example_inputs"]]
    return "\n".join(lines)
