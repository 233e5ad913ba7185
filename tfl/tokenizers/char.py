"""Character tokenizer: one id per Unicode code point seen in the training text.

The round trip is exact, `decode(encode(text)) == text`, for any text over the vocabulary:
no normalisation, line endings and combining marks kept as they are.

>>> tok = CharTokenizer.train("to be or not to be")
>>> tok.vocab_size
10
>>> tok.decode(tok.encode("not to be")) == "not to be"
True
"""

from collections import Counter

from tfl.errors import TflError
from tfl.tokenizers.base import NUM_SPECIAL, UNK_ID, UNK_TEXT, Tokenizer, check_vocab_size


class CharTokenizer(Tokenizer):
    """Characters to ids. Args: `chars`, the vocabulary in id order (after the special ids)."""

    kind = "char"

    def __init__(self, chars):
        chars = list(chars)
        if len(set(chars)) != len(chars) or any(len(c) != 1 for c in chars):
            raise TflError("a character vocabulary must list distinct single characters")
        self.chars = chars
        self._id_of = {c: i + NUM_SPECIAL for i, c in enumerate(chars)}

    @classmethod
    def train(cls, text, vocab_size=None):
        """All characters of `text` in code-point order, or the `vocab_size - 3` most frequent."""
        check_vocab_size(vocab_size)
        if not text:
            raise TflError("cannot learn a character vocabulary from empty text")
        counts = Counter(text)
        chars = sorted(counts)
        if vocab_size is not None and len(chars) > vocab_size - NUM_SPECIAL:
            keep = sorted(counts, key=lambda c: (-counts[c], c))[: vocab_size - NUM_SPECIAL]
            chars = sorted(keep)
        return cls(chars)

    @property
    def vocab_size(self):
        return NUM_SPECIAL + len(self.chars)

    def encode(self, text, errors="replace"):
        id_of = self._id_of
        if errors == "strict":
            unknown = sorted({c for c in text if c not in id_of})
            if unknown:
                shown = ", ".join(repr(c) for c in unknown[:10])
                raise TflError(
                    f"characters not in the tokenizer's vocabulary: {shown}; "
                    "remove them from the text or retrain the tokenizer on text that has them"
                )
        return [id_of.get(c, UNK_ID) for c in text]

    def decode(self, ids):
        chars = self.chars
        out = []
        for i in ids:
            i = int(i)
            if i >= NUM_SPECIAL:
                out.append(chars[i - NUM_SPECIAL])
            elif i == UNK_ID:
                out.append(UNK_TEXT)
        return "".join(out)

    def _symbol(self, i):
        return self.chars[i - NUM_SPECIAL]

    def get_config(self):
        return {"chars": self.chars}
