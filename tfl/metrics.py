"""Metrics shared by neural and count-based models (pure Python, no TensorFlow).

>>> round(perplexity(math.log(65)), 6)
65.0
>>> round(bits_per_character(math.log(2), tokens=10, characters=10), 6)
1.0
"""

import math


def perplexity(loss):
    """exp of a mean loss in nats per token (capped to stay finite)."""
    return math.exp(min(loss, 700.0))


def bits_per_character(loss, tokens, characters):
    """Bits per character of text, from a mean loss in nats over `tokens` tokens that cover
    `characters` characters of text."""
    return loss * tokens / math.log(2) / characters
