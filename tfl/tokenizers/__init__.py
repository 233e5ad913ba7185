"""Tokenizers: character, byte, word, WordPiece and byte-level BPE, behind one interface.

>>> from tfl.tokenizers import build_tokenizer, load_tokenizer
>>> tok = build_tokenizer("byte")
>>> tok.decode(tok.encode("héllo"))
'héllo'
"""

from tfl.errors import TflError, did_you_mean
from tfl.tokenizers.base import Tokenizer, TokenizerStats, read_tokenizer_file, tokenizer_stats
from tfl.tokenizers.bpe import BPETokenizer
from tfl.tokenizers.byte import ByteTokenizer
from tfl.tokenizers.char import CharTokenizer
from tfl.tokenizers.word import WordTokenizer
from tfl.tokenizers.wordpiece import WordPieceTokenizer

TOKENIZERS = {cls.kind: cls for cls in (CharTokenizer, ByteTokenizer, WordTokenizer,
                                        WordPieceTokenizer, BPETokenizer)}


def _tokenizer_class(kind):
    if kind not in TOKENIZERS:
        raise TflError(f"unknown tokenizer {kind!r}; {did_you_mean(kind, list(TOKENIZERS))}")
    return TOKENIZERS[kind]


def build_tokenizer(kind, text=None, vocab_size=None):
    """A tokenizer of `kind` ("char", "byte", "word", "wordpiece", "bpe") learned from `text`.

    >>> build_tokenizer("char", "abcabc").vocab_size
    6
    """
    cls = _tokenizer_class(kind)
    if text is None and cls is not ByteTokenizer:
        raise TflError(f"the {kind} tokenizer learns its vocabulary: pass the training text")
    return cls.train(text, vocab_size=vocab_size)


def load_tokenizer(directory):
    """The tokenizer saved in `directory` with `Tokenizer.save`."""
    kind, config = read_tokenizer_file(directory)
    try:
        return _tokenizer_class(kind).from_config(config)
    except TypeError:
        raise TflError(f"the tokenizer file in {directory} is corrupt; save it again") from None


__all__ = [
    "BPETokenizer",
    "ByteTokenizer",
    "CharTokenizer",
    "TOKENIZERS",
    "Tokenizer",
    "TokenizerStats",
    "WordPieceTokenizer",
    "WordTokenizer",
    "build_tokenizer",
    "load_tokenizer",
    "tokenizer_stats",
]
