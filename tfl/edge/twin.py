"""The tf_keras twin of a tfl model: the one place where tfl touches Keras 2 (`tf_keras`).

TensorFlow Model Optimization (pruning, clustering, quantization-aware training) only accepts
`tf_keras` models, and only a `tf_keras` LSTM converts to TFLite's fused
`UNIDIRECTIONAL_SEQUENCE_LSTM` op. So compression and export work on a *twin*: the same
architecture rebuilt from the run's config with `tf_keras` layers, the weights copied over by
role (layer and sub-layer name, never list order), and the twin's logits checked against the
original's.

What differs from the Keras 3 model, on purpose:
- The output layer is a `Dense` named "logits" holding a *copy* of the transposed embedding
  matrix when the original ties them, so that TF-MOT can treat it as an ordinary Dense layer.
  (The exported file then stores that matrix twice: for a 65-character vocabulary and width 128
  that is 8,320 extra weights, 1% of the char-cpu Transformer.)
- Positions are added by `AddPositions`, a table of `(seq_len, width)`: trainable for learned
  positions, the fixed sinusoid table for sinusoidal ones.
- Rotary position embeddings have no twin yet.

>>> from tfl.models import TransformerConfig, build_model
>>> config = TransformerConfig.from_preset("nano", vocab_size=20)
>>> model = build_model(config)
>>> twin = make_twin(model, config)
>>> twin_matches(model, twin, config) < 1e-5
True
"""

import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras

from tfl.errors import TflError

# The tf_keras names other tfl modules need (TF-MOT works with these, never with keras 3).
keras2 = tf_keras


@tf_keras.utils.register_keras_serializable(package="tfl_twin")
class AddPositions(tf_keras.layers.Layer, tfmot.sparsity.keras.PrunableLayer):
    """Adds a `(seq_len, width)` position table to `(batch, seq_len, width)` embeddings.

    A learned table opts in to magnitude pruning (`PrunableLayer`); a fixed sinusoid has
    nothing to prune.
    """

    def __init__(self, seq_len, width, trainable_table=True, **kwargs):
        super().__init__(**kwargs)
        self.seq_len, self.width, self.trainable_table = seq_len, width, trainable_table

    def build(self, input_shape):
        self.table = self.add_weight(name="table", shape=(self.seq_len, self.width),
                                     initializer="zeros", trainable=self.trainable_table)
        super().build(input_shape)

    def call(self, inputs):
        return inputs + self.table[: tf.shape(inputs)[1]]

    def get_prunable_weights(self):
        return [self.table] if self.trainable_table else []

    def get_config(self):
        return {**super().get_config(), "seq_len": self.seq_len, "width": self.width,
                "trainable_table": self.trainable_table}


# Subtracted from masked attention scores: e^-50 of weight is nothing in float32, and the
# scores' int8 range stays about 50 wide.
MASK_PENALTY = 50.0


@tf_keras.utils.register_keras_serializable(package="tfl_twin")
class BoundedMaskSoftmax(tf_keras.layers.Layer):
    """Masked softmax that pushes masked scores down by `MASK_PENALTY` instead of by 1e9.

    In float it equals tf_keras's masked softmax to about e^-50 (the weight left on a masked
    position). It matters for full-integer TFLite: every tensor gets one int8 scale over its
    range, and adding -1e9 to the masked attention scores makes that range a billion wide,
    rounding every real score to the same value. Measured on the char-cpu Transformer, full
    int8 perplexity went from 19.6 (-1e9) to 6.59 (this layer; float32 6.52).
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        # (MultiHeadAttention passes a tuple of attention axes; the twin attends over one.)
        self.axis = axis[0] if isinstance(axis, (tuple, list)) else axis

    def call(self, inputs, mask=None):
        if mask is None:
            return tf.nn.softmax(inputs, axis=self.axis)
        keep = tf.cast(mask, inputs.dtype)
        return tf.nn.softmax(inputs - (1.0 - keep) * MASK_PENALTY, axis=self.axis)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


def use_bounded_masks(model):
    """Give every attention layer of `model` a `BoundedMaskSoftmax` (see there)."""
    for layer in model.layers:
        attention = unwrapped(getattr(layer, "layer", layer))
        if isinstance(attention, tf_keras.layers.MultiHeadAttention):
            axis = attention._softmax.axis
            attention._softmax = BoundedMaskSoftmax(axis=axis, name="softmax")
    return model


def custom_objects():
    """The twin's own layers, for cloning and TF-MOT scopes."""
    return {"AddPositions": AddPositions, "BoundedMaskSoftmax": BoundedMaskSoftmax}


def build_twin(config):
    """A `tf_keras.Model` of `config`'s architecture (random weights).

    """
    if config.architecture == "lstm":
        return _build_lstm_twin(config)
    if config.position == "rotary":
        raise TflError("models with rotary positions cannot be compressed or exported yet; "
                       "train with --position learned (the default) or sinusoidal")
    return _build_transformer_twin(config)


def _build_transformer_twin(config):
    layers = tf_keras.layers
    d, eps = config.hidden_dim, config.layer_norm_epsilon
    token_ids = tf_keras.Input(shape=(config.seq_len,), dtype="int32", name="token_ids")
    x = layers.Embedding(config.vocab_size, d, name="token_embedding")(token_ids)
    if config.position in ("learned", "sinusoidal"):
        x = AddPositions(config.seq_len, d, name="positions",
                         trainable_table=config.position == "learned")(x)
    x = layers.Dropout(config.dropout, name="embedding_dropout")(x)
    for i in range(config.num_layers):
        # Pre-LayerNorm block, as keras-hub's TransformerDecoder(normalize_first=True).
        h = layers.LayerNormalization(epsilon=eps, name=f"block_{i}_attention_norm")(x)
        attention = layers.MultiHeadAttention(
            config.num_heads, d // config.num_heads, dropout=config.dropout,
            name=f"block_{i}_attention")
        h = attention(h, h, use_causal_mask=True)
        h = layers.Dropout(config.dropout, name=f"block_{i}_attention_dropout")(h)
        x = layers.Add(name=f"block_{i}_attention_residual")([x, h])
        h = layers.LayerNormalization(epsilon=eps, name=f"block_{i}_ffn_norm")(x)
        h = layers.Dense(config.ffn_dim, name=f"block_{i}_ffn_in")(h)
        # A separate activation layer: TF-MOT's quantization-aware Dense knows no GELU.
        h = layers.Activation("gelu", name=f"block_{i}_ffn_gelu")(h)
        h = layers.Dense(d, name=f"block_{i}_ffn_out")(h)
        h = layers.Dropout(config.dropout, name=f"block_{i}_ffn_dropout")(h)
        x = layers.Add(name=f"block_{i}_ffn_residual")([x, h])
    x = layers.LayerNormalization(epsilon=eps, name="final_norm")(x)
    logits = layers.Dense(config.vocab_size, use_bias=False, name="logits")(x)
    return tf_keras.Model(token_ids, logits, name="transformer_twin")


def _build_lstm_twin(config):
    layers = tf_keras.layers
    token_ids = tf_keras.Input(shape=(config.seq_len,), dtype="int32", name="token_ids")
    x = layers.Embedding(config.vocab_size, config.embedding_dim,
                         name="token_embedding")(token_ids)
    x = layers.Dropout(config.dropout, name="embedding_dropout")(x)
    for i in range(config.num_layers):
        x = layers.LSTM(config.hidden_dim, return_sequences=True, name=f"lstm_{i}")(x)
        x = layers.Dropout(config.dropout, name=f"lstm_{i}_dropout")(x)
    logits = layers.Dense(config.vocab_size, use_bias=not config.tie_weights,
                          name="logits")(x)
    return tf_keras.Model(token_ids, logits, name="lstm_twin")


def unwrapped(layer):
    """The layer inside a TF-MOT wrapper (or the layer itself)."""
    return getattr(layer, "layer", layer)


def find_layer(twin, name, inner=True):
    """The twin's layer called `name`, looking inside TF-MOT wrappers (which rename it);
    `inner=False` returns the wrapper itself."""
    for layer in twin.layers:
        if unwrapped(layer).name == name:
            return unwrapped(layer) if inner else layer
    raise KeyError(f"the twin has no layer {name!r}")


def copy_weights_to_twin(model, twin, config):
    """Copy a Keras 3 tfl model's weights into its twin, layer by layer and role by role."""
    def twin_layer(name):
        return find_layer(twin, name)

    embedding = model.get_layer("token_embedding")
    twin_layer("token_embedding").set_weights([embedding.embeddings.numpy()])
    if config.tie_weights:
        output = [embedding.embeddings.numpy().T]
    elif config.architecture == "transformer":
        output = [embedding.reverse_embeddings.numpy()]
    else:
        output = model.get_layer("logits").get_weights()
    twin_layer("logits").set_weights(output)

    if config.architecture == "lstm":
        for i in range(config.num_layers):
            # kernel, recurrent kernel, bias: the same gate order (i, f, c, o) in both Kerases.
            twin_layer(f"lstm_{i}").set_weights(model.get_layer(f"lstm_{i}").get_weights())
        return twin

    if config.position == "learned":
        table = model.get_layer("position_embedding").position_embeddings.numpy()
        twin_layer("positions").set_weights([table])
    elif config.position == "sinusoidal":
        table = model.get_layer("position_encoding")(
            np.zeros((1, config.seq_len, config.hidden_dim), np.float32))
        twin_layer("positions").set_weights([np.asarray(table)[0]])
    for i in range(config.num_layers):
        block = model.get_layer(f"block_{i}")
        source_attention = block._self_attention_layer
        target_attention = twin_layer(f"block_{i}_attention")
        for part in ("_query_dense", "_key_dense", "_value_dense", "_output_dense"):
            getattr(target_attention, part).set_weights(
                getattr(source_attention, part).get_weights())
        pairs = {
            f"block_{i}_attention_norm": block._self_attention_layer_norm,
            f"block_{i}_ffn_norm": block._feedforward_layer_norm,
            f"block_{i}_ffn_in": block._feedforward_intermediate_dense,
            f"block_{i}_ffn_out": block._feedforward_output_dense,
        }
        for name, source in pairs.items():
            twin_layer(name).set_weights(source.get_weights())
    twin_layer("final_norm").set_weights(model.get_layer("final_norm").get_weights())
    return twin


def make_twin(model, config, wrap=None):
    """The tf_keras twin of a trained model: `build_twin`, then `copy_weights_to_twin`.

    `wrap(layer)`, if given, may return a TF-MOT wrapper around a (weighted, built) layer or
    the layer itself; the twin is then cloned with it, the way TF-MOT expects.
    """
    twin = copy_weights_to_twin(model, use_bounded_masks(build_twin(config)), config)
    if wrap is None:
        return twin
    with tf_keras.utils.custom_object_scope(custom_objects()):
        return tf_keras.models.clone_model(twin, clone_function=wrap)


def twin_matches(model, twin, config, seed=0):
    """Largest absolute logit difference between `model` and its twin on random token ids."""
    ids = np.random.default_rng(seed).integers(0, config.vocab_size, (2, config.seq_len))
    ids = ids.astype(np.int32)
    expected = np.asarray(model(ids, training=False))
    actual = twin(ids, training=False).numpy()
    return float(np.max(np.abs(expected - actual)))


def clear_session():
    """Free tf_keras's global state (layer-name counters, graphs) between compression steps."""
    tf_keras.backend.clear_session()
