"""Attention maps and the whole decoder block, against an independent NumPy computation.

The reference below is written from the formulas, with the weights read by role
(`tfl.models.parts`): it shares no code with `tfl.models.attention` or keras-hub. It runs on a
trained model, whose attention is far from uniform, so a wrong mask, scale or softmax shows.
"""

import math

import numpy as np
import pytest

from tfl.models.attention import attention_weights
from tfl.models.parts import model_parts
from tfl.run import load_run

TEXT = "the cat sees the fish.\na dog eat"  # 32 characters of the training grammar: a full window


def layer_norm(x, norm):
    gamma, beta = (np.asarray(w, np.float64) for w in norm.get_weights())
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + norm.epsilon) * gamma + beta


def gelu(z):  # exact: z * Phi(z), Phi the standard normal CDF
    return 0.5 * z * (1.0 + np.vectorize(math.erf)(z / math.sqrt(2.0)))


def weights_of(layer):
    return [np.asarray(w, np.float64) for w in layer.get_weights()]


def block_by_hand(block, x):
    """One pre-LN decoder block on x (T, d): returns its output (T, d) and the attention
    probabilities (H, T, T)."""
    T = x.shape[0]
    h = layer_norm(x, block.attention_norm)
    q, k, v = (np.einsum("td,dhe->the", h, kernel) + bias  # (T, H, d_h)
               for kernel, bias in map(weights_of, (block.query, block.key, block.value)))
    scores = np.einsum("qhe,khe->hqk", q, k) / math.sqrt(q.shape[-1])  # (H, T, T)
    future = np.arange(T)[None, :] > np.arange(T)[:, None]  # key after query
    scores[:, future] = -np.inf
    probabilities = np.exp(scores - scores.max(-1, keepdims=True))
    probabilities /= probabilities.sum(-1, keepdims=True)
    mixed = np.einsum("hqk,khe->qhe", probabilities, v)  # (T, H, d_h)
    out_kernel, out_bias = weights_of(block.attention_output)  # (H, d_h, d), (d,)
    a = x + np.einsum("qhe,hed->qd", mixed, out_kernel) + out_bias  # residual
    (w1, b1), (w2, b2) = weights_of(block.mlp_in), weights_of(block.mlp_out)
    y = a + gelu(layer_norm(a, block.mlp_norm) @ w1 + b1) @ w2 + b2  # residual
    return y, probabilities


@pytest.fixture(scope="module")
def trained_transformer(trained_runs):
    run = load_run(trained_runs["transformer"])
    assert run.model_config.position == "learned"
    return run.model, run.model_config, run.tokenizer.encode(TEXT, errors="strict")


def test_every_block_by_hand_equals_the_keras_layers_and_the_model(trained_transformer):
    model, config, ids = trained_transformer
    parts = model_parts(model, config)
    token_table = np.asarray(parts.token_embedding.embeddings, np.float64)  # (V, d)
    position_table = np.asarray(parts.position.position_embeddings, np.float64)  # (seq_len, d)
    x = token_table[ids] + position_table[: len(ids)]  # (T, d): the stream entering block 0
    for i in range(config.num_layers):
        y, probabilities = block_by_hand(parts.block(i), x)
        from_keras = parts.blocks[i](x[None].astype(np.float32)).numpy()[0]
        np.testing.assert_allclose(y, from_keras, atol=1e-4, rtol=1e-4)
        np.testing.assert_allclose(attention_weights(model, config, ids, block=i), probabilities,
                                   atol=1e-5)
        x = y
    logits = layer_norm(x, parts.final_norm) @ token_table.T  # tied output layer
    np.testing.assert_allclose(model(np.array([ids]), training=False).numpy()[0], logits,
                               atol=1e-4, rtol=1e-4)


def test_attention_rows_are_causal_distributions_far_from_uniform(trained_transformer):
    model, config, ids = trained_transformer
    T = len(ids)
    for i in range(config.num_layers):
        weights = attention_weights(model, config, ids, block=i)  # (H, T, T)
        assert weights.shape == (config.num_heads, T, T)
        np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
        assert np.all(np.triu(weights, k=1) == 0)  # never a key after the query
        # Total variation distance of each row from the uniform distribution over the keys it
        # may see: about 0 for an untrained model, far from it once attention has learned.
        uniform = np.tril(np.ones((T, T))) / np.arange(1, T + 1)[:, None]
        distance = 0.5 * np.abs(weights - uniform).sum(-1)  # (H, T)
        assert distance[:, 4:].mean() > 0.1
