"""Looking inside a trained Transformer: the attention weights of one block.

Recomputes block `block`'s self-attention probabilities from its own query and key
projections (keras `MultiHeadAttention` keeps them as `_query_dense` and `_key_dense`), so
notebooks can draw them as heatmaps. `tests/test_attention.py` checks that these weights, applied
to the values and the output projection, give exactly the layer's own output.

>>> from tfl.models import TransformerConfig, build_model
>>> config = TransformerConfig.from_preset("nano", vocab_size=20)
>>> weights = attention_weights(build_model(config), config, [5, 6, 7, 8])
>>> weights.shape  # (heads, queries, keys)
(2, 4, 4)
"""

import math

import numpy as np
import tensorflow as tf

from tfl.errors import TflError


def block_input(model, config, token_ids, block=0):
    """The residual stream entering block `block` for `token_ids`, shape (1, T, d)."""
    ids = tf.constant(np.asarray(token_ids, np.int32)[None])  # (1, T)
    x = model.get_layer("token_embedding")(ids)  # (1, T, d)
    if config.position == "rotary":
        raise TflError("attention maps are drawn for models with learned or sinusoidal "
                       "positions; this one uses rotary positions")
    name = "position_embedding" if config.position == "learned" else "position_encoding"
    x = x + model.get_layer(name)(x)
    for i in range(block):
        x = model.get_layer(f"block_{i}")(x)
    return x


def attention_weights(model, config, token_ids, block=0):
    """Causal self-attention probabilities of block `block`: array (heads, T, T), rows sum to 1."""
    layer = model.get_layer(f"block_{block}")
    h = layer._self_attention_layer_norm(block_input(model, config, token_ids, block))
    attention = layer._self_attention_layer
    q = attention._query_dense(h)  # (1, T, heads, head_dim)
    k = attention._key_dense(h)  # (1, T, heads, head_dim)
    scores = tf.einsum("bthd,bshd->bhts", q, k) / math.sqrt(config.head_dim)  # (1, H, T, T)
    n = scores.shape[-1]
    causal = tf.linalg.band_part(tf.ones((n, n), tf.bool), -1, 0)  # key position <= query
    scores = tf.where(causal, scores, tf.constant(-1e9, scores.dtype))
    return tf.nn.softmax(scores, axis=-1)[0].numpy()
