"""Looking inside a trained Transformer: the attention weights of one block.

Recomputes block `block`'s self-attention probabilities from its own query and key
projections (reached by role through `tfl.models.parts`), so notebooks can draw them as
heatmaps. `tests/test_attention.py` checks them, with the whole block, against an independent
NumPy computation on a trained model.

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
from tfl.models.parts import model_parts


def block_input(model, config, token_ids, block=0):
    """The residual stream entering block `block` for `token_ids`, shape (1, T, d)."""
    if config.position == "rotary":
        raise TflError("attention maps are drawn for models with learned or sinusoidal "
                       "positions; this one uses rotary positions")
    parts = model_parts(model, config)
    x = parts.embed(tf.constant(np.asarray(token_ids, np.int32)[None]))  # (1, T, d)
    for layer in parts.blocks[:block]:
        x = layer(x)
    return x


def attention_weights(model, config, token_ids, block=0):
    """Causal self-attention probabilities of block `block`: array (heads, T, T), rows sum to 1."""
    parts = model_parts(model, config).block(block)
    h = parts.attention_norm(block_input(model, config, token_ids, block))  # (1, T, d)
    q = parts.query(h)  # (1, T, heads, head_dim)
    k = parts.key(h)  # (1, T, heads, head_dim)
    scores = tf.einsum("bthd,bshd->bhts", q, k) / math.sqrt(config.head_dim)  # (1, H, T, T)
    n = scores.shape[-1]
    causal = tf.linalg.band_part(tf.ones((n, n), tf.bool), -1, 0)  # key position <= query
    scores = tf.where(causal, scores, tf.constant(-1e9, scores.dtype))
    return tf.nn.softmax(scores, axis=-1)[0].numpy()
