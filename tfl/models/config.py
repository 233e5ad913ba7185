"""Model configurations: one dataclass per architecture, with named presets.

A config is all that is needed to rebuild a model; it is saved as `config.json` beside the
weights. Unknown preset names and unknown or mistyped options are rejected with the valid ones.

>>> config = TransformerConfig.from_preset("char-cpu", vocab_size=68)
>>> config.num_layers, config.num_heads, config.hidden_dim, config.seq_len
(4, 4, 128, 64)
>>> TransformerConfig.from_preset("char-cpu", vocab_size=68, num_layer=2)
Traceback (most recent call last):
...
tfl.errors.TflError: unknown option 'num_layer' for a transformer config: did you mean 'num_layers'? ...
"""

import dataclasses
from dataclasses import dataclass

from tfl.errors import TflError, did_you_mean

POSITION_KINDS = ("learned", "sinusoidal", "rotary")


@dataclass(frozen=True)
class _ModelConfig:
    """Shared behaviour: presets, overrides by name, dict round trip, validation."""

    architecture = None
    PRESETS = {}

    @classmethod
    def option_names(cls):
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_preset(cls, preset, **overrides):
        """The named preset, with any fields replaced by `overrides` (e.g. `vocab_size=`)."""
        if preset not in cls.PRESETS:
            raise TflError(
                f"unknown {cls.architecture} preset {preset!r}; {did_you_mean(preset, list(cls.PRESETS))}"
            )
        return cls.from_dict({**cls.PRESETS[preset], **overrides})

    @classmethod
    def from_dict(cls, values):
        names = cls.option_names()
        for key in values:
            if key not in names:
                raise TflError(
                    f"unknown option {key!r} for a {cls.architecture} config: "
                    f"{did_you_mean(key, names)}"
                )
        try:
            return cls(**values)
        except TypeError as e:  # a required field is missing
            raise TflError(f"incomplete {cls.architecture} config: {e}") from None

    def to_dict(self):
        return dataclasses.asdict(self)

    def _require(self, condition, message):
        if not condition:
            raise TflError(f"invalid {self.architecture} config: {message}")


@dataclass(frozen=True)
class TransformerConfig(_ModelConfig):
    """A GPT-style decoder-only Transformer.

    Args:
        vocab_size: number of token ids (from the tokenizer).
        seq_len: the context length: positions the model attends over.
        num_layers: decoder blocks.
        num_heads: attention heads per block; `hidden_dim` must divide by it.
        hidden_dim: width of the residual stream (embedding size).
        intermediate_dim: width of each block's MLP (0 means 4 * hidden_dim).
        dropout: dropout rate in attention, MLP and embeddings.
        position: "learned" (a trained vector per position), "sinusoidal" (fixed vectors) or
            "rotary" (queries and keys rotated by position inside attention, RoPE).
        tie_weights: the output layer reuses the token embedding matrix, transposed.
        layer_norm_epsilon: LayerNorm epsilon.
    """

    architecture = "transformer"
    PRESETS = {
        "nano": dict(seq_len=32, num_layers=2, num_heads=2, hidden_dim=16),
        "micro": dict(seq_len=64, num_layers=2, num_heads=4, hidden_dim=64),
        "char-cpu": dict(seq_len=64, num_layers=4, num_heads=4, hidden_dim=128),
        "char-gpu": dict(seq_len=256, num_layers=6, num_heads=6, hidden_dim=384, dropout=0.2),
    }

    vocab_size: int
    seq_len: int
    num_layers: int
    num_heads: int
    hidden_dim: int
    intermediate_dim: int = 0
    dropout: float = 0.0
    position: str = "learned"
    tie_weights: bool = True
    layer_norm_epsilon: float = 1e-5

    def __post_init__(self):
        self._require(self.vocab_size > 3, f"vocab_size {self.vocab_size} must exceed 3")
        self._require(self.seq_len > 0 and self.num_layers > 0, "sizes must be positive")
        self._require(
            self.hidden_dim % self.num_heads == 0,
            f"hidden_dim {self.hidden_dim} is not a multiple of num_heads {self.num_heads}",
        )
        self._require(0 <= self.dropout < 1, f"dropout {self.dropout} must be in [0, 1)")
        self._require(
            self.position in POSITION_KINDS,
            f"position {self.position!r} is not one of {', '.join(POSITION_KINDS)}",
        )

    @property
    def ffn_dim(self):
        return self.intermediate_dim or 4 * self.hidden_dim

    @property
    def head_dim(self):
        return self.hidden_dim // self.num_heads


@dataclass(frozen=True)
class LSTMConfig(_ModelConfig):
    """An Embedding-LSTM language model.

    Args:
        vocab_size: number of token ids (from the tokenizer).
        seq_len: tokens per training example (the LSTM itself has no context limit).
        embedding_dim: size of the token embedding.
        hidden_dim: LSTM units per layer.
        num_layers: stacked LSTM layers.
        dropout: dropout after the embedding and after each LSTM layer.
        tie_weights: the output layer reuses the embedding matrix (needs hidden_dim == embedding_dim).
    """

    architecture = "lstm"
    PRESETS = {
        "nano": dict(seq_len=32, embedding_dim=16, hidden_dim=32, num_layers=1),
        "micro": dict(seq_len=64, embedding_dim=64, hidden_dim=128, num_layers=1),
        # Embedding 128 + LSTM 512 + output: about 1.35M parameters with 65 characters.
        "char-cpu": dict(seq_len=100, embedding_dim=128, hidden_dim=512, num_layers=1),
        "char-gpu": dict(seq_len=256, embedding_dim=384, hidden_dim=1024, num_layers=2, dropout=0.2),
    }

    vocab_size: int
    seq_len: int
    embedding_dim: int
    hidden_dim: int
    num_layers: int = 1
    dropout: float = 0.0
    tie_weights: bool = False

    def __post_init__(self):
        self._require(self.vocab_size > 3, f"vocab_size {self.vocab_size} must exceed 3")
        self._require(min(self.seq_len, self.embedding_dim, self.hidden_dim, self.num_layers) > 0,
                      "sizes must be positive")
        self._require(0 <= self.dropout < 1, f"dropout {self.dropout} must be in [0, 1)")
        self._require(
            not self.tie_weights or self.hidden_dim == self.embedding_dim,
            "tie_weights needs hidden_dim == embedding_dim "
            f"(got {self.hidden_dim} and {self.embedding_dim})",
        )


CONFIGS = {cls.architecture: cls for cls in (TransformerConfig, LSTMConfig)}


def config_class(architecture):
    if architecture not in CONFIGS:
        raise TflError(
            f"unknown architecture {architecture!r}; {did_you_mean(architecture, list(CONFIGS))}"
        )
    return CONFIGS[architecture]


def config_from_dict(data):
    """Rebuild a config from `{"architecture": ..., **fields}` (the format of config.json)."""
    data = dict(data)
    return config_class(data.pop("architecture", None)).from_dict(data)


def config_to_dict(config):
    return {"architecture": config.architecture, **config.to_dict()}
