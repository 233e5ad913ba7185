import numpy as np
import tensorflow as tf

from tfl.models import TransformerConfig, build_model
from tfl.models.attention import attention_weights, block_input


def test_recomputed_attention_reproduces_the_layer_output():
    config = TransformerConfig.from_preset("nano", vocab_size=20)
    model = build_model(config)
    ids = np.random.default_rng(0).integers(3, 20, size=12)
    weights = attention_weights(model, config, ids, block=1)  # (H, T, T)
    assert weights.shape == (2, 12, 12)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
    assert np.all(np.triu(weights, k=1) < 1e-6)  # never attends to the future

    layer = model.get_layer("block_1")
    h = layer._self_attention_layer_norm(block_input(model, config, ids, block=1))
    attention = layer._self_attention_layer
    v = attention._value_dense(h)[0]  # (T, H, D)
    by_hand = attention._output_dense(tf.einsum("hts,shd->thd", weights, v)[None])
    causal = tf.linalg.band_part(tf.ones((1, 12, 12), tf.bool), -1, 0)
    from_layer = attention(h, h, attention_mask=causal)
    np.testing.assert_allclose(by_hand.numpy(), from_layer.numpy(), atol=1e-5)
