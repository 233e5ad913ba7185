"""`FusedLSTM`: an LSTM layer laid out for speed on a CPU, with the weights of `keras.layers.LSTM`.

The recurrence is the standard one (gates in the order input, forget, cell, output):

    z_t = x_t W + h_{t-1} U + b
    i, f, g, o = sigmoid(z_i), sigmoid(z_f), tanh(z_g), sigmoid(z_o)
    c_t = f * c_{t-1} + i * g;   h_t = o * tanh(c_t)

What differs from `keras.layers.LSTM` is the layout of the work:
- `x_t W + b` for all time steps is one large matrix product before the loop (the inputs do
  not depend on the recurrence), so each step multiplies only `h_{t-1} U`;
- the loop is a `tf.scan` over time-major inputs, with the four gates computed from one
  `(batch, 4 * units)` product, and no masking, dropout or state bookkeeping inside it.
Under XLA the loop body fuses into a few kernels per step.

Its weights (`kernel`, `recurrent_kernel`, `bias`) have the same shapes, order and
initialisers as `keras.layers.LSTM`'s, so `get_weights()` of one fits `set_weights()` of the
other, and the tf_keras twin for TFLite export is still a standard LSTM (the fused TFLite op).

>>> import numpy as np
>>> layer = FusedLSTM(8)
>>> reference = keras.layers.LSTM(8, return_sequences=True)
>>> x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")
>>> _ = layer(x), reference(x)
>>> layer.set_weights(reference.get_weights())
>>> bool(np.allclose(layer(x), reference(x), atol=1e-5))
True
"""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="tfl")
class FusedLSTM(keras.layers.Layer):
    """LSTM over `(batch, time, features)` returning every step's `h`: `(batch, time, units)`."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.cell = _FusedLSTMStep(self)

    def build(self, input_shape):
        features, units = input_shape[-1], self.units
        self.kernel = self.add_weight(shape=(features, 4 * units), name="kernel",
                                      initializer="glorot_uniform")
        self.recurrent_kernel = self.add_weight(shape=(units, 4 * units),
                                                name="recurrent_kernel",
                                                initializer="orthogonal")
        # Forget-gate bias starts at 1, as Keras's `unit_forget_bias=True`.
        self.bias = self.add_weight(shape=(4 * units,), name="bias", initializer=_unit_forget)

    def call(self, inputs):
        batch = tf.shape(inputs)[0]
        projected = tf.einsum("bte,eg->tbg", inputs, self.kernel) + self.bias  # (T, B, 4u)
        zeros = tf.zeros((batch, self.units), dtype=projected.dtype)

        def step(state, projected_t):
            h, c = state
            return self.cell.gates(projected_t, h, c)

        h_all, _ = tf.scan(step, projected, initializer=(zeros, zeros))  # (T, B, u)
        return tf.transpose(h_all, (1, 0, 2))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


class _FusedLSTMStep:
    """One step of a `FusedLSTM`, called like a Keras LSTM cell: `cell(x, [h, c])` returns
    `(h, [h, c])`. Generation carries the state with it."""

    def __init__(self, layer):
        self.layer = layer

    def gates(self, projected, h, c):
        z = projected + tf.matmul(h, self.layer.recurrent_kernel)
        i, f, g, o = tf.split(z, 4, axis=-1)
        c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
        h = tf.sigmoid(o) * tf.tanh(c)
        return h, c

    def __call__(self, inputs, states, training=False):
        projected = tf.matmul(inputs, self.layer.kernel) + self.layer.bias
        h, c = self.gates(projected, states[0], states[1])
        return h, [h, c]


def _unit_forget(shape, dtype=None):
    units = shape[0] // 4
    return tf.concat([tf.zeros((units,)), tf.ones((units,)), tf.zeros((2 * units,))], 0)
