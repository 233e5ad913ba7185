"""Decoders: how a trained model produces next-token logits one step at a time.

A decoder has two calls, both returning next-token logits of shape `(batch, vocab)`:
`start(context)` reads a whole context (a `(batch, n)` array of ids) and `step(tokens)` reads one
more token per row. `max_context` is how many tokens the decoder can hold (None: unbounded).

- `CachedTransformerDecoder`: a key/value cache per block. `start` runs the prompt once (the
  prefill) and stores every position's keys and values; `step` computes keys and values for the
  new position only and attends over the cache, so a new token costs the same at position 5
  or 500. The cached step is the model's own (`tfl.models.parts`); the decoder compiles it and
  keeps track of the position.
- `StatefulLSTMDecoder`: carries each LSTM layer's (h, c) state from step to step.
- `RecomputeDecoder`: the reference. Re-runs the whole window for every token (beam search
  included).

The fast decoders sample many tokens per compiled call (`sample_segment`) in a loop of their own
rather than keras-hub's `Sampler.__call__` loop: that loop returns only the token buffer and drops
the cache, so a segment could hand its state to the next one only by copying the whole cache out
at every step; measured, that was never clearly faster and grew slower with the context length.

`make_decoder` keeps the last few decoders it made, so a loop of calls on one model compiles
once, and a model that is no longer used is freed when it falls out.

>>> from tfl.models import TransformerConfig, build_model
>>> config = TransformerConfig.from_preset("nano", vocab_size=20)
>>> model = build_model(config)
>>> decoder = CachedTransformerDecoder(model, config)
>>> decoder.start(np.array([[5, 6, 7]])).shape, decoder.step(np.array([8])).shape
((1, 20), (1, 20))
"""

import numpy as np
import tensorflow as tf

from tfl.errors import TflError
from tfl.inference.caching import LRUCache
from tfl.inference.sampling import sample_step
from tfl.models import LSTMConfig, TransformerConfig
from tfl.models.parts import model_parts
from tfl.tokenizers.base import PAD_ID


def _pad_right(context, length):
    """(batch, n) ids -> (batch, length) int32, padded on the right with PAD_ID."""
    context = np.asarray(context, dtype=np.int32)
    window = np.full((context.shape[0], length), PAD_ID, dtype=np.int32)
    window[:, : context.shape[1]] = context
    return window


class RecomputeDecoder:
    """Full recomputation over the window for every new token (the uncached reference).

    The model is causal, so padding the window on the right never changes the logits at the
    last real position. Beam search recomputes too: each step re-reads every beam's whole
    prompt, so it checks the cached decoder's beam search independently.
    """

    def __init__(self, model, config):
        self.model, self.seq_len = model, config.seq_len
        self.max_context = config.seq_len

        @tf.function(jit_compile=True, reduce_retracing=True)
        def logits_at(window, position):
            logits = tf.cast(self.model(window, training=False), tf.float32)  # (B, T, vocab)
            return tf.gather(logits, position, axis=1)  # a dynamic index XLA need not recompile for

        self._logits_at = logits_at

    def start(self, context):
        self.context = np.asarray(context, dtype=np.int32)
        return self._logits()

    def step(self, tokens):
        self.context = np.concatenate([self.context, np.asarray(tokens, np.int32)[:, None]], 1)
        return self._logits()

    def _logits(self):
        n = self.context.shape[1]
        if n > self.seq_len:
            raise TflError(f"context of {n} tokens exceeds the model's {self.seq_len}")
        window = _pad_right(self.context, self.seq_len)
        return self.window_logits(tf.constant(window), tf.constant(n - 1)).numpy()

    def window_logits(self, window, position):
        """Next-token logits (B, vocab) at `position` of `window` (B, seq_len), recomputed."""
        return self._logits_at(window, position)

    # keras-hub's BeamSampler calls `next(prompt, cache, index)`; nothing is cached here.
    def beam_start(self, context):
        return ()

    def beam_next(self, prompt, cache, index):
        prompt = tf.cast(prompt, tf.int32)  # (beams, total), total <= seq_len
        window = tf.pad(prompt, [[0, 0], [0, self.seq_len - prompt.shape[1]]],
                        constant_values=PAD_ID)  # (beams, seq_len)
        return self.window_logits(window, index - 1), None, cache


SEGMENT_TOKENS = 64  # most tokens sampled in one compiled call (keeps streaming responsive)


class _CompiledSegments:
    """Many decoding steps in one XLA call: sample a token, feed it back, repeat.

    Launching a compiled step costs more than the step itself for small models, so the fast
    decoders run the whole sample-and-feed loop inside a `tf.while_loop`. Sampling is
    `tfl.inference.sampling.sample_step`, so a segment draws exactly the tokens the step-by-step
    loop would. Subclasses define `_step_tensor`, `_get_state`, `_index` and `_advance`.
    """

    def __init__(self):
        self._segments = LRUCache(4)  # sampler -> its compiled loop

    def sample_segment(self, sampler, logits, steps):
        """Sample `steps` tokens (at most SEGMENT_TOKENS) from `logits` onwards, feeding each
        back. Returns the tokens and the next-token logits after the last of them."""
        segment = self._segments.get(sampler, lambda: self._compile_segment(sampler))
        tokens, logits, state = segment(tf.constant(logits), self._get_state(),
                                        tf.constant(self._index()), tf.constant(steps))
        self._advance(state, steps)
        return tokens.numpy()[:steps].tolist(), logits.numpy()

    def _compile_segment(self, sampler):
        @tf.function(jit_compile=True)
        def segment(logits, state, index, steps):
            def body(i, logits, state, tokens):
                token = sample_step(sampler, logits)  # (1,)
                tokens = tf.tensor_scatter_nd_update(tokens, [[i]], token)
                logits, state = self._step_tensor(token, state, index + i)
                return i + 1, logits, state, tokens

            tokens = tf.zeros((SEGMENT_TOKENS,), tf.int32)
            _, logits, state, tokens = tf.while_loop(
                lambda i, *_: i < steps, body, (tf.constant(0), logits, state, tokens),
                maximum_iterations=SEGMENT_TOKENS)
            return tokens, logits, state

        return segment


class CachedTransformerDecoder(_CompiledSegments):
    """Key/value-cache decoding for a model built by `transformer_lm`."""

    def __init__(self, model, config: TransformerConfig):
        super().__init__()
        self.config = config
        self.seq_len = self.max_context = config.seq_len
        self.parts = model_parts(model, config)
        # Learned positions: the live weight variable, so a decoder built during training
        # decodes with the weights as they are now. Sinusoidal: computed once. Rotary: None.
        self._position_table = self.parts.position_table()
        self._prefill = tf.function(self._call_with_cache, jit_compile=True)
        self._step = tf.function(self._call_with_cache, jit_compile=True)

    def _call_with_cache(self, token_ids, cache, index):
        """Logits (B, n, vocab) for `token_ids` (B, n) at positions index..index+n-1, new cache."""
        return self.parts.call_with_cache(token_ids, cache, index, self._position_table)

    def start(self, context):
        context = np.asarray(context, dtype=np.int32)
        batch, n = context.shape
        if n > self.seq_len:
            raise TflError(f"context of {n} tokens exceeds the model's {self.seq_len}")
        # Prefill a full-length window (one compiled shape); positions after the prompt hold
        # padding, which later steps overwrite before any query can attend to them.
        logits, self.cache = self._prefill(
            _pad_right(context, self.seq_len), self.parts.empty_cache(batch), tf.constant(0))
        self.position = n
        return logits[:, n - 1].numpy()

    def step(self, tokens):
        if self.position >= self.seq_len:
            raise TflError("the key/value cache is full; start a new window")
        tokens = tf.constant(np.asarray(tokens, np.int32)[:, None])
        logits, self.cache = self._step(tokens, self.cache, tf.constant(self.position))
        self.position += 1
        return logits[:, 0].numpy()

    def _step_tensor(self, token, cache, index):
        logits, cache = self._call_with_cache(token[:, None], cache, index)  # (1, 1, vocab)
        return logits[:, 0], cache

    def _get_state(self):
        return self.cache

    def _index(self):
        return self.position

    def _advance(self, cache, steps):
        self.cache, self.position = cache, self.position + steps

    # keras-hub samplers drive decoding through `next(prompt, cache, index)`; beam search uses it.
    def beam_start(self, context):
        self.start(context)
        return self.cache

    def beam_next(self, prompt, cache, index):
        token = prompt[:, index - 1 : index]  # (B, 1): the last token written
        logits, cache = self._step(token, cache, index - 1)
        return logits[:, 0], None, cache


class StatefulLSTMDecoder(_CompiledSegments):
    """Step-by-step decoding for a model built by `lstm_lm`, carrying (h, c) per layer."""

    max_context = None  # an LSTM has no window: its state summarises everything read so far

    def __init__(self, model, config: LSTMConfig):
        super().__init__()
        self.config = config
        self.seq_len = config.seq_len
        self.parts = model_parts(model, config)
        self._step = tf.function(self._step_tensor, jit_compile=True)

    def start(self, context):
        context = np.asarray(context, dtype=np.int32)
        self.states = self.parts.empty_state(context.shape[0])
        for t in range(context.shape[1]):
            logits = self.step(context[:, t])
        return logits

    def step(self, tokens):
        logits, self.states = self._step(tf.constant(np.asarray(tokens, np.int32)), self.states)
        return logits.numpy()

    def _step_tensor(self, token, states, index=None):
        return self.parts.step(token, states)  # (the position does not matter to an LSTM)

    def _get_state(self):
        return self.states

    def _index(self):
        return 0  # an LSTM step does not depend on the position

    def _advance(self, states, steps):
        self.states = states

    def beam_start(self, context):
        context = np.asarray(context, dtype=np.int32)
        self.states = self.parts.empty_state(context.shape[0])
        for t in range(context.shape[1] - 1):  # beam_next reads the last prompt token itself
            self.step(context[:, t])
        return self.states

    def beam_next(self, prompt, cache, index):
        logits, states = self._step(prompt[:, index - 1], cache)
        return logits, None, states


_DECODERS = LRUCache(4)  # (model, config, cached) -> decoder; holds the model until evicted


def make_decoder(model, config, cached=True):
    """The fast decoder for `config`'s architecture, or the recomputing reference.

    The last few decoders made are kept, so a loop of calls on one model traces the compiled
    functions once, not per call.

    >>> from tfl.models import LSTMConfig, build_model
    >>> config = LSTMConfig.from_preset("nano", vocab_size=20)
    >>> model = build_model(config)
    >>> decoder = make_decoder(model, config)
    >>> type(decoder).__name__, make_decoder(model, config) is decoder
    ('StatefulLSTMDecoder', True)
    """
    return _DECODERS.get((model, config, cached), lambda: _new_decoder(model, config, cached))


def _new_decoder(model, config, cached):
    if not cached:
        return RecomputeDecoder(model, config)
    if isinstance(config, TransformerConfig):
        return CachedTransformerDecoder(model, config)
    return StatefulLSTMDecoder(model, config)
