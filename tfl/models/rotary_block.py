"""`RotaryDecoderBlock`: a pre-LayerNorm decoder block whose attention uses rotary positions.

keras-hub's `TransformerDecoder` adds positions to the embeddings; it has no hook for rotary
position embeddings (RoPE), which instead rotate each query and key by an angle proportional to
its position, so that attention scores depend on *relative* positions. This block is the same
computation as a pre-LN `TransformerDecoder` (same weights and parameter count) with keras-hub's
`RotaryEmbedding` applied to queries and keys, and the same key/value-cache call arguments, so
the cached decoder drives both alike.

    x -> LayerNorm -> q, k, v (rotate q, k) -> causal attention -> output projection -> + x
      -> LayerNorm -> Dense(ffn, gelu) -> Dense(d) -> + x

>>> import numpy as np
>>> block = RotaryDecoderBlock(intermediate_dim=32, num_heads=2)
>>> block(np.zeros((1, 5, 16), "float32")).shape
TensorShape([1, 5, 16])
"""

import math

import keras
import keras_hub
from keras import ops


@keras.saving.register_keras_serializable(package="tfl")
class RotaryDecoderBlock(keras.layers.Layer):
    """Pre-LN causal self-attention block with rotary position embeddings.

    Args:
        intermediate_dim: width of the MLP.
        num_heads: attention heads; the input width must divide by it.
        dropout: dropout on attention probabilities and on both residual branches.
        activation: MLP activation.
        layer_norm_epsilon: LayerNorm epsilon.
        kernel_initializer: initializer of every projection.
        max_wavelength: RoPE's longest wavelength.
    """

    def __init__(self, intermediate_dim, num_heads, dropout=0.0, activation="gelu",
                 layer_norm_epsilon=1e-5, kernel_initializer="glorot_uniform",
                 max_wavelength=10000, **kwargs):
        super().__init__(**kwargs)
        self.intermediate_dim = intermediate_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.activation = activation
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.max_wavelength = max_wavelength

    def build(self, input_shape):
        d = input_shape[-1]
        self.head_dim = d // self.num_heads
        init = lambda: keras.initializers.get(  # noqa: E731  (a fresh initializer per layer)
            keras.initializers.serialize(self.kernel_initializer))
        shape = (None, self.num_heads, self.head_dim)
        self.attention_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, name="attention_norm")
        self.query = keras.layers.EinsumDense("btd,dhk->bthk", shape, bias_axes="hk",
                                              kernel_initializer=init(), name="query")
        self.key = keras.layers.EinsumDense("btd,dhk->bthk", shape, bias_axes="hk",
                                            kernel_initializer=init(), name="key")
        self.value = keras.layers.EinsumDense("btd,dhk->bthk", shape, bias_axes="hk",
                                              kernel_initializer=init(), name="value")
        self.attention_output = keras.layers.EinsumDense(
            "bthk,hkd->btd", (None, d), bias_axes="d", kernel_initializer=init(),
            name="attention_output")
        self.rotary = keras_hub.layers.RotaryEmbedding(max_wavelength=self.max_wavelength,
                                                       name="rotary")
        self.attention_dropout = keras.layers.Dropout(self.dropout)
        self.residual_dropout = keras.layers.Dropout(self.dropout)
        self.mlp_norm = keras.layers.LayerNormalization(epsilon=self.layer_norm_epsilon,
                                                        name="mlp_norm")
        self.mlp_in = keras.layers.Dense(self.intermediate_dim, activation=self.activation,
                                         kernel_initializer=init(), name="mlp_in")
        self.mlp_out = keras.layers.Dense(d, kernel_initializer=init(), name="mlp_out")
        self.mlp_dropout = keras.layers.Dropout(self.dropout)
        for layer in (self.attention_norm, self.query, self.key, self.value, self.mlp_norm):
            layer.build(input_shape)
        self.attention_output.build((None, None, self.num_heads, self.head_dim))
        self.mlp_in.build(input_shape)
        self.mlp_out.build(tuple(input_shape[:-1]) + (self.intermediate_dim,))
        self.built = True

    def call(self, x, self_attention_cache=None, self_attention_cache_update_index=None,
             training=None):
        start = 0 if self_attention_cache_update_index is None else \
            self_attention_cache_update_index
        h = self.attention_norm(x)
        q = self.rotary(self.query(h), start_index=start)  # (B, n, H, D)
        k = self.rotary(self.key(h), start_index=start)  # (B, n, H, D)
        v = self.value(h)  # (B, n, H, D)
        n = ops.shape(x)[1]
        if self_attention_cache is not None:
            # Write this call's keys and values at positions start..start+n-1; attend to all.
            k = ops.slice_update(self_attention_cache[:, 0], [0, start, 0, 0], k)
            v = ops.slice_update(self_attention_cache[:, 1], [0, start, 0, 0], v)
            self_attention_cache = ops.stack([k, v], axis=1)
        key_positions = ops.arange(ops.shape(k)[1])
        query_positions = ops.arange(n) + start
        causal = query_positions[:, None] >= key_positions[None, :]  # (n, keys)
        scores = ops.einsum("bqhk,bshk->bhqs", q, k) / math.sqrt(self.head_dim)
        scores = ops.where(causal[None, None], scores, ops.cast(-1e9, scores.dtype))
        weights = self.attention_dropout(ops.softmax(scores, axis=-1), training=training)
        attended = ops.einsum("bhqs,bshk->bqhk", weights, v)  # (B, n, H, D)
        x = x + self.residual_dropout(self.attention_output(attended), training=training)
        x = x + self.mlp_dropout(self.mlp_out(self.mlp_in(self.mlp_norm(x))), training=training)
        if self_attention_cache is not None:
            return x, self_attention_cache
        return x

    def get_config(self):
        config = super().get_config()
        config.update(
            intermediate_dim=self.intermediate_dim,
            num_heads=self.num_heads,
            dropout=self.dropout,
            activation=self.activation,
            layer_norm_epsilon=self.layer_norm_epsilon,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            max_wavelength=self.max_wavelength,
        )
        return config
