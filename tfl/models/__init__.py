"""Model builders and their configs.

>>> from tfl.models import build_model, TransformerConfig
>>> build_model(TransformerConfig.from_preset("nano", vocab_size=20)).count_params()
7424
"""

from tfl.models.config import (
    LSTMConfig,
    TransformerConfig,
    config_class,
    config_from_dict,
    config_to_dict,
)


def build_model(config):
    """The Keras model for `config` (a `TransformerConfig` or an `LSTMConfig`)."""
    if isinstance(config, TransformerConfig):
        from tfl.models.transformer import transformer_lm

        return transformer_lm(config)
    from tfl.models.lstm import lstm_lm

    return lstm_lm(config)


def parameter_count(config):
    """The closed-form trainable parameter count of the model `build_model(config)` makes."""
    if isinstance(config, TransformerConfig):
        from tfl.models.transformer import transformer_parameter_count

        return transformer_parameter_count(config)
    from tfl.models.lstm import lstm_parameter_count

    return lstm_parameter_count(config)


def __getattr__(name):
    if name in ("transformer_lm", "transformer_parameter_count"):
        from tfl.models import transformer

        return getattr(transformer, name)
    if name in ("model_parts", "TransformerParts", "LSTMParts", "BlockParts"):
        from tfl.models import parts

        return getattr(parts, name)
    if name == "FastLSTM":
        from tfl.models.fast_lstm import FastLSTM

        return FastLSTM
    if name == "RotaryDecoderBlock":
        from tfl.models.rotary_block import RotaryDecoderBlock

        return RotaryDecoderBlock
    if name in ("lstm_lm", "lstm_parameter_count"):
        from tfl.models import lstm

        return getattr(lstm, name)
    raise AttributeError(f"module 'tfl.models' has no attribute {name!r}")


__all__ = [
    "FastLSTM",
    "LSTMConfig",
    "RotaryDecoderBlock",
    "TransformerConfig",
    "build_model",
    "config_class",
    "config_from_dict",
    "config_to_dict",
    "model_parts",
    "lstm_lm",
    "parameter_count",
    "transformer_lm",
]
