"""Sampling: keras-hub samplers, and the one step that turns next-token logits into a token.

Samplers (keras-hub's): greedy, temperature (random sampling from softmax(logits / T)), top_k,
top_p (nucleus) and beam search. Padding, unknown and start-of-text tokens are never generated:
`sample_step` masks them before the sampler sees the logits. Every decoding loop samples with
`sample_step` (inside its compiled code) or `next_token` (the same step, compiled, for arrays),
so all of them draw the same tokens for the same seed.

>>> import numpy as np
>>> logits = np.array([[9.0, 9.0, 9.0, 1.0, 2.0]])  # the special tokens 0..2 score highest
>>> next_token(make_sampler("greedy"), logits)
array([4], dtype=int32)
"""

import math

import keras_hub
import numpy as np
import tensorflow as tf

from tfl.errors import TflError, did_you_mean
from tfl.inference.caching import LRUCache
from tfl.tokenizers.base import NUM_SPECIAL

SAMPLERS = ("greedy", "temperature", "top_k", "top_p", "beam")

_SAMPLERS = LRUCache(16)  # settings -> (sampler, its initial RNG state)
_COMPILED_STEPS = LRUCache(16)  # sampler -> `sample_step` compiled for it


def make_sampler(name="greedy", temperature=1.0, top_k=10, top_p=0.9, num_beams=4, seed=None,
                 vocab_size=None):
    """The keras-hub sampler called `name`, e.g. `make_sampler("top_k", top_k=5, seed=1)`.

    Every setting is checked (`check_sampler_settings`), also those the chosen sampler does not
    use. A `top_k` larger than `vocab_size` (when given) keeps every token, as it says: it is
    lowered to the vocabulary size. Samplers are kept per setting, so the compiled loops that use
    them are traced once; a seeded sampler's random state is reset on every call, so the same
    seed gives the same text.

    >>> make_sampler("top_p", top_p=0.8).p
    0.8
    >>> make_sampler("top_k", top_k=100, vocab_size=30).k
    30
    """
    check_sampler_settings(name, temperature, top_k, top_p, num_beams)
    if vocab_size is not None:
        top_k = min(top_k, vocab_size)
    key = (name, temperature, top_k, top_p, num_beams, seed)
    sampler, initial_state = _SAMPLERS.get(
        key, lambda: _with_initial_state(_new_sampler(name, temperature, top_k, top_p,
                                                      num_beams, seed)))
    if seed is not None and initial_state is not None:
        sampler.seed_generator.state.assign(initial_state)
    return sampler


def check_sampler_settings(name="greedy", temperature=1.0, top_k=10, top_p=0.9, num_beams=4):
    """Raise a one-line `TflError` for an unknown sampler or an impossible setting.

    Every setting is checked whichever sampler is chosen: a value that is wrong for one sampler
    is a mistake for all of them, and refusing it always is easier to predict than a rule that
    depends on the sampler.

    >>> check_sampler_settings("greedy", top_p=1.5)
    Traceback (most recent call last):
    ...
    tfl.errors.TflError: top_p must be in (0, 1], got 1.5
    """
    if name not in SAMPLERS:
        raise TflError(f"unknown sampler {name!r}; {did_you_mean(name, SAMPLERS)}")
    if not (math.isfinite(temperature) and temperature > 0):
        hint = "; use --sampler greedy for the most likely token" if name != "greedy" else ""
        raise TflError(f"temperature must be a positive number, got {temperature}{hint}")
    if not _is_whole(top_k) or top_k < 1:
        raise TflError(f"top_k must be a whole number of at least 1, got {top_k}")
    if not 0 < top_p <= 1:  # (also refuses NaN)
        raise TflError(f"top_p must be in (0, 1], got {top_p}")
    if not _is_whole(num_beams) or num_beams < 1:
        raise TflError(f"num_beams must be a whole number of at least 1, got {num_beams}")


def _is_whole(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _with_initial_state(sampler):
    generator = getattr(sampler, "seed_generator", None)
    return sampler, None if generator is None else generator.state.numpy()


def _new_sampler(name, temperature, top_k, top_p, num_beams, seed):
    samplers = keras_hub.samplers
    if name == "greedy":
        return samplers.GreedySampler()
    if name == "temperature":
        return samplers.RandomSampler(temperature=temperature, seed=seed)
    if name == "top_k":
        return samplers.TopKSampler(k=top_k, temperature=temperature, seed=seed)
    if name == "top_p":
        return samplers.TopPSampler(p=top_p, temperature=temperature, seed=seed)
    return samplers.BeamSampler(num_beams=num_beams, temperature=temperature)


def without_special_tokens(logits):
    """`logits` (batch, vocab) with padding, unknown and start-of-text made impossible, so
    generated text never contains them. Accepts numpy arrays and tensors."""
    if isinstance(logits, np.ndarray):
        logits = logits.copy()
        logits[:, :NUM_SPECIAL] = -1e9
        return logits
    allowed = tf.range(tf.shape(logits)[-1]) >= NUM_SPECIAL  # (vocab,)
    return tf.where(allowed, logits, tf.constant(-1e9, logits.dtype))


def sample_step(sampler, logits):
    """One token id per row of `logits` (batch, vocab) -> (batch,) int32, chosen by `sampler`
    among the tokens that may be generated. Runs inside compiled code."""
    probabilities = sampler.compute_probabilities(without_special_tokens(logits))
    return tf.cast(sampler.get_next_token(probabilities), tf.int32)


def next_token(sampler, logits):
    """`sample_step` for an array of `logits` (batch, vocab): a (batch,) array of token ids.

    Compiled with XLA like the decoders' segment loops: TensorFlow's random ops draw different
    numbers with and without XLA, and both paths must draw the same tokens.
    """
    step = _COMPILED_STEPS.get(sampler, lambda: tf.function(
        lambda logits: sample_step(sampler, logits), jit_compile=True))
    return step(tf.constant(logits)).numpy()
