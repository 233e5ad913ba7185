"""The tf_keras twin of a tfl model: the one place where tfl touches Keras 2 (`tf_keras`).

TensorFlow Model Optimization (pruning, clustering, quantization-aware training) only accepts
`tf_keras` models, and only a `tf_keras` LSTM converts to TFLite's fused
`UNIDIRECTIONAL_SEQUENCE_LSTM` op. So compression and export work on a *twin*: the same
architecture rebuilt from the run's config with `tf_keras` layers, the weights copied over by
role (`tfl.models.parts` on the Keras 3 side, `twin_parts` on this one; never list order), and
the twin's logits checked against the original's.

What differs from the Keras 3 model, on purpose:
- The output layer is a `Dense` holding a *copy* of the transposed embedding matrix when the
  original ties them, so that TF-MOT can treat it as an ordinary Dense layer. (The exported file
  then stores that matrix twice.)
- Positions are added by `AddPositions`, a table of `(seq_len, width)`: trainable for learned
  positions, the fixed sinusoid table for sinusoidal ones.
- Rotary position embeddings have no twin yet.

Code outside this module reaches the twin's layers by role: `twin_parts(twin, config)` for the
parts of a whole twin, `layer_role(layer)` for one layer (as a TF-MOT clone function sees it).

>>> from tfl.models import TransformerConfig, build_model
>>> config = TransformerConfig.from_preset("nano", vocab_size=20)
>>> model = build_model(config)
>>> twin = make_twin(model, config)
>>> twin_max_logit_difference(model, twin, config) < 1e-5
True
>>> parts = twin_parts(twin, config)
>>> layer_role(parts.blocks[0].mlp_in), parts.blocks[0].mlp_in.units
('mlp_in', 64)
"""

import re
from dataclasses import dataclass

import os

import numpy as np
import tensorflow as tf

# TF-MOT sets TF_USE_LEGACY_KERAS=1 for the whole process when it is imported, which would turn
# `tf.keras` into Keras 2 for the user's later code and for every subprocess. Resolve `tf.keras`
# first (Keras 3 unless the user chose otherwise) and put the variable back as it was: TF-MOT
# itself keeps using tf_keras, which it binds at import.
_legacy_keras = os.environ.get("TF_USE_LEGACY_KERAS")
tf.keras.layers  # noqa: B018  (resolves the lazy `tf.keras` module now)
import tensorflow_model_optimization as tfmot  # noqa: E402
import tf_keras  # noqa: E402

if _legacy_keras is None:
    os.environ.pop("TF_USE_LEGACY_KERAS", None)
else:
    os.environ["TF_USE_LEGACY_KERAS"] = _legacy_keras

from tfl.errors import TflError
from tfl.models.parts import model_parts

# The tf_keras names other tfl modules need (TF-MOT works with these, never with keras 3).
keras2 = tf_keras

# The roles of the twin's layers (`layer_role`), named as `tfl.models.parts` names them.
TOKEN_EMBEDDING = "token_embedding"
POSITION = "position"
ATTENTION_NORM = "attention_norm"
ATTENTION = "attention"
MLP_NORM = "mlp_norm"
MLP_IN = "mlp_in"
MLP_OUT = "mlp_out"
FINAL_NORM = "final_norm"
LSTM = "lstm"
OUTPUT = "output"

# The layer names the twin's builders give, in one place. (They also name the weights that
# compression reports, e.g. "block_0_ffn_in/kernel".)
_LAYER_NAMES = {TOKEN_EMBEDDING: "token_embedding", POSITION: "positions",
                FINAL_NORM: "final_norm", OUTPUT: "logits"}
_BLOCK_LAYER_SUFFIXES = {ATTENTION_NORM: "attention_norm", ATTENTION: "attention",
                         MLP_NORM: "ffn_norm", MLP_IN: "ffn_in", MLP_OUT: "ffn_out"}
_BLOCK_LAYER = re.compile(r"block_\d+_(\w+)")
_LSTM_LAYER = re.compile(r"lstm_\d+")
_ROLE_OF_NAME = {name: role for role, name in _LAYER_NAMES.items()}
_ROLE_OF_BLOCK_SUFFIX = {suffix: role for role, suffix in _BLOCK_LAYER_SUFFIXES.items()}


def _block_layer_name(index, role):
    return f"block_{index}_{_BLOCK_LAYER_SUFFIXES[role]}"


def _lstm_layer_name(index):
    return f"lstm_{index}"


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
        return inputs + self.table[: tf.shape(inputs)[1]]  # (B, T, d) + (T, d)

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
    rounding every real score to the same value, which ruins the int8 model's perplexity.
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
        attention = unwrapped(unwrapped(layer))
        if isinstance(attention, tf_keras.layers.MultiHeadAttention):
            axis = attention._softmax.axis
            attention._softmax = BoundedMaskSoftmax(axis=axis, name="softmax")
    return model


def custom_objects():
    """The twin's own layers, for cloning and TF-MOT scopes."""
    return {"AddPositions": AddPositions, "BoundedMaskSoftmax": BoundedMaskSoftmax}


def build_twin(config):
    """A `tf_keras.Model` of `config`'s architecture (random weights).

    >>> from tfl.models import LSTMConfig
    >>> build_twin(LSTMConfig.from_preset("nano", vocab_size=20)).output_shape
    (None, 32, 20)
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
    x = layers.Embedding(config.vocab_size, d, name=_LAYER_NAMES[TOKEN_EMBEDDING])(token_ids)
    if config.position in ("learned", "sinusoidal"):
        x = AddPositions(config.seq_len, d, name=_LAYER_NAMES[POSITION],
                         trainable_table=config.position == "learned")(x)
    x = layers.Dropout(config.dropout, name="embedding_dropout")(x)  # (B, T, d)
    for i in range(config.num_layers):
        # Pre-LayerNorm block, as keras-hub's TransformerDecoder(normalize_first=True).
        h = layers.LayerNormalization(epsilon=eps, name=_block_layer_name(i, ATTENTION_NORM))(x)
        attention = layers.MultiHeadAttention(
            config.num_heads, d // config.num_heads, dropout=config.dropout,
            name=_block_layer_name(i, ATTENTION))
        h = attention(h, h, use_causal_mask=True)
        h = layers.Dropout(config.dropout, name=f"block_{i}_attention_dropout")(h)
        x = layers.Add(name=f"block_{i}_attention_residual")([x, h])
        h = layers.LayerNormalization(epsilon=eps, name=_block_layer_name(i, MLP_NORM))(x)
        h = layers.Dense(config.ffn_dim, name=_block_layer_name(i, MLP_IN))(h)  # (B, T, ffn)
        # A separate activation layer: TF-MOT's quantization-aware Dense knows no GELU.
        h = layers.Activation("gelu", name=f"block_{i}_ffn_gelu")(h)
        h = layers.Dense(d, name=_block_layer_name(i, MLP_OUT))(h)  # (B, T, d)
        h = layers.Dropout(config.dropout, name=f"block_{i}_ffn_dropout")(h)
        x = layers.Add(name=f"block_{i}_ffn_residual")([x, h])
    x = layers.LayerNormalization(epsilon=eps, name=_LAYER_NAMES[FINAL_NORM])(x)
    logits = layers.Dense(config.vocab_size, use_bias=False, name=_LAYER_NAMES[OUTPUT])(x)
    return tf_keras.Model(token_ids, logits, name="transformer_twin")  # (B, T, vocab)


def _build_lstm_twin(config):
    layers = tf_keras.layers
    token_ids = tf_keras.Input(shape=(config.seq_len,), dtype="int32", name="token_ids")
    x = layers.Embedding(config.vocab_size, config.embedding_dim,
                         name=_LAYER_NAMES[TOKEN_EMBEDDING])(token_ids)  # (B, T, e)
    x = layers.Dropout(config.dropout, name="embedding_dropout")(x)
    for i in range(config.num_layers):
        x = layers.LSTM(config.hidden_dim, return_sequences=True, name=_lstm_layer_name(i))(x)
        x = layers.Dropout(config.dropout, name=f"lstm_{i}_dropout")(x)  # (B, T, h)
    logits = layers.Dense(config.vocab_size, use_bias=not config.tie_weights,
                          name=_LAYER_NAMES[OUTPUT])(x)
    return tf_keras.Model(token_ids, logits, name="lstm_twin")  # (B, T, vocab)


def unwrapped(layer):
    """The layer inside a TF-MOT wrapper (or the layer itself)."""
    return getattr(layer, "layer", layer)


def layer_role(layer):
    """The role of one twin layer (one of the role constants of this module), looking inside
    a TF-MOT wrapper; None for layers without weights (dropout, residual adds, activations).

    >>> from tfl.models import LSTMConfig
    >>> twin = build_twin(LSTMConfig.from_preset("nano", vocab_size=20))
    >>> [layer_role(layer) for layer in twin.layers]
    [None, 'token_embedding', None, 'lstm', None, 'output']
    """
    name = unwrapped(layer).name
    if _LSTM_LAYER.fullmatch(name):
        return LSTM
    block_layer = _BLOCK_LAYER.fullmatch(name)
    if block_layer:
        return _ROLE_OF_BLOCK_SUFFIX.get(block_layer.group(1))
    return _ROLE_OF_NAME.get(name)


@dataclass(frozen=True)
class TwinBlock:
    """The layers of one twin decoder block, by role."""

    attention_norm: object
    attention: object  # MultiHeadAttention, causal: (B, T, d) -> (B, T, d)
    mlp_norm: object
    mlp_in: object  # Dense d -> ffn
    mlp_out: object  # Dense ffn -> d


@dataclass(frozen=True)
class TwinParts:
    """The layers of a twin, by role (`twin_parts`). Fields that an architecture lacks are
    None or empty: an LSTM twin has no position, blocks or final norm; a Transformer twin no
    LSTM layers."""

    token_embedding: object  # Embedding: (B, T) -> (B, T, d)
    output: object  # Dense (B, T, d) -> (B, T, vocab); the transposed embedding when tied
    position: object = None  # AddPositions
    blocks: tuple = ()  # TwinBlock per decoder block
    final_norm: object = None
    lstm_layers: tuple = ()  # tf_keras LSTM layers; `.cell` runs one step


def twin_parts(twin, config, wrapped=False):
    """The layers of `twin` (built from `config`, possibly wrapped or stripped by TF-MOT) by
    role. With `wrapped=True` a layer that TF-MOT wrapped is returned as its wrapper (what the
    twin calls, e.g. with fake quantization), otherwise as the layer inside.

    >>> from tfl.models import LSTMConfig
    >>> config = LSTMConfig.from_preset("nano", vocab_size=20, num_layers=2)
    >>> parts = twin_parts(build_twin(config), config)
    >>> len(parts.lstm_layers), parts.output.units, parts.blocks
    (2, 20, ())
    """
    layers = {unwrapped(layer).name: layer if wrapped else unwrapped(layer)
              for layer in twin.layers}

    def layer(name):
        if name not in layers:  # a twin not built by `build_twin(config)`
            raise TflError(f"this twin has no layer {name!r}: build it with "
                           "tfl.models.twin.make_twin(model, config) for the model's own config")
        return layers[name]

    token_embedding, output = layer(_LAYER_NAMES[TOKEN_EMBEDDING]), layer(_LAYER_NAMES[OUTPUT])
    if config.architecture == "lstm":
        return TwinParts(token_embedding, output, lstm_layers=tuple(
            layer(_lstm_layer_name(i)) for i in range(config.num_layers)))
    blocks = tuple(TwinBlock(*(layer(_block_layer_name(i, role)) for role in
                               (ATTENTION_NORM, ATTENTION, MLP_NORM, MLP_IN, MLP_OUT)))
                   for i in range(config.num_layers))
    has_table = config.position in ("learned", "sinusoidal")  # (rotary has no twin yet)
    position = layer(_LAYER_NAMES[POSITION]) if has_table else None
    return TwinParts(token_embedding, output, position, blocks, layer(_LAYER_NAMES[FINAL_NORM]))


def copy_weights_to_twin(model, twin, config):
    """Copy a Keras 3 tfl model's weights into its twin, part by part and role by role."""
    source, target = model_parts(model, config), twin_parts(twin, config)
    target.token_embedding.set_weights([np.asarray(source.token_embedding.embeddings)])
    target.output.set_weights(source.output_weights())
    if config.architecture == "lstm":
        for source_lstm, target_lstm in zip(source.lstm_layers, target.lstm_layers):
            # kernel, recurrent kernel, bias: the same gate order (i, f, c, o) in both Kerases.
            target_lstm.set_weights(source_lstm.get_weights())
        return twin

    if target.position is not None:
        target.position.set_weights([np.asarray(source.position_table())])  # (T, d)
    for i, block in enumerate(target.blocks):
        source_block = source.block(i)
        attention = block.attention  # tf_keras's MultiHeadAttention keeps its projections here
        pairs = [
            (attention._query_dense, source_block.query),
            (attention._key_dense, source_block.key),
            (attention._value_dense, source_block.value),
            (attention._output_dense, source_block.attention_output),
            (block.attention_norm, source_block.attention_norm),
            (block.mlp_norm, source_block.mlp_norm),
            (block.mlp_in, source_block.mlp_in),
            (block.mlp_out, source_block.mlp_out),
        ]
        for target_layer, source_layer in pairs:
            target_layer.set_weights(source_layer.get_weights())
    target.final_norm.set_weights(source.final_norm.get_weights())
    return twin


def make_twin(model, config, wrap=None):
    """The tf_keras twin of a trained model: `build_twin`, then `copy_weights_to_twin`.

    `wrap(layer)`, if given, may return a TF-MOT wrapper around a (weighted, built) layer or
    the layer itself (`layer_role` tells which layer it is); the twin is then cloned with it,
    the way TF-MOT expects.
    """
    twin = copy_weights_to_twin(model, use_bounded_masks(build_twin(config)), config)
    if wrap is None:
        return twin
    with tf_keras.utils.custom_object_scope(custom_objects()):
        return tf_keras.models.clone_model(twin, clone_function=wrap)


def twin_max_logit_difference(model, twin, config, seed=0):
    """Largest absolute logit difference between `model` and its twin on random token ids."""
    ids = np.random.default_rng(seed).integers(0, config.vocab_size, (2, config.seq_len))
    ids = ids.astype(np.int32)  # (2, T)
    expected = np.asarray(model(ids, training=False))  # (2, T, vocab)
    actual = twin(ids, training=False).numpy()
    return float(np.max(np.abs(expected - actual)))
