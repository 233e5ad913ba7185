import keras
import numpy as np
import pytest

from tfl.errors import TflError
from tfl.models import (
    LSTMConfig,
    TransformerConfig,
    build_model,
    config_from_dict,
    config_to_dict,
    parameter_count,
)

CONFIGS = [
    TransformerConfig.from_preset("nano", vocab_size=23),
    TransformerConfig.from_preset("nano", vocab_size=23, tie_weights=False, position="sinusoidal"),
    TransformerConfig.from_preset("nano", vocab_size=23, position="rotary"),
    TransformerConfig.from_preset("char-cpu", vocab_size=65),
    TransformerConfig.from_preset("char-gpu", vocab_size=65),
    LSTMConfig.from_preset("nano", vocab_size=23),
    LSTMConfig.from_preset("nano", vocab_size=23, num_layers=2, hidden_dim=16, tie_weights=True),
    LSTMConfig.from_preset("char-cpu", vocab_size=65),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c.architecture}-{c.seq_len}")
def test_parameter_count_matches_the_closed_form(config):
    model = build_model(config)
    assert model.count_params() == parameter_count(config)
    assert model.output_shape == (None, config.seq_len, config.vocab_size)


def test_char_cpu_sizes_match_the_reference_configurations():
    # nanoGPT's CPU config counts 0.80M non-embedding-position params + embeddings at 65 chars.
    assert parameter_count(TransformerConfig.from_preset("char-cpu", vocab_size=65)) == 809_856
    # The char-cpu LSTM: Embedding 128 + LSTM 512 + Dense output.
    assert parameter_count(LSTMConfig.from_preset("char-cpu", vocab_size=65)) == 1_354_433


@pytest.mark.parametrize("position", ["learned", "rotary"])
def test_transformer_is_causal(position):
    config = TransformerConfig.from_preset("nano", vocab_size=23, position=position)
    model = build_model(config)
    ids = np.random.default_rng(0).integers(3, 23, size=(1, config.seq_len)).astype("int32")
    changed = ids.copy()
    changed[0, 10:] = 3
    a, b = model(ids).numpy(), model(changed).numpy()
    np.testing.assert_allclose(a[0, :10], b[0, :10], atol=1e-6)
    assert not np.allclose(a[0, 10:], b[0, 10:])


@pytest.mark.parametrize("config", [CONFIGS[0], CONFIGS[2], CONFIGS[5]],
                         ids=["transformer", "transformer-rotary", "lstm"])
def test_keras_file_round_trip_in_safe_mode_gives_equal_logits(config, tmp_path):
    model = build_model(config)
    ids = np.arange(config.seq_len, dtype="int32")[None] % config.vocab_size
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_array_equal(model(ids).numpy(), loaded(ids).numpy())


def test_presets_and_options_are_checked():
    with pytest.raises(TflError, match="unknown transformer preset 'char_cpu'.*'char-cpu'"):
        TransformerConfig.from_preset("char_cpu", vocab_size=10)
    with pytest.raises(TflError, match="unknown option 'num_layer'.*'num_layers'"):
        TransformerConfig.from_preset("nano", vocab_size=10, num_layer=3)
    with pytest.raises(TflError, match="not a multiple of num_heads"):
        TransformerConfig.from_preset("nano", vocab_size=10, num_heads=3)
    with pytest.raises(TflError, match="tie_weights needs"):
        LSTMConfig.from_preset("nano", vocab_size=10, tie_weights=True)
    with pytest.raises(TflError, match="position 'alibi'"):
        TransformerConfig.from_preset("nano", vocab_size=10, position="alibi")


def test_config_dict_round_trip():
    for config in CONFIGS:
        assert config_from_dict(config_to_dict(config)) == config


def rope(x, start):
    """Rotary position embedding written out in NumPy: x (T, H, D) at positions start.., each
    pair of halves (x1, x2) rotated by angle position / 10000^(2i/D)."""
    half = x.shape[-1] // 2
    frequencies = 1.0 / 10000 ** (np.arange(0, x.shape[-1], 2) / x.shape[-1])  # (D/2,)
    angles = np.arange(start, start + x.shape[0])[:, None] * frequencies  # (T, D/2)
    cos = np.concatenate([np.cos(angles)] * 2, -1)[:, None]  # (T, 1, D)
    sin = np.concatenate([np.sin(angles)] * 2, -1)[:, None]
    rotated_half = np.concatenate([-x[..., half:], x[..., :half]], -1)
    return x * cos + rotated_half * sin


def test_rotary_block_equals_an_independent_numpy_computation():
    """tfl's RotaryDecoderBlock, checked against the whole block written out here: LayerNorm,
    projections, RoPE on queries and keys, causal softmax attention, output projection, MLP."""
    import math

    from tfl.models import RotaryDecoderBlock

    rng = np.random.default_rng(3)
    block = RotaryDecoderBlock(intermediate_dim=32, num_heads=2)
    x = rng.normal(size=(1, 6, 16)).astype("float32")
    block(x)  # builds the weights
    for weight in block.weights:  # random weights everywhere, biases and norm scales included
        weight.assign(rng.normal(scale=0.3, size=weight.shape).astype("float32"))

    def layer_norm(h, norm):
        gamma, beta = norm.get_weights()
        return (h - h.mean(-1, keepdims=True)) / np.sqrt(h.var(-1, keepdims=True) + norm.epsilon) \
            * gamma + beta

    def project(h, dense):
        kernel, bias = dense.get_weights()
        return np.einsum("td,dhk->thk", h, kernel) + bias

    def gelu(z):
        return 0.5 * z * (1 + np.vectorize(math.erf)(z / math.sqrt(2)))

    h = layer_norm(x[0], block.attention_norm)
    q, k, v = rope(project(h, block.query), 0), rope(project(h, block.key), 0), project(h, block.value)
    scores = np.einsum("thd,shd->hts", q, k) / math.sqrt(8)
    scores = np.where(np.tril(np.ones((6, 6), bool)), scores, -np.inf)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    out_kernel, out_bias = block.attention_output.get_weights()
    a = x[0] + np.einsum("hts,shd,hdm->tm", weights, v, out_kernel) + out_bias
    w1, b1 = block.mlp_in.get_weights()
    w2, b2 = block.mlp_out.get_weights()
    expected = a + gelu(layer_norm(a, block.mlp_norm) @ w1 + b1) @ w2 + b2
    np.testing.assert_allclose(np.asarray(block(x))[0], expected, atol=1e-4)


def test_rotary_block_attention_depends_on_relative_position_only():
    """The scores the block computes are unchanged when queries and keys shift together."""
    block_scores = {}
    rng = np.random.default_rng(4)
    q, k = rng.normal(size=(2, 4, 2, 8)).astype("float32")
    from tfl.models import RotaryDecoderBlock

    block = RotaryDecoderBlock(intermediate_dim=32, num_heads=2)
    block(np.zeros((1, 4, 16), "float32"))
    for start in (0, 9):
        rq = np.asarray(block.rotary(q[None], start_index=start))[0]
        rk = np.asarray(block.rotary(k[None], start_index=start))[0]
        block_scores[start] = np.einsum("thd,shd->hts", rq, rk)
        np.testing.assert_allclose(rq, rope(q, start), atol=1e-4)  # the rotation itself
    np.testing.assert_allclose(block_scores[0], block_scores[9], atol=1e-4)


@pytest.mark.parametrize("keras_import", ["import keras", "import tensorflow as tf; keras = tf.keras"])
def test_tfl_layers_load_with_safe_mode_after_a_plain_import_tfl(tmp_path, keras_import):
    # FastLSTM and RotaryDecoderBlock are tfl's own layers: a `.keras` file holding them loads
    # in a fresh process that imported nothing but tfl and Keras (in either order of use).
    import subprocess
    import sys

    from tfl.models import LSTMConfig, TransformerConfig, build_model

    build_model(LSTMConfig.from_preset("nano", vocab_size=20)).save(tmp_path / "lstm.keras")
    build_model(TransformerConfig.from_preset("nano", vocab_size=20, position="rotary")).save(
        tmp_path / "rotary.keras")
    probe = (f"import tfl\n{keras_import}\n"
             f"for name in ('lstm', 'rotary'):\n"
             f"    keras.models.load_model(r'{tmp_path}/' + name + '.keras', safe_mode=True)\n"
             "print('LOADED')\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=300)
    assert result.stdout.strip().endswith("LOADED"), result.stderr[-1500:]


def test_building_a_twin_leaves_tf_keras_as_keras_3():
    # TF-MOT sets TF_USE_LEGACY_KERAS=1 process-wide on import; the twin module puts it back,
    # so the user's `tf.keras` and every subprocess keep Keras 3.
    import os

    import tensorflow as tf

    import tfl.models.twin  # noqa: F401

    assert "TF_USE_LEGACY_KERAS" not in os.environ
    assert tf.keras.version().startswith("3.")
