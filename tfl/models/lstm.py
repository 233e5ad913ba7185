"""`lstm_lm`: an Embedding-LSTM language model.

    token ids (B, T) -> embedding (B, T, e) -> num_layers x LSTM (B, T, h) -> logits (B, T, vocab)

Each LSTM step computes gates from the input x_t and the previous state h_{t-1}:
i, f, o = sigmoid(W x_t + U h_{t-1} + b), g = tanh(...), c_t = f*c_{t-1} + i*g, h_t = o*tanh(c_t).

>>> from tfl.models import LSTMConfig, lstm_lm
>>> lstm_lm(LSTMConfig.from_preset("nano", vocab_size=20)).output_shape
(None, 32, 20)
"""

import keras
import keras_hub

from tfl.models.config import LSTMConfig
from tfl.models.fast_lstm import FastLSTM
from tfl.models.parts import OUTPUT, TOKEN_EMBEDDING, lstm_name


def lstm_lm(config: LSTMConfig, name="lstm_lm"):
    """A `keras.Model` from int token ids `(batch, seq_len)` to logits `(batch, seq_len, vocab)`.

    The input length is fixed at `config.seq_len` for training; generation runs the same layers
    one token at a time with their state carried over. The recurrent layers are `FastLSTM`s:
    Keras LSTMs with a hand-written backward pass (see `tfl.models.fast_lstm`).
    """
    token_ids = keras.Input(shape=(config.seq_len,), dtype="int32", name="token_ids")
    embedding = keras_hub.layers.ReversibleEmbedding(
        config.vocab_size, config.embedding_dim, tie_weights=True, name=TOKEN_EMBEDDING
    )
    x = embedding(token_ids)  # (B, T, e)
    x = keras.layers.Dropout(config.dropout, name="embedding_dropout")(x)
    for i in range(config.num_layers):
        x = FastLSTM(config.hidden_dim, return_sequences=True, name=lstm_name(i))(x)
        x = keras.layers.Dropout(config.dropout, name=f"{lstm_name(i)}_dropout")(x)  # (B, T, h)
    if config.tie_weights:
        logits = embedding(x, reverse=True)  # (B, T, vocab_size)
    else:
        logits = keras.layers.Dense(config.vocab_size, name=OUTPUT)(x)  # (B, T, vocab_size)
    return keras.Model(token_ids, logits, name=name)


def lstm_parameter_count(config: LSTMConfig):
    """Trainable parameters in closed form.

    >>> lstm_parameter_count(LSTMConfig.from_preset("char-cpu", vocab_size=65))
    1354433
    """
    e, h, v = config.embedding_dim, config.hidden_dim, config.vocab_size
    total = v * e
    inputs = e
    for _ in range(config.num_layers):
        total += 4 * (inputs * h + h * h + h)  # input kernel, recurrent kernel, bias; 4 gates
        inputs = h
    return total + (0 if config.tie_weights else h * v + v)  # output kernel and bias
