"""Checks for the classroom exercises (notebook `07_exercises`).

Each `check_*` function takes the student's function, runs it on cases with known answers
(computed here independently, often on random inputs), and returns a short message. A wrong
answer raises `ExerciseError` saying which case failed and what was expected, so a student can
tell at once whether the answer is right. Solutions live apart, in `notebooks/solutions/`.

>>> import math
>>> check_perplexity(lambda losses: math.exp(sum(losses) / len(losses)))
'correct: perplexity'
"""

import math

import numpy as np


class ExerciseError(AssertionError):
    """The student's answer is wrong; the message says on which case."""


def _close(got, expected, what, tol=1e-6):
    got_array, expected_array = np.asarray(got, dtype=float), np.asarray(expected, dtype=float)
    if got_array.shape != expected_array.shape or not np.allclose(
            got_array, expected_array, atol=tol, rtol=tol):
        raise ExerciseError(f"{what}: expected {expected!r}, got {got!r}")


def _ok(name):
    return f"correct: {name}"


def check_perplexity(perplexity):
    """1. `perplexity(losses)`: perplexity from per-token losses in nats."""
    _close(perplexity([math.log(4.0)] * 3), 4.0, "three tokens, each with probability 1/4")
    rng = np.random.default_rng(0)
    losses = rng.uniform(0.1, 3.0, size=50).tolist()
    _close(perplexity(losses), math.exp(np.mean(losses)), "50 random losses")
    return _ok("perplexity")


def check_bits_per_character(bits_per_character):
    """2. `bits_per_character(mean_loss_nats, tokens, characters)`."""
    _close(bits_per_character(math.log(2), 10, 10), 1.0, "one bit per token, one char per token")
    _close(bits_per_character(2.0, 100, 400), 2.0 * 100 / math.log(2) / 400,
           "a tokenizer with 4 characters per token")
    return _ok("bits per character")


def check_causal_mask(causal_mask):
    """3. `causal_mask(n)`: an (n, n) boolean array, True where query i may attend to key j."""
    for n in (1, 4, 7):
        mask = np.asarray(causal_mask(n))
        expected = np.tril(np.ones((n, n), dtype=bool))
        if mask.shape != (n, n) or mask.dtype != bool or not np.array_equal(mask, expected):
            raise ExerciseError(f"causal_mask({n}) should be\n{expected}\ngot\n{mask}")
    return _ok("causal mask")


def _reference_attention(q, k, v, mask):
    scores = q @ k.T / math.sqrt(q.shape[-1])
    scores = np.where(mask, scores, -np.inf)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    return weights @ v


def check_attention(attention):
    """4. `attention(q, k, v, mask)`: scaled dot-product attention for one head, numpy arrays
    q, k: (n, d), v: (n, dv), mask: (n, n) boolean."""
    rng = np.random.default_rng(1)
    q, k, v = rng.normal(size=(5, 4)), rng.normal(size=(5, 4)), rng.normal(size=(5, 3))
    mask = np.tril(np.ones((5, 5), dtype=bool))
    _close(attention(q, k, v, mask), _reference_attention(q, k, v, mask), "causal, 5 positions",
           tol=1e-5)
    full = np.ones((5, 5), dtype=bool)
    _close(attention(q, k, v, full), _reference_attention(q, k, v, full), "no mask", tol=1e-5)
    return _ok("scaled dot-product attention")


def check_top_k_filter(top_k_filter):
    """5. `top_k_filter(logits, k)`: logits with all but the k largest set to -inf."""
    logits = np.array([1.0, 3.0, -2.0, 2.5, 0.0])
    got = np.asarray(top_k_filter(logits, 2), dtype=float)
    expected = np.array([-np.inf, 3.0, -np.inf, 2.5, -np.inf])
    if not np.array_equal(got, expected):
        raise ExerciseError(f"top_k_filter({logits}, 2): expected {expected}, got {got}")
    got = np.asarray(top_k_filter(logits, 5), dtype=float)
    if not np.array_equal(got, logits):
        raise ExerciseError("with k equal to the vocabulary size nothing should be filtered")
    return _ok("top-k filtering")


def check_softmax_with_temperature(softmax):
    """6. `softmax(logits, temperature)`: probabilities; a low temperature sharpens them."""
    logits = np.array([2.0, 1.0, 0.1])
    for t in (1.0, 0.5, 2.0):
        expected = np.exp(logits / t - np.max(logits / t))
        _close(softmax(logits, t), expected / expected.sum(), f"temperature {t}")
    _close(softmax(np.array([1000.0, 0.0]), 1.0), [1.0, 0.0], "large logits (overflow?)")
    return _ok("softmax with temperature")


def check_block_parameters(block_parameters):
    """7. `block_parameters(d, ffn)`: trainable parameters of one pre-LN Transformer block
    (attention with biases, MLP with biases, two LayerNorms)."""
    for d, f in ((128, 512), (16, 64), (384, 1536)):
        expected = (4 * d * d + 4 * d) + (2 * d * f + f + d) + 4 * d
        _close(block_parameters(d, f), expected, f"d={d}, ffn={f}")
    return _ok("parameters of a Transformer block")


def check_lstm_parameters(lstm_parameters):
    """8. `lstm_parameters(input_dim, units)`: trainable parameters of one LSTM layer."""
    for i, h in ((128, 512), (16, 32), (512, 512)):
        _close(lstm_parameters(i, h), 4 * (i * h + h * h + h), f"input {i}, units {h}")
    return _ok("parameters of an LSTM layer")


def check_bigram_probability(bigram_probability):
    """9. `bigram_probability(text, previous, char, k, vocab_size)`: add-k smoothed P(char | previous)."""
    text = "abracadabra"
    # c("ab") = 2, "a" is followed by something 4 times
    _close(bigram_probability(text, "a", "b", 0.0, 5), 2 / 4, "no smoothing")
    _close(bigram_probability(text, "a", "b", 1.0, 5), 3 / 9, "add-one")
    _close(bigram_probability(text, "d", "z", 1.0, 5), 1 / 6, "an unseen pair")
    return _ok("add-k bigram probability")


def check_windows(make_windows):
    """10. `make_windows(ids, seq_len)`: (inputs, targets) arrays from non-overlapping windows of
    seq_len + 1 tokens (drop what does not fill a window)."""
    inputs, targets = make_windows(list(range(10)), 3)
    _close(inputs, [[0, 1, 2], [3, 4, 5], [6, 7, 8]], "inputs of range(10), seq_len 3")
    _close(targets, [[1, 2, 3], [4, 5, 6], [7, 8, 9]], "targets of range(10), seq_len 3")
    inputs, _ = make_windows(list(range(8)), 3)
    _close(inputs, [[0, 1, 2], [3, 4, 5]], "range(8): the last window would need token 8")
    return _ok("next-token windows")


CHECKS = {
    "perplexity": check_perplexity,
    "bits_per_character": check_bits_per_character,
    "causal_mask": check_causal_mask,
    "attention": check_attention,
    "top_k_filter": check_top_k_filter,
    "softmax": check_softmax_with_temperature,
    "block_parameters": check_block_parameters,
    "lstm_parameters": check_lstm_parameters,
    "bigram_probability": check_bigram_probability,
    "make_windows": check_windows,
}


def report(check, answer):
    """Run `check(answer)` and print the verdict instead of raising (for notebook cells)."""
    try:
        message = check(answer)
    except NotImplementedError:
        message = "not done yet: replace `raise NotImplementedError` with your answer"
    except ExerciseError as e:
        message = f"not yet right: {e}"
    except Exception as e:  # a crash in the student's code is feedback too
        message = f"your function raised {type(e).__name__}: {e}"
    print(message)
    return message
