"""The interface every tfl tokenizer follows, saving and loading, and tokenizer statistics.

A tokenizer maps text to a list of integer ids and back. Ids 0, 1 and 2 are always the special
tokens padding, unknown and beginning-of-sequence, so that a model never has to ask which
tokenizer it was trained with to find them.

>>> from tfl.tokenizers import build_tokenizer
>>> tok = build_tokenizer("char", "hello world")
>>> tok.encode("hello")
[6, 5, 7, 7, 8]
>>> tok.decode(tok.encode("hello"))
'hello'
>>> tok.special_tokens
{'pad': 0, 'unk': 1, 'bos': 2}
"""

import abc
import json
from dataclasses import dataclass
from pathlib import Path

from tfl.errors import TflError
from tfl.io import write_json_atomic

SPECIAL_NAMES = ("pad", "unk", "bos")
PAD_ID, UNK_ID, BOS_ID = 0, 1, 2
NUM_SPECIAL = len(SPECIAL_NAMES)
# What an unknown token decodes to: the Unicode replacement character.
UNK_TEXT = "\ufffd"
SPECIAL_TEXT = ("<pad>", "<unk>", "<bos>")
CONFIG_FILENAME = "tokenizer.json"


class Tokenizer(abc.ABC):
    """Text to ids and back. Subclasses set `kind` and implement the abstract methods."""

    kind = None

    @property
    def special_tokens(self):
        """Names of the special tokens and their ids."""
        return dict(zip(SPECIAL_NAMES, (PAD_ID, UNK_ID, BOS_ID)))

    @property
    @abc.abstractmethod
    def vocab_size(self):
        """Number of ids, special tokens included."""

    @abc.abstractmethod
    def encode(self, text, errors="replace"):
        """Ids for `text`. `errors="strict"` raises TflError naming out-of-vocabulary pieces;
        `errors="replace"` maps them to the unknown id."""

    @abc.abstractmethod
    def decode(self, ids):
        """Text for `ids`; padding and beginning-of-sequence ids are dropped."""

    @abc.abstractmethod
    def get_config(self):
        """A JSON-serialisable dict from which `from_config` rebuilds the same tokenizer."""

    @classmethod
    @abc.abstractmethod
    def train(cls, text, vocab_size=None):
        """Learn a vocabulary from `text` (the training split)."""

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def _symbol(self, i):
        """The text of non-special id `i` (for display, not decoding)."""
        raise NotImplementedError

    def id_to_token(self, i):
        """A readable name of id `i`: `<pad>`, `<unk>`, `<bos>` or the vocabulary entry."""
        i = int(i)
        return SPECIAL_TEXT[i] if i < NUM_SPECIAL else self._symbol(i)

    def save(self, directory):
        """Write `tokenizer.json` (kind, version and config) into `directory`."""
        write_json_atomic(
            Path(directory) / CONFIG_FILENAME,
            {"kind": self.kind, "format_version": 1, "config": self.get_config()},
        )

    def __repr__(self):
        return f"{type(self).__name__}(vocab_size={self.vocab_size})"


def decode_byte_pieces(ids, piece_bytes):
    """Text from ids whose pieces are byte strings (`piece_bytes(id)`), for byte-level
    tokenizers. Runs of bytes are decoded together, so a character split over several ids comes
    back whole; invalid sequences (which a model can emit) and unknown ids show as U+FFFD;
    padding and start ids are dropped."""
    pieces, run = [], bytearray()
    for i in ids:
        i = int(i)
        if i >= NUM_SPECIAL:
            run += piece_bytes(i)
        elif i == UNK_ID:
            pieces.append(run.decode("utf-8", errors="replace") + UNK_TEXT)
            run = bytearray()
    pieces.append(run.decode("utf-8", errors="replace"))
    return "".join(pieces)


def check_vocab_size(vocab_size, minimum_symbols=1):
    """Reject a target vocabulary too small to hold the special tokens and some symbols."""
    if vocab_size is None:
        return
    needed = NUM_SPECIAL + minimum_symbols
    if not isinstance(vocab_size, int) or vocab_size < needed:
        raise TflError(
            f"vocabulary size {vocab_size} is too small: {NUM_SPECIAL} ids are reserved for "
            f"<pad>, <unk>, <bos>, so use a vocabulary size of at least {needed}"
        )


def read_tokenizer_file(directory):
    """The parsed `tokenizer.json` of `directory`, or a TflError saying what is wrong with it."""
    path = Path(directory) / CONFIG_FILENAME
    if not path.is_file():
        raise TflError(f"no tokenizer in {directory}: {CONFIG_FILENAME} is missing")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data["kind"], data["config"]
    except (ValueError, KeyError, TypeError):
        raise TflError(
            f"{path} is corrupt (not a tfl tokenizer file); save the tokenizer again"
        ) from None


@dataclass(frozen=True)
class TokenizerStats:
    """How a tokenizer cuts a text: tokens, characters, tokens per character, unknown rate."""

    tokens: int
    characters: int
    tokens_per_char: float
    unk_rate: float


def tokenizer_stats(tokenizer, text):
    """Statistics of `tokenizer` on `text`, typically the validation split.

    >>> from tfl.tokenizers import build_tokenizer
    >>> tokenizer_stats(build_tokenizer("char", "abc"), "abcd").unk_rate
    0.25
    """
    ids = tokenizer.encode(text)
    n = len(ids)
    unknown = sum(1 for i in ids if i == UNK_ID)
    return TokenizerStats(
        tokens=n,
        characters=len(text),
        tokens_per_char=n / max(len(text), 1),
        unk_rate=unknown / max(n, 1),
    )
