"""Byte tokenizer: the 256 UTF-8 byte values, after the 3 special ids. Nothing to learn.

Any Unicode text round-trips exactly and nothing is ever unknown, at the price of more tokens
per character for non-ASCII text. Decoding an invalid byte sequence (which a model can emit)
gives U+FFFD for the bad bytes instead of failing.

>>> tok = ByteTokenizer()
>>> tok.encode("é")
[198, 172]
>>> tok.decode(tok.encode("naïve café ☕")) == "naïve café ☕"
True
"""

from tfl.errors import TflError
from tfl.tokenizers.base import NUM_SPECIAL, Tokenizer, decode_byte_pieces


class ByteTokenizer(Tokenizer):
    kind = "byte"

    @classmethod
    def train(cls, text=None, vocab_size=None):
        if vocab_size not in (None, 256 + NUM_SPECIAL):
            raise TflError(
                f"the byte tokenizer has a fixed vocabulary of {256 + NUM_SPECIAL}; "
                "drop --vocab-size or use the word or wordpiece tokenizer"
            )
        return cls()

    @property
    def vocab_size(self):
        return 256 + NUM_SPECIAL

    def encode(self, text, errors="replace"):
        return [b + NUM_SPECIAL for b in text.encode("utf-8")]

    def decode(self, ids):
        return decode_byte_pieces(ids, lambda i: bytes([i - NUM_SPECIAL]))

    def _symbol(self, i):
        return f"<0x{i - NUM_SPECIAL:02X}>"

    def get_config(self):
        return {}
