"""`FastLSTM` computes what `keras.layers.LSTM` computes, forward and backward."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfl.models import LSTMConfig, build_model
from tfl.models.fast_lstm import FastLSTM
from tfl.run import load_keras_model

RNG = np.random.default_rng(0)


def twin_layers(**options):
    """A Keras LSTM and a FastLSTM with the same weights."""
    reference, fast = keras.layers.LSTM(16, **options), FastLSTM(16, **options)
    x = np.zeros((1, 7, 5), "float32")
    reference(x), fast(x)
    fast.set_weights([w + RNG.normal(0, 0.3, w.shape).astype("float32")
                      for w in reference.get_weights()])  # not the initial bias: all gates used
    reference.set_weights(fast.get_weights())
    return reference, fast


def loss_and_gradients(layer, x, h0, c0, jit, training=None):
    @tf.function(jit_compile=jit)
    def run():
        with tf.GradientTape() as tape:
            tape.watch([x, h0, c0])
            outputs = tf.nest.flatten(layer(x, initial_state=[h0, c0], training=training))
            # A different weighting per output, so that every output's gradient counts.
            loss = sum(tf.reduce_sum(tf.sin(out * (k + 1.5))) for k, out in enumerate(outputs))
        return [loss, *tape.gradient(loss, [x, h0, c0, *layer.trainable_variables])]

    return run()


@pytest.mark.parametrize("jit", [False, True], ids=["graph", "xla"])
@pytest.mark.parametrize("options", [dict(return_sequences=True),
                                     dict(return_state=True),
                                     dict(return_sequences=True, return_state=True)],
                         ids=["sequences", "state", "both"])
def test_outputs_and_gradients_equal_keras_lstm(options, jit):
    reference, fast = twin_layers(**options)
    x = tf.constant(RNG.normal(size=(3, 7, 5)), tf.float32)
    h0, c0 = (tf.constant(RNG.normal(size=(3, 16)), tf.float32) for _ in range(2))
    expected = loss_and_gradients(reference, x, h0, c0, jit)
    actual = loss_and_gradients(fast, x, h0, c0, jit)
    # loss; inputs, initial h and c; kernel, recurrent kernel, bias
    assert len(actual) == 7
    for a, e in zip(actual, expected, strict=True):
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=2e-5)
        assert np.any(e != 0)


def test_cases_the_fast_path_does_not_cover_fall_back_to_keras():
    reference, fast = twin_layers(return_sequences=True, go_backwards=True)
    x = RNG.normal(size=(2, 7, 5)).astype("float32")
    np.testing.assert_allclose(fast(x), reference(x), atol=1e-6)
    mask = np.array([[True] * 7, [True] * 4 + [False] * 3])
    reference, fast = twin_layers(return_sequences=True)
    np.testing.assert_allclose(fast(x, mask=mask), reference(x, mask=mask), atol=1e-6)


@pytest.mark.parametrize("dropout", [dict(dropout=0.3), dict(recurrent_dropout=0.3),
                                     dict(dropout=0.2, recurrent_dropout=0.4)],
                         ids=["dropout", "recurrent", "both"])
def test_dropout_inside_the_layer_falls_back_to_keras_exactly(dropout):
    """With dropout inside the layer the fast path does not apply: training, FastLSTM is
    keras.layers.LSTM (the same dropout masks from the same seed), outputs and gradients."""
    reference, fast = twin_layers(return_sequences=True, return_state=True, seed=5, **dropout)
    x = tf.constant(RNG.normal(size=(3, 7, 5)), tf.float32)
    h0, c0 = (tf.constant(RNG.normal(size=(3, 16)), tf.float32) for _ in range(2))
    expected = loss_and_gradients(reference, x, h0, c0, jit=False, training=True)
    actual = loss_and_gradients(fast, x, h0, c0, jit=False, training=True)
    for a, e in zip(actual, expected, strict=True):
        np.testing.assert_allclose(a, e, rtol=1e-6, atol=1e-6)
    # ... and the dropout did act: without it the loss is another.
    assert not np.isclose(loss_and_gradients(fast, x, h0, c0, jit=False)[0], actual[0])


def test_with_dropout_it_still_trains():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 7, 5)).astype("float32")
    y = x.sum(axis=(1, 2))[:, None] / 6  # (64, 1): a sum the LSTM can learn to carry
    model = keras.Sequential([keras.Input((7, 5)),
                              FastLSTM(16, dropout=0.1, recurrent_dropout=0.1, seed=2),
                              keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(1e-2), "mse", jit_compile=False)
    history = model.fit(x, y, batch_size=16, epochs=8, verbose=0).history["loss"]
    assert history[-1] < 0.5 * history[0]


def test_lstm_model_uses_it_and_loads_in_safe_mode(tmp_path):
    model = build_model(LSTMConfig.from_preset("nano", vocab_size=23))
    assert isinstance(model.get_layer("lstm_0"), FastLSTM)
    model.save(tmp_path / "model.keras")
    loaded = load_keras_model(tmp_path / "model.keras")
    assert isinstance(loaded.get_layer("lstm_0"), FastLSTM)
    ids = RNG.integers(0, 23, (2, 32))
    np.testing.assert_array_equal(loaded(ids), model(ids))
