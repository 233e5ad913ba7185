"""Word tokenizer: words, punctuation marks and line breaks, with a frequency-ranked vocabulary.

Normalisation (what `decode(encode(text))` gives back, for text whose words are all known):
- The text is cut into words (letters, digits, underscores, with inner apostrophes: `don't`,
  `o'er`), single punctuation marks, and line breaks. Case is kept.
- Other white space is dropped; decoding puts one space between tokens, except after an opening
  bracket, before closing punctuation `. , ; : ! ? ) ] }`, and around line breaks.
So `"Hello ,  world!\\n"` comes back as `"Hello, world!\\n"`. `normalize(text)` gives that form.
Words outside the vocabulary become the unknown id and decode to U+FFFD.

Pre-tokenized corpora (the Penn Treebank, WikiText: `<unk>`, `N`, `'s` and punctuation already
stand alone, one space between tokens) keep their own tokens with `split="whitespace"`: pieces
are the text split on spaces (line breaks kept), so `<unk>` stays one token and decoding joins
pieces with single spaces. `split="auto"` (what `build_tokenizer("word", text)` uses) chooses
whitespace when the text looks pre-tokenized (`looks_pretokenized`).

>>> tok = WordTokenizer.train("the cat sat on the mat.\\nthe end.", vocab_size=20)
>>> tok.decode(tok.encode("the cat sat on the mat."))
'the cat sat on the mat.'
>>> tok.decode(tok.encode("the dog sat."))
'the \\ufffd sat.'
>>> ptb = WordTokenizer.train("the <unk> company 's shares fell N % \\n", split="auto")
>>> ptb.split, ptb.decode(ptb.encode("the <unk> company 's shares"))
('whitespace', "the <unk> company 's shares")
"""

import re
from collections import Counter

from tfl.errors import TflError
from tfl.tokenizers.base import NUM_SPECIAL, UNK_ID, UNK_TEXT, Tokenizer, check_vocab_size

TOKEN_PATTERN = re.compile(r"\n|\w+(?:['’]\w+)*|[^\w\s]")
WHITESPACE_PATTERN = re.compile(r"\n|[^\s]+")
SPLITS = ("words", "whitespace")
# Markers that pre-tokenized corpora put in the text for unknown words and sentence ends.
CORPUS_MARKERS = ("<unk>", "<eos>", "<UNK>", "@-@")
NO_SPACE_BEFORE = set(".,;:!?)]}")
NO_SPACE_AFTER = set("([{")
DEFAULT_VOCAB_SIZE = 10_000


def split_words(text, split="words"):
    """The pieces of `text`, in order: words, punctuation marks and line breaks
    (`split="words"`), or runs of non-space characters and line breaks (`"whitespace"`)."""
    return (TOKEN_PATTERN if split == "words" else WHITESPACE_PATTERN).findall(text)


def looks_pretokenized(text, sample_chars=200_000):
    """True when `text` reads as already tokenized: it holds a corpus marker such as `<unk>`,
    or its punctuation stands apart from words (`word ,` rather than `word,`).

    >>> looks_pretokenized("he said , `` no '' .\\n" * 5), looks_pretokenized("He said, 'no'.\\n" * 5)
    (True, False)
    """
    sample = text[:sample_chars]
    if any(marker in sample for marker in CORPUS_MARKERS):
        return True
    tokens = sample.split()
    standalone = sum(1 for t in tokens if re.fullmatch(r"[^\w\s]+", t))
    attached = sum(1 for t in tokens if re.search(r"\w[.,;:!?]$", t))
    return standalone >= 10 and attached <= 0.02 * standalone


def join_words(pieces):
    """Join pieces with the spacing rule described in the module docstring."""
    out = []
    previous = "\n"
    for piece in pieces:
        if not (
            previous == "\n"
            or piece == "\n"
            or piece in NO_SPACE_BEFORE
            or previous in NO_SPACE_AFTER
        ):
            out.append(" ")
        out.append(piece)
        previous = piece
    return "".join(out)


class WordTokenizer(Tokenizer):
    """Words to ids. Args: `words`, the vocabulary in id order (after the special ids)."""

    kind = "word"

    def __init__(self, words, split="words"):
        if split not in SPLITS:
            raise TflError(f"word split {split!r} is not one of {', '.join(SPLITS)}")
        self.words = list(words)
        self.split = split
        self._id_of = {w: i + NUM_SPECIAL for i, w in enumerate(self.words)}

    @classmethod
    def train(cls, text, vocab_size=None, split="auto"):
        """The `vocab_size - 3` most frequent pieces of `text` (ties in alphabetical order).

        `split`: "words", "whitespace", or "auto" (whitespace for pre-tokenized text)."""
        check_vocab_size(vocab_size)
        vocab_size = vocab_size or DEFAULT_VOCAB_SIZE
        if split == "auto":
            split = "whitespace" if looks_pretokenized(text) else "words"
        counts = Counter(split_words(text, split))
        if not counts:
            raise TflError("cannot learn a word vocabulary from text with no words")
        ranked = sorted(counts, key=lambda w: (-counts[w], w))
        return cls(ranked[: vocab_size - NUM_SPECIAL], split=split)

    def normalize(self, text):
        """The form `decode(encode(text))` returns when every word is in the vocabulary."""
        return self._join(split_words(text, self.split))

    def _join(self, pieces):
        if self.split == "words":
            return join_words(pieces)
        return "".join(p if p == "\n" or i == 0 or pieces[i - 1] == "\n" else " " + p
                       for i, p in enumerate(pieces))

    @property
    def vocab_size(self):
        return NUM_SPECIAL + len(self.words)

    def encode(self, text, errors="replace"):
        pieces = split_words(text, self.split)
        if errors == "strict":
            unknown = sorted({p for p in pieces if p not in self._id_of})
            if unknown:
                raise TflError(
                    f"words not in the tokenizer's vocabulary: {', '.join(map(repr, unknown[:10]))}"
                    "; rephrase, or retrain the tokenizer with a larger vocabulary"
                )
        return [self._id_of.get(p, UNK_ID) for p in pieces]

    def decode(self, ids):
        pieces = []
        for i in ids:
            i = int(i)
            if i >= NUM_SPECIAL:
                pieces.append(self.words[i - NUM_SPECIAL])
            elif i == UNK_ID:
                pieces.append(UNK_TEXT)
        return self._join(pieces)

    def _symbol(self, i):
        return self.words[i - NUM_SPECIAL]

    def get_config(self):
        return {"words": self.words, "split": self.split}
