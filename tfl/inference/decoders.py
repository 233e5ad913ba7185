"""Decoders: how a trained model produces next-token logits one step at a time.

A decoder has two calls, both returning next-token logits of shape `(batch, vocab)`:
`start(context)` reads a whole context (a `(batch, n)` array of ids) and `step(tokens)` reads one
more token per row. `max_context` is how many tokens the decoder can hold (None: unbounded).

- `CachedTransformerDecoder`: a key/value cache per block. `start` runs the prompt once (the
  prefill) and stores every position's keys and values; `step` computes keys and values for the
  new position only and attends over the cache, so a new token costs the same at position 5
  or 500. Uses keras-hub's `TransformerDecoder` cache arguments.
- `StatefulLSTMDecoder`: carries each LSTM layer's (h, c) state from step to step.
- `RecomputeDecoder`: the reference. Re-runs the whole window for every token.

>>> from tfl.models import TransformerConfig, build_model
>>> config = TransformerConfig.from_preset("nano", vocab_size=20)
>>> model = build_model(config)
>>> decoder = CachedTransformerDecoder(model, config)
>>> decoder.start(np.array([[5, 6, 7]])).shape, decoder.step(np.array([8])).shape
((1, 20), (1, 20))
"""

import weakref

import numpy as np
import tensorflow as tf

from tfl.errors import TflError
from tfl.models import LSTMConfig, TransformerConfig
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
    last real position.
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
        return self._logits_at(window, tf.constant(n - 1)).numpy()


SEGMENT_TOKENS = 64  # most tokens sampled in one compiled call (keeps streaming responsive)


class _CompiledSegments:
    """Many decoding steps in one XLA call: sample a token, feed it back, repeat.

    Launching a compiled step costs more than the step itself for small models, so the fast
    decoders run the whole sample-and-feed loop inside a `tf.while_loop`. Sampling uses the
    keras-hub sampler's own `compute_probabilities` and `get_next_token`, so a segment draws
    exactly the tokens the step-by-step loop would. Subclasses define `_step_tensor`,
    `_get_state` and `_advance`.
    """

    def sample_segment(self, sampler, logits, steps):
        """Sample `steps` tokens (at most SEGMENT_TOKENS) from `logits` onwards, feeding each
        back. Returns the tokens and the next-token logits after the last of them."""
        from tfl.inference.generate import without_special_tokens

        segments = self.__dict__.setdefault("_segments", {})
        if id(sampler) not in segments:

            @tf.function(jit_compile=True)
            def segment(logits, state, index, steps):
                def body(i, logits, state, tokens):
                    probabilities = sampler.compute_probabilities(without_special_tokens(logits))
                    token = tf.cast(sampler.get_next_token(probabilities), tf.int32)  # (1,)
                    tokens = tf.tensor_scatter_nd_update(tokens, [[i]], token)
                    logits, state = self._step_tensor(token, state, index + i)
                    return i + 1, logits, state, tokens

                tokens = tf.zeros((SEGMENT_TOKENS,), tf.int32)
                _, logits, state, tokens = tf.while_loop(
                    lambda i, *_: i < steps, body, (tf.constant(0), logits, state, tokens),
                    maximum_iterations=SEGMENT_TOKENS)
                return tokens, logits, state

            segments[id(sampler)] = (sampler, segment)
        segment = segments[id(sampler)][1]
        tokens, logits, state = segment(tf.constant(logits), self._get_state(),
                                        tf.constant(self._index()), tf.constant(steps))
        self._advance(state, steps)
        return tokens.numpy()[:steps].tolist(), logits.numpy()


class CachedTransformerDecoder(_CompiledSegments):
    """Key/value-cache decoding for a model built by `transformer_lm`."""

    def __init__(self, model, config: TransformerConfig):
        self.config = config
        self.seq_len = self.max_context = config.seq_len
        self.token_embedding = model.get_layer("token_embedding")
        self.position_layer = {"learned": "position_embedding", "sinusoidal": "position_encoding",
                               "rotary": None}[config.position]
        if self.position_layer:
            self.position_layer = model.get_layer(self.position_layer)
        self.blocks = [model.get_layer(f"block_{i}") for i in range(config.num_layers)]
        self.final_norm = model.get_layer("final_norm")
        if config.position == "sinusoidal":
            dummy = tf.zeros((1, config.seq_len, config.hidden_dim))
            self._sine_table = self.position_layer(dummy)[0]  # (seq_len, d), fixed
        self._prefill = tf.function(self.call_with_cache, jit_compile=True)
        self._step = tf.function(self.call_with_cache, jit_compile=True)

    def _positions(self, index, n):
        """Position vectors for positions index..index+n-1, shape (1, n, d).

        Gathered from the table rather than sliced by the layer: XLA treats a slice start as a
        compile-time constant and would recompile the step for every position."""
        if self.config.position == "learned":
            table = self.position_layer.position_embeddings  # the live (seq_len, d) weights
        else:
            table = self._sine_table
        return tf.gather(table, index + tf.range(n))[None]

    def empty_cache(self, batch_size):
        c = self.config
        # (B, layers, keys/values, positions, heads, head_dim)
        return tf.zeros((batch_size, c.num_layers, 2, c.seq_len, c.num_heads, c.head_dim))

    def call_with_cache(self, token_ids, cache, index):
        """Logits for `token_ids` (B, n) placed at positions index..index+n-1, and the new cache."""
        x = self.token_embedding(token_ids)  # (B, n, d)
        if self.position_layer is not None:  # rotary positions are applied inside the blocks
            x = x + self._positions(index, tf.shape(token_ids)[1])
        new_caches = []
        for i, block in enumerate(self.blocks):
            x, layer_cache = block(
                x, self_attention_cache=cache[:, i], self_attention_cache_update_index=index)
            new_caches.append(layer_cache)
        x = self.final_norm(x)
        logits = self.token_embedding(x, reverse=True)  # (B, n, vocab)
        return tf.cast(logits, tf.float32), tf.stack(new_caches, axis=1)

    def start(self, context):
        context = np.asarray(context, dtype=np.int32)
        batch, n = context.shape
        if n > self.seq_len:
            raise TflError(f"context of {n} tokens exceeds the model's {self.seq_len}")
        # Prefill a full-length window (one compiled shape); positions after the prompt hold
        # padding, which later steps overwrite before any query can attend to them.
        logits, self.cache = self._prefill(
            _pad_right(context, self.seq_len), self.empty_cache(batch), tf.constant(0))
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
        logits, cache = self.call_with_cache(token[:, None], cache, index)
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
        self.config = config
        self.seq_len = config.seq_len
        self.embedding = model.get_layer("token_embedding")
        self.cells = [model.get_layer(f"lstm_{i}").cell for i in range(config.num_layers)]
        self.output_layer = None if config.tie_weights else model.get_layer("logits")
        self._step = tf.function(self._step_fn, jit_compile=True)

    def _step_fn(self, tokens, states):
        """tokens (B,), states (B, layers, 2, h) -> logits (B, vocab), new states."""
        x = self.embedding(tokens)  # (B, e)
        new_states = []
        for i, cell in enumerate(self.cells):
            x, (h, c) = cell(x, [states[:, i, 0], states[:, i, 1]], training=False)  # (B, h)
            new_states.append(tf.stack([h, c], axis=1))  # (B, 2, h)
        if self.output_layer is None:
            logits = self.embedding(x, reverse=True)
        else:
            logits = self.output_layer(x)
        return tf.cast(logits, tf.float32), tf.stack(new_states, axis=1)

    def empty_state(self, batch_size):
        return tf.zeros((batch_size, self.config.num_layers, 2, self.config.hidden_dim))

    def start(self, context):
        context = np.asarray(context, dtype=np.int32)
        self.states = self.empty_state(context.shape[0])
        for t in range(context.shape[1]):
            logits = self.step(context[:, t])
        return logits

    def step(self, tokens):
        logits, self.states = self._step(tf.constant(np.asarray(tokens, np.int32)), self.states)
        return logits.numpy()

    def _step_tensor(self, token, states, index):
        return self._step_fn(token, states)

    def _get_state(self):
        return self.states

    def _index(self):
        return 0  # an LSTM step does not depend on the position

    def _advance(self, states, steps):
        self.states = states

    def beam_start(self, context):
        context = np.asarray(context, dtype=np.int32)
        self.states = self.empty_state(context.shape[0])
        for t in range(context.shape[1] - 1):  # beam_next reads the last prompt token itself
            self.step(context[:, t])
        return self.states

    def beam_next(self, prompt, cache, index):
        logits, states = self._step(prompt[:, index - 1], cache)
        return logits, None, states


_DECODERS = weakref.WeakKeyDictionary()  # model -> {(config, cached): decoder}


def make_decoder(model, config, cached=True):
    """The fast decoder for `config`'s architecture, or the recomputing reference.

    Decoders are kept per model, so their compiled functions are traced once, not per call.
    """
    per_model = _DECODERS.setdefault(model, {})
    key = (config, cached)
    if key not in per_model:
        if not cached:
            per_model[key] = RecomputeDecoder(model, config)
        elif isinstance(config, TransformerConfig):
            per_model[key] = CachedTransformerDecoder(model, config)
        else:
            per_model[key] = StatefulLSTMDecoder(model, config)
    return per_model[key]
