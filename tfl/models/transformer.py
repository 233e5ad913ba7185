"""`transformer_lm`: a GPT-style decoder-only Transformer, built from keras-hub layers.

    token ids (B, T)
      -> token embedding (B, T, d)  [+ position embedding, learned or sinusoidal]
      -> num_layers x pre-LayerNorm decoder block: causal self-attention, then MLP (GELU)
      -> final LayerNorm -> logits (B, T, vocab_size)   (output matrix tied to the embedding)

keras-hub's `TransformerDecoder` with `normalize_first=True` is the pre-LN block; called without
an encoder sequence it is decoder-only and applies the causal mask itself. With rotary
positions the blocks are `RotaryDecoderBlock`s (same weights, RoPE inside attention).

>>> from tfl.models import TransformerConfig, transformer_lm
>>> model = transformer_lm(TransformerConfig.from_preset("nano", vocab_size=20))
>>> model.output_shape
(None, 32, 20)
"""

import keras
import keras_hub

from tfl.models.config import TransformerConfig
from tfl.models.parts import FINAL_NORM, POSITION_LAYERS, TOKEN_EMBEDDING, block_name
from tfl.models.rotary_block import RotaryDecoderBlock


def transformer_lm(config: TransformerConfig, name="transformer_lm"):
    """A `keras.Model` from int token ids `(batch, seq_len)` to logits `(batch, seq_len, vocab)`."""
    token_ids = keras.Input(shape=(config.seq_len,), dtype="int32", name="token_ids")
    token_embedding = keras_hub.layers.ReversibleEmbedding(
        config.vocab_size,
        config.hidden_dim,
        tie_weights=config.tie_weights,
        embeddings_initializer=keras.initializers.RandomNormal(stddev=0.02),
        name=TOKEN_EMBEDDING,
    )
    x = token_embedding(token_ids)  # (B, T, d)
    if config.position == "learned":
        positions = keras_hub.layers.PositionEmbedding(
            config.seq_len,
            initializer=keras.initializers.RandomNormal(stddev=0.02),
            name=POSITION_LAYERS["learned"],
        )(x)
        x = keras.layers.Add(name="embeddings")([x, positions])
    elif config.position == "sinusoidal":
        positions = keras_hub.layers.SinePositionEncoding(name=POSITION_LAYERS["sinusoidal"])(x)
        x = keras.layers.Add(name="embeddings")([x, positions])
    # (rotary: positions enter inside each block's attention instead)
    x = keras.layers.Dropout(config.dropout, name="embedding_dropout")(x)
    for i in range(config.num_layers):
        if config.position == "rotary":
            block = RotaryDecoderBlock(
                intermediate_dim=config.ffn_dim,
                num_heads=config.num_heads,
                dropout=config.dropout,
                layer_norm_epsilon=config.layer_norm_epsilon,
                kernel_initializer=keras.initializers.RandomNormal(stddev=0.02),
                name=block_name(i),
            )
        else:
            block = keras_hub.layers.TransformerDecoder(
                intermediate_dim=config.ffn_dim,
                num_heads=config.num_heads,
                dropout=config.dropout,
                activation="gelu",
                layer_norm_epsilon=config.layer_norm_epsilon,
                kernel_initializer=keras.initializers.RandomNormal(stddev=0.02),
                normalize_first=True,
                name=block_name(i),
            )
        x = block(x)  # (B, T, d)
    x = keras.layers.LayerNormalization(epsilon=config.layer_norm_epsilon, name=FINAL_NORM)(x)
    logits = token_embedding(x, reverse=True)  # (B, T, vocab_size)
    return keras.Model(token_ids, logits, name=name)


def transformer_parameter_count(config: TransformerConfig):
    """Trainable parameters in closed form (what `model.count_params()` must equal).

    >>> transformer_parameter_count(TransformerConfig.from_preset("char-cpu", vocab_size=65))
    809856
    """
    d, f, v, t = config.hidden_dim, config.ffn_dim, config.vocab_size, config.seq_len
    embedding = v * d + (t * d if config.position == "learned" else 0)
    attention = 4 * d * d + 4 * d  # query, key, value and output projections with biases
    mlp = d * f + f + f * d + d
    layer_norms = 2 * 2 * d
    block = attention + mlp + layer_norms
    output = 0 if config.tie_weights else d * v
    return embedding + config.num_layers * block + 2 * d + output
