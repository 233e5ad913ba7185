"""A built model's parts, reached by role, and the step functions that decode with them.

The builders in `tfl.models` name their layers; this module is the only place outside the
builders that knows those names. Everything else (decoders, the tf_keras twin, attention maps,
the step profiler) asks for a part by its role:

- `TransformerParts`: `token_embedding`, `position` (the position layer, or None for rotary),
  `blocks` (each seen through `BlockParts`: attention norm, query, key, value, output
  projection, MLP norm, MLP in and out), `final_norm`; and `call_with_cache`, the key/value-cache
  step that cached generation runs (as keras-hub's `CausalLM.call_with_cache` does).
- `LSTMParts`: `token_embedding`, `lstm_layers`, `output` (None when tied); and `step`, one token
  through every layer with the (h, c) state carried.

>>> from tfl.models import TransformerConfig, build_model
>>> config = TransformerConfig.from_preset("nano", vocab_size=20)
>>> parts = model_parts(build_model(config), config)
>>> len(parts.blocks), parts.block(0).query.name
(2, 'query')
>>> logits, cache = parts.call_with_cache(np.array([[5, 6, 7]]), parts.empty_cache(1), 0)
>>> tuple(logits.shape), tuple(cache.shape)  # (B, n, vocab), (B, layers, k/v, T, heads, head)
((1, 3, 20), (1, 2, 2, 32, 2, 8))
"""

from dataclasses import dataclass

import numpy as np

from tfl.models.config import LSTMConfig, TransformerConfig

# The layer names the builders give, in one place.
TOKEN_EMBEDDING = "token_embedding"
FINAL_NORM = "final_norm"
OUTPUT = "logits"  # an untied output layer
POSITION_LAYERS = {"learned": "position_embedding", "sinusoidal": "position_encoding",
                   "rotary": None}


def block_name(index):
    return f"block_{index}"


def lstm_name(index):
    return f"lstm_{index}"


@dataclass(frozen=True)
class BlockParts:
    """The sub-layers of one pre-LayerNorm decoder block, by role.

    For a keras-hub `TransformerDecoder` these are its (private) sub-layers; for a
    `RotaryDecoderBlock` its public attributes. Reading keras-hub's private attributes happens
    here and nowhere else.
    """

    attention_norm: object
    attention: object  # the attention layer holding the four projections below
    query: object  # EinsumDense: (B, T, d) -> (B, T, heads, head_dim)
    key: object
    value: object
    attention_output: object  # EinsumDense: (B, T, heads, head_dim) -> (B, T, d)
    mlp_norm: object
    mlp_in: object  # Dense d -> ffn (with its activation for the rotary block)
    mlp_out: object  # Dense ffn -> d

    @classmethod
    def of(cls, block):
        from tfl.models.rotary_block import RotaryDecoderBlock

        if isinstance(block, RotaryDecoderBlock):
            return cls(block.attention_norm, block, block.query, block.key, block.value,
                       block.attention_output, block.mlp_norm, block.mlp_in, block.mlp_out)
        attention = block._self_attention_layer
        return cls(block._self_attention_layer_norm, attention, attention._query_dense,
                   attention._key_dense, attention._value_dense, attention._output_dense,
                   block._feedforward_layer_norm, block._feedforward_intermediate_dense,
                   block._feedforward_output_dense)


@dataclass(frozen=True)
class TransformerParts:
    """The parts of a model built by `transformer_lm`, and its key/value-cache step."""

    config: TransformerConfig
    token_embedding: object  # keras-hub ReversibleEmbedding (tied output: `reverse=True`)
    position: object  # PositionEmbedding, SinePositionEncoding, or None (rotary)
    blocks: tuple
    final_norm: object

    @classmethod
    def of(cls, model, config):
        position_name = POSITION_LAYERS[config.position]
        return cls(config, model.get_layer(TOKEN_EMBEDDING),
                   model.get_layer(position_name) if position_name else None,
                   tuple(model.get_layer(block_name(i)) for i in range(config.num_layers)),
                   model.get_layer(FINAL_NORM))

    def block(self, index):
        return BlockParts.of(self.blocks[index])

    def output_weights(self):
        """The output projection's weights as a Dense layer holds them: [kernel (d, V)]."""
        if self.config.tie_weights:
            return [np.asarray(self.token_embedding.embeddings).T]
        return [np.asarray(self.token_embedding.reverse_embeddings)]

    def position_table(self):
        """The (seq_len, d) position vectors added to the embeddings (None for rotary).

        For learned positions this is the live weight variable, so a decoder built during
        training sees the weights as they are now.
        """
        import tensorflow as tf

        c = self.config
        if c.position == "learned":
            return self.position.position_embeddings
        if c.position == "sinusoidal":
            return self.position(tf.zeros((1, c.seq_len, c.hidden_dim)))[0]
        return None

    def embed(self, token_ids, index=0, position_table=None):
        """Token plus position vectors for `token_ids` (B, n) at positions index..index+n-1.

        Positions are gathered from the table rather than sliced by the layer: XLA treats a
        slice start as a compile-time constant and would recompile for every position.
        """
        import tensorflow as tf

        x = self.token_embedding(token_ids)  # (B, n, d)
        table = self.position_table() if position_table is None else position_table
        if table is not None:  # rotary positions are applied inside the blocks
            x = x + tf.gather(table, index + tf.range(tf.shape(token_ids)[1]))[None]
        return x

    def empty_cache(self, batch_size):
        import tensorflow as tf

        c = self.config
        # (B, layers, keys/values, positions, heads, head_dim)
        return tf.zeros((batch_size, c.num_layers, 2, c.seq_len, c.num_heads, c.head_dim))

    def call_with_cache(self, token_ids, cache, index, position_table=None):
        """Logits (B, n, vocab) for `token_ids` (B, n) at positions index..index+n-1, and the
        cache with those positions' keys and values written in."""
        import tensorflow as tf

        x = self.embed(token_ids, index, position_table)  # (B, n, d)
        new_caches = []
        for i, block in enumerate(self.blocks):
            x, layer_cache = block(
                x, self_attention_cache=cache[:, i], self_attention_cache_update_index=index)
            new_caches.append(layer_cache)
        x = self.final_norm(x)
        logits = self.token_embedding(x, reverse=True)  # (B, n, vocab)
        return tf.cast(logits, tf.float32), tf.stack(new_caches, axis=1)


@dataclass(frozen=True)
class LSTMParts:
    """The parts of a model built by `lstm_lm`, and its one-token step."""

    config: LSTMConfig
    token_embedding: object  # keras-hub ReversibleEmbedding
    lstm_layers: tuple  # FastLSTM layers; `.cell` runs one step
    output: object  # Dense, or None when the output reuses the embedding

    @classmethod
    def of(cls, model, config):
        return cls(config, model.get_layer(TOKEN_EMBEDDING),
                   tuple(model.get_layer(lstm_name(i)) for i in range(config.num_layers)),
                   None if config.tie_weights else model.get_layer(OUTPUT))

    def output_weights(self):
        """The output projection's weights as a Dense layer holds them: [kernel (h, V), bias?]."""
        if self.output is not None:
            return self.output.get_weights()
        return [np.asarray(self.token_embedding.embeddings).T]

    def empty_state(self, batch_size):
        import tensorflow as tf

        c = self.config
        return tf.zeros((batch_size, c.num_layers, 2, c.hidden_dim))  # (B, layers, h/c, hidden)

    def step(self, tokens, states):
        """tokens (B,), states (B, layers, 2, h) -> logits (B, vocab), new states."""
        import tensorflow as tf

        x = self.token_embedding(tokens)  # (B, e)
        new_states = []
        for i, layer in enumerate(self.lstm_layers):
            x, (h, c) = layer.cell(x, [states[:, i, 0], states[:, i, 1]], training=False)
            new_states.append(tf.stack([h, c], axis=1))  # (B, 2, h)
        if self.output is None:
            logits = self.token_embedding(x, reverse=True)
        else:
            logits = self.output(x)
        return tf.cast(logits, tf.float32), tf.stack(new_states, axis=1)


def model_parts(model, config):
    """The parts of `model` (built from `config`) by role: `TransformerParts` or `LSTMParts`."""
    if isinstance(config, TransformerConfig):
        return TransformerParts.of(model, config)
    return LSTMParts.of(model, config)
