"""Solutions to notebooks/07_exercises.py, for teachers. Kept apart from the student version."""

import math

import numpy as np


def perplexity(losses):
    return math.exp(sum(losses) / len(losses))


def bits_per_character(mean_loss, tokens, characters):
    return mean_loss * tokens / math.log(2) / characters


def causal_mask(n):
    return np.tril(np.ones((n, n), dtype=bool))


def attention(q, k, v, mask):
    scores = q @ k.T / math.sqrt(q.shape[-1])  # (n, n)
    scores = np.where(mask, scores, -np.inf)
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    weights /= weights.sum(axis=-1, keepdims=True)
    return weights @ v  # (n, dv)


def top_k_filter(logits, k):
    kth_largest = np.sort(logits)[-k]
    return np.where(logits >= kth_largest, logits, -np.inf)


def softmax(logits, temperature):
    scaled = np.asarray(logits) / temperature
    e = np.exp(scaled - scaled.max())
    return e / e.sum()


def block_parameters(d, ffn):
    attention_params = 4 * d * d + 4 * d
    mlp = d * ffn + ffn + ffn * d + d
    layer_norms = 2 * 2 * d
    return attention_params + mlp + layer_norms


def lstm_parameters(input_dim, units):
    return 4 * (input_dim * units + units * units + units)


def bigram_probability(text, previous, char, k, vocab_size):
    pairs = list(zip(text, text[1:]))
    count_pair = sum(1 for a, b in pairs if a == previous and b == char)
    count_previous = sum(1 for a, _ in pairs if a == previous)
    return (count_pair + k) / (count_previous + k * vocab_size)


def make_windows(ids, seq_len):
    ids = np.asarray(ids)
    count = (len(ids) - 1) // seq_len
    windows = np.stack([ids[i * seq_len : i * seq_len + seq_len + 1] for i in range(count)])
    return windows[:, :-1], windows[:, 1:]
