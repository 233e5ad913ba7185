"""`FastLSTM`: `keras.layers.LSTM` with a hand-written backward pass, much faster to train.

`docs/performance.md` has the measured speed-up against `keras.layers.LSTM`.

Automatic differentiation of a recurrence is slow on a CPU for one reason: in the backward
pass it adds each time step's recurrent-weight gradient `h_{t-1}^T dz_t` into the full
`(hidden, 4 hidden)` matrix, so for the char-cpu LSTM a 4 MB matrix is read and written a
hundred times per window. Written by hand, the backward recurrence only carries `(dh, dc)` from
step to step; every weight gradient is then *one* matrix product over all time steps at once:

    dU = sum_t h_{t-1}^T dz_t     dW = sum_t x_t^T dz_t     db = sum_t dz_t     dx_t = dz_t W^T

where `dz_t` are the gradients of the four gate pre-activations. The input projections of all
steps are likewise one product in the forward pass. The backward recurrence multiplies `dz_t` by
the recurrent matrix transposed once before the loop (a transposed operand inside the loop
doubled the cost of its hundred products). The math, the weights, their names and the
`cell` are those of `keras.layers.LSTM` (gate order i, f, g, o), so decoding step by step, the
tf_keras twin and the TFLite export are unchanged. Configurations this path does not cover
(masks, dropout inside the layer, other activations, going backwards, a GPU where cuDNN is
faster) fall back to the Keras implementation.

>>> import numpy as np, keras
>>> layer = FastLSTM(8, return_sequences=True)
>>> x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")
>>> reference = keras.layers.LSTM(8, return_sequences=True)
>>> _ = reference(x)
>>> _ = layer(x)
>>> layer.set_weights(reference.get_weights())
>>> bool(np.allclose(layer(x), reference(x), atol=1e-6))
True
"""

import keras
import tensorflow as tf


def lstm_sequence(inputs, h0, c0, kernel, recurrent_kernel, bias):
    """Run an LSTM over `inputs` `(batch, time, features)` from the state `(h0, c0)`.

    Returns `(outputs, h, c)`: every step's `h` `(batch, time, hidden)` and the final state.
    Differentiable with respect to every argument, with the backward pass described above.
    """

    @tf.custom_gradient
    def run(inputs, h0, c0, kernel, recurrent_kernel, bias):
        steps_first = tf.transpose(inputs, [1, 0, 2])  # (T, B, E): scan walks the first axis
        input_part = tf.einsum("tbe,eg->tbg", steps_first, kernel) + bias  # all steps at once

        def forward_step(carry, input_z):
            h, c, _ = carry
            z = input_z + tf.matmul(h, recurrent_kernel)
            i, f, g, o = tf.split(z, 4, axis=-1)
            i, f, g, o = tf.sigmoid(i), tf.sigmoid(f), tf.tanh(g), tf.sigmoid(o)
            c = f * c + i * g
            h = o * tf.tanh(c)
            return h, c, tf.concat([i, f, g, o], axis=-1)

        gates0 = tf.zeros_like(input_part[0])  # (B, 4H): scan's carries need a start value
        # scan stacks every step's carry: all h and c, and the activated gates for backward.
        hs, cs, gates = tf.scan(forward_step, input_part, initializer=(h0, c0, gates0))
        outputs = tf.transpose(hs, [1, 0, 2])

        def backward(d_outputs, d_h_last, d_c_last):
            # The final h is also the last output: its gradient joins that step's.
            d_hs = tf.transpose(d_outputs, [1, 0, 2])
            d_hs = tf.concat([d_hs[:-1], d_hs[-1:] + d_h_last[None]], axis=0)
            c_prev = tf.concat([c0[None], cs[:-1]], axis=0)
            # Transposed once, outside the loop: a product with a transposed operand inside it
            # runs at half the speed on the CPU (measured: 35 ms against 16.5 ms per window).
            recurrent_kernel_t = tf.transpose(recurrent_kernel)  # (4 hidden, hidden)

            def backward_step(carry, step):
                d_h_next, d_c_next, _ = carry
                d_h_out, c, c_before, gate = step
                i, f, g, o = tf.split(gate, 4, axis=-1)
                tanh_c = tf.tanh(c)
                d_h = d_h_out + d_h_next
                d_c = d_c_next + d_h * o * (1.0 - tanh_c * tanh_c)
                d_z = tf.concat([d_c * g * i * (1.0 - i),  # through sigmoid(i)
                                 d_c * c_before * f * (1.0 - f),  # sigmoid(f)
                                 d_c * i * (1.0 - g * g),  # tanh(g)
                                 d_h * tanh_c * o * (1.0 - o)], axis=-1)  # sigmoid(o)
                return tf.matmul(d_z, recurrent_kernel_t), d_c * f, d_z

            d_h0, d_c0, d_zs = tf.scan(backward_step, (d_hs, cs, c_prev, gates),
                                       initializer=(tf.zeros_like(d_h_last), d_c_last, gates0),
                                       reverse=True)
            # scan stacks every carry; the gradients reaching the initial state are step 0's.
            d_h0, d_c0 = d_h0[0], d_c0[0]
            h_prev = tf.concat([h0[None], hs[:-1]], axis=0)
            d_recurrent = tf.einsum("tbh,tbg->hg", h_prev, d_zs)
            d_kernel = tf.einsum("tbe,tbg->eg", steps_first, d_zs)
            d_bias = tf.reduce_sum(d_zs, axis=[0, 1])
            d_inputs = tf.einsum("tbg,eg->bte", d_zs, kernel)
            return d_inputs, d_h0, d_c0, d_kernel, d_recurrent, d_bias

        return (outputs, hs[-1], cs[-1]), backward

    return run(inputs, h0, c0, kernel, recurrent_kernel, bias)


@keras.saving.register_keras_serializable(package="tfl")
class FastLSTM(keras.layers.LSTM):
    """A drop-in `keras.layers.LSTM` (same arguments, weights and cell), trained faster on CPU."""

    def _fast_path_applies(self, sequences, mask, training):
        cell = self.cell
        return (
            keras.backend.backend() == "tensorflow"
            and mask is None
            and not self.go_backwards
            and not self.unroll
            and sequences.shape[1] is not None
            and cell.use_bias
            and cell.activation is keras.activations.tanh
            and cell.recurrent_activation is keras.activations.sigmoid
            and not (training and (cell.dropout or cell.recurrent_dropout))
            and not tf.config.list_logical_devices("GPU")  # cuDNN's fused kernel is faster there
        )

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if not self._fast_path_applies(sequences, mask, training):
            return super().inner_loop(sequences, initial_state, mask, training=training)
        dtype = sequences.dtype  # under mixed precision, the compute dtype
        cell = self.cell
        h0, c0 = (tf.cast(state, dtype) for state in initial_state)
        outputs, h, c = lstm_sequence(sequences, h0, c0, tf.cast(cell.kernel.value, dtype),
                                      tf.cast(cell.recurrent_kernel.value, dtype),
                                      tf.cast(cell.bias.value, dtype))
        if not self.return_sequences:
            outputs = h[:, None]
        return h, outputs, [h, c]
