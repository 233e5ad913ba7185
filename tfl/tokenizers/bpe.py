"""Byte-level BPE tokenizer: byte pair merges learned from the training split.

Byte pair encoding (BPE) starts from the 256 byte values and repeatedly merges the most
frequent adjacent pair of symbols in the training text into a new symbol, until the vocabulary
has `vocab_size` entries (GPT-2's tokenizer is this algorithm on bytes). Frequent words end up
as one token, rare words as a few pieces, and, since every byte is in the vocabulary, nothing is
ever unknown: any Unicode text round-trips exactly. For Chinese, the first merges join the three
UTF-8 bytes of frequent characters, later ones join characters into common words.

Text is first cut into chunks (a word with its leading space, a run of digits, a run of
punctuation, white space, or one CJK character run), and merges never cross a chunk boundary,
as in GPT-2. Training counts each distinct chunk once with its frequency, so it is fast enough
for a few megabytes of text.

>>> tok = BPETokenizer.train("low lower lowest " * 50 + "newer newest", vocab_size=270)
>>> [tok.id_to_token(i) for i in tok.encode(" lowest")]
[' lowest']
>>> tok.decode(tok.encode("naïve 唐詩 lowest!")) == "naïve 唐詩 lowest!"
True
"""

import heapq
import re
from collections import Counter, defaultdict

from tfl.errors import TflError
from tfl.tokenizers.base import NUM_SPECIAL, Tokenizer, check_vocab_size, decode_byte_pieces

CHUNK_PATTERN = re.compile(
    r" ?[^\W\d_\u3400-\u9fff]+"  # a word (letters) with its leading space
    r"| ?[\u3400-\u9fff]+"  # a run of CJK characters (Chinese has no spaces between words)
    r"| ?\d+"  # digits
    r"| ?[^\s\w\u3400-\u9fff]+"  # punctuation
    r"|\s+"  # white space, line breaks included
)
BYTES = 256
DEFAULT_VOCAB_SIZE = 2_000


def chunks(text):
    """The pieces merges stay within.

    >>> chunks("Hello, world 42\\n春眠不覺曉")
    ['Hello', ',', ' world', ' 42', '\\n', '春眠不覺曉']
    """
    return CHUNK_PATTERN.findall(text)


def learn_merges(text, num_merges):
    """The `num_merges` most useful merges of `text`, in the order they were learned: a list of
    (left id, right id) pairs over byte ids 0-255 and earlier merges (256 + rank)."""
    words = Counter(chunks(text))
    sequences = [list(word.encode("utf-8")) for word in words]
    counts = list(words.values())
    pair_counts = Counter()
    where = defaultdict(set)  # pair -> indices of the sequences that contain it
    for index, sequence in enumerate(sequences):
        for pair in zip(sequence, sequence[1:]):
            pair_counts[pair] += counts[index]
            where[pair].add(index)
    # A max-heap of (-count, pair), updated lazily: an entry whose count is out of date is
    # skipped when it surfaces. Ties go to the smaller pair, so training is deterministic.
    heap = [(-count, pair) for pair, count in pair_counts.items()]
    heapq.heapify(heap)
    merges = []
    while len(merges) < num_merges and heap:
        negative, best = heapq.heappop(heap)
        if pair_counts.get(best, 0) != -negative:
            continue  # stale
        if -negative < 2:
            break  # merging a pair seen once only memorises the text
        new_id = BYTES + len(merges)
        merges.append(best)
        del pair_counts[best]
        changed = set()
        for index in where.pop(best):
            sequence, count = sequences[index], counts[index]
            for pair in zip(sequence, sequence[1:]):  # forget this sequence's old pairs
                if pair != best:
                    pair_counts[pair] -= count
                    changed.add(pair)
            sequence = _merge(sequence, best, new_id)
            sequences[index] = sequence
            for pair in zip(sequence, sequence[1:]):  # and count its new ones
                pair_counts[pair] += count
                where[pair].add(index)
                changed.add(pair)
        for pair in changed:
            if pair_counts[pair] > 0:
                heapq.heappush(heap, (-pair_counts[pair], pair))
            else:
                del pair_counts[pair]
    return merges


def _merge(sequence, pair, new_id):
    """`sequence` with every occurrence of `pair` replaced by `new_id`, left to right."""
    out, i = [], 0
    while i < len(sequence):
        if i + 1 < len(sequence) and (sequence[i], sequence[i + 1]) == pair:
            out.append(new_id)
            i += 2
        else:
            out.append(sequence[i])
            i += 1
    return out


class BPETokenizer(Tokenizer):
    """Byte-level BPE. Args: `merges`, the learned (left, right) pairs in rank order."""

    kind = "bpe"

    def __init__(self, merges):
        self.merges = [tuple(pair) for pair in merges]
        self._rank = {pair: rank for rank, pair in enumerate(self.merges)}
        self._bytes = [bytes([b]) for b in range(BYTES)]
        for left, right in self.merges:
            self._bytes.append(self._bytes[left] + self._bytes[right])
        self._cache = {}

    @classmethod
    def train(cls, text, vocab_size=None):
        check_vocab_size(vocab_size, minimum_symbols=BYTES + 1)
        vocab_size = vocab_size or DEFAULT_VOCAB_SIZE
        if not text:
            raise TflError("cannot learn BPE merges from empty text")
        return cls(learn_merges(text, vocab_size - NUM_SPECIAL - BYTES))

    @property
    def vocab_size(self):
        return NUM_SPECIAL + BYTES + len(self.merges)

    def _encode_chunk(self, chunk):
        if chunk not in self._cache:
            sequence = list(chunk.encode("utf-8"))
            while len(sequence) > 1:
                # Apply the earliest-learned merge present, as training did.
                pairs = set(zip(sequence, sequence[1:]))
                pair = min(pairs, key=lambda p: self._rank.get(p, len(self._rank)))
                if pair not in self._rank:
                    break
                sequence = _merge(sequence, pair, BYTES + self._rank[pair])
            self._cache[chunk] = [symbol + NUM_SPECIAL for symbol in sequence]
        return self._cache[chunk]

    def encode(self, text, errors="replace"):
        return [i for chunk in chunks(text) for i in self._encode_chunk(chunk)]

    def decode(self, ids):
        return decode_byte_pieces(ids, lambda i: self._bytes[i - NUM_SPECIAL])

    def _symbol(self, i):
        raw = self._bytes[i - NUM_SPECIAL]
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:  # part of a multi-byte character
            return "".join(f"<0x{b:02X}>" for b in raw)

    def get_config(self):
        return {"merges": [list(pair) for pair in self.merges]}
