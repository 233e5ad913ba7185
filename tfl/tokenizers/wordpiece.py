"""WordPiece tokenizer: sub-word units learned from the training split with keras-hub.

The vocabulary comes from `keras_hub.tokenizers.compute_word_piece_vocabulary` (the
tensorflow-text WordPiece learner) and text is cut by `keras_hub.tokenizers.WordPieceTokenizer`.
Line breaks are kept as a token of their own, `[NL]`, because a language model of verse or
code needs them.

Normalisation (what `decode(encode(text))` gives back): each line is split on white space and
punctuation, so pieces come back joined by single spaces with punctuation standing alone
(`"Hello, world!"` becomes `"Hello , world !"`); `##` continuations are glued to the piece before
them; line breaks are kept. Case and accents are kept. Unknown pieces decode to U+FFFD.

>>> tok = WordPieceTokenizer.train("the theory of the thing\\nthe end", vocab_size=40)
>>> tok.decode(tok.encode("the thing\\nthe end"))
'the thing\\nthe end'
"""

from tfl.errors import TflError
from tfl.tokenizers.base import UNK_ID, UNK_TEXT, Tokenizer, check_vocab_size

RESERVED_TOKENS = ["[PAD]", "[UNK]", "[BOS]", "[NL]"]
NEWLINE_ID = 3
SUFFIX = "##"
DEFAULT_VOCAB_SIZE = 2_000
# A learned vocabulary that leaves more than this share of the training pieces unknown is
# refused: the model would learn to predict `[UNK]`.
MAX_UNKNOWN_SHARE = 0.01


class WordPieceTokenizer(Tokenizer):
    """Sub-words to ids. Args: `vocabulary`, the full list of pieces in id order."""

    kind = "wordpiece"

    def __init__(self, vocabulary):
        vocabulary = list(vocabulary)
        if vocabulary[: len(RESERVED_TOKENS)] != RESERVED_TOKENS:
            raise TflError(f"a WordPiece vocabulary must start with {RESERVED_TOKENS}")
        self.vocabulary = vocabulary
        self._keras_hub_tokenizer = None

    @classmethod
    def train(cls, text, vocab_size=None):
        check_vocab_size(vocab_size, minimum_symbols=2)
        import keras_hub
        import tensorflow as tf

        lines = [line for line in text.split("\n") if line.strip()]
        if not lines:
            raise TflError("cannot learn a WordPiece vocabulary from text with no words")
        # A list of strings would be read as file names: hand the learner a dataset instead.
        vocabulary = keras_hub.tokenizers.compute_word_piece_vocabulary(
            tf.data.Dataset.from_tensor_slices(lines).batch(1024),
            vocabulary_size=vocab_size or DEFAULT_VOCAB_SIZE,
            lowercase=False,
            strip_accents=False,
            reserved_tokens=RESERVED_TOKENS,
        )
        tokenizer = cls(vocabulary)
        tokenizer._refuse_if_mostly_unknown(text)
        return tokenizer

    def _refuse_if_mostly_unknown(self, text, sample_chars=200_000):
        """Raise TflError, naming a vocabulary size that would do, when the vocabulary leaves
        more than `MAX_UNKNOWN_SHARE` of the pieces of (the start of) `text` unknown."""
        sample = text[:sample_chars]
        ids = self.encode(sample)
        unknown = ids.count(UNK_ID) / max(len(ids), 1)
        if unknown > MAX_UNKNOWN_SHARE:
            # Every character as a word start and as a `##` continuation, and the reserved ids.
            minimum = len(RESERVED_TOKENS) + 2 * len(set(sample) - set(" \t\n"))
            raise TflError(
                f"a WordPiece vocabulary of {self.vocab_size} pieces leaves {unknown:.0%} of the "
                f"training text unknown; use --vocab-size {minimum} or more")

    @property
    def vocab_size(self):
        return len(self.vocabulary)

    def _tokenizer(self):
        if self._keras_hub_tokenizer is None:
            import keras_hub

            self._keras_hub_tokenizer = keras_hub.tokenizers.WordPieceTokenizer(
                vocabulary=self.vocabulary,
                lowercase=False,
                strip_accents=False,
                oov_token="[UNK]",
            )
        return self._keras_hub_tokenizer

    def encode(self, text, errors="replace"):
        lines = text.split("\n")
        ids = []
        for n, line_ids in enumerate(self._tokenizer()(lines)):
            if n:
                ids.append(NEWLINE_ID)
            ids.extend(int(i) for i in line_ids)
        if errors == "strict" and UNK_ID in ids:
            raise TflError(
                "the text has pieces outside the WordPiece vocabulary; "
                "retrain the tokenizer with a larger vocabulary or on text that has them"
            )
        return ids

    def decode(self, ids):
        out = []
        at_line_start = True
        for i in ids:
            i = int(i)
            if i == NEWLINE_ID:
                out.append("\n")
                at_line_start = True
                continue
            if i == UNK_ID:
                piece = UNK_TEXT
            elif i < len(RESERVED_TOKENS):
                continue  # padding and beginning-of-sequence have no text
            else:
                piece = self.vocabulary[i]
            if piece.startswith(SUFFIX) and len(piece) > len(SUFFIX):
                out.append(piece[len(SUFFIX):])
            else:
                out.append(piece if at_line_start else " " + piece)
            at_line_start = False
        return "".join(out)

    def _symbol(self, i):
        return self.vocabulary[i]

    def get_config(self):
        return {"vocabulary": self.vocabulary}
