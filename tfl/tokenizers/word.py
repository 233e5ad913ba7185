"""Word tokenizer: words, punctuation marks and line breaks, with a frequency-ranked vocabulary.

Normalisation (what `decode(encode(text))` gives back, for text whose words are all known):
- The text is cut into words (letters, digits, underscores, with inner apostrophes: `don't`,
  `o'er`), single punctuation marks, and line breaks. Case is kept.
- Other white space is dropped; decoding puts one space between tokens, except after an opening
  bracket, before closing punctuation `. , ; : ! ? ) ] }`, and around line breaks.
So `"Hello ,  world!\\n"` comes back as `"Hello, world!\\n"`. `normalize(text)` gives that form.
Words outside the vocabulary become the unknown id and decode to U+FFFD.

>>> tok = WordTokenizer.train("the cat sat on the mat.\\nthe end.", vocab_size=20)
>>> tok.decode(tok.encode("the cat sat on the mat."))
'the cat sat on the mat.'
>>> tok.decode(tok.encode("the dog sat."))
'the \\ufffd sat.'
"""

import re
from collections import Counter

from tfl.errors import TflError
from tfl.tokenizers.base import NUM_SPECIAL, UNK_ID, UNK_TEXT, Tokenizer, check_vocab_size

TOKEN_PATTERN = re.compile(r"\n|\w+(?:['’]\w+)*|[^\w\s]")
NO_SPACE_BEFORE = set(".,;:!?)]}")
NO_SPACE_AFTER = set("([{")
DEFAULT_VOCAB_SIZE = 10_000


def split_words(text):
    """The word, punctuation and line-break pieces of `text`, in order."""
    return TOKEN_PATTERN.findall(text)


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

    def __init__(self, words):
        self.words = list(words)
        self._id_of = {w: i + NUM_SPECIAL for i, w in enumerate(self.words)}

    @classmethod
    def train(cls, text, vocab_size=None):
        """The `vocab_size - 3` most frequent pieces of `text` (ties in alphabetical order)."""
        check_vocab_size(vocab_size)
        vocab_size = vocab_size or DEFAULT_VOCAB_SIZE
        counts = Counter(split_words(text))
        if not counts:
            raise TflError("cannot learn a word vocabulary from text with no words")
        ranked = sorted(counts, key=lambda w: (-counts[w], w))
        return cls(ranked[: vocab_size - NUM_SPECIAL])

    @staticmethod
    def normalize(text):
        """The form `decode(encode(text))` returns when every word is in the vocabulary."""
        return join_words(split_words(text))

    @property
    def vocab_size(self):
        return NUM_SPECIAL + len(self.words)

    def encode(self, text, errors="replace"):
        pieces = split_words(text)
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
        return join_words(pieces)

    def _symbol(self, i):
        return self.words[i - NUM_SPECIAL]

    def get_config(self):
        return {"words": self.words}
