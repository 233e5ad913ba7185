"""How to train: the `TrainConfig` dataclass and the optimizer and compile step it implies.

>>> TrainConfig(steps=2000).warmup_steps
100
>>> TrainConfig.from_dict({"step": 10})
Traceback (most recent call last):
...
tfl.errors.TflError: unknown training option 'step': did you mean 'steps'? ...
"""

import math
from dataclasses import dataclass

from tfl.errors import TflError, did_you_mean

DEFAULT_BATCH_SIZE = 12  # nanoGPT's small CPU configuration; the one default for every command


@dataclass(frozen=True)
class TrainConfig:
    """How to train. Defaults follow nanoGPT's small CPU configuration.

    Args:
        steps: optimizer steps in all.
        batch_size: global batch size (summed over replicas).
        learning_rate: peak learning rate, reached after `warmup_steps` of linear warm-up,
            then cosine decay to `min_learning_rate` at `steps`.
        weight_decay: AdamW decoupled weight decay (not applied to biases, norms, embeddings).
        clip_norm: global gradient-norm clipping (0 turns it off).
        eval_interval: steps between evaluations, checkpoints and samples.
        eval_batches: validation batches per evaluation (0: the whole validation split).
        stride: tokens between training windows (0: seq_len, windows do not overlap).
        seed: seeds weights, dropout and the data order.
        jit_compile: compile the train step with XLA (a mirrored run trains without it).
        mixed_precision: compute in bfloat16 (float16 on GPU), keep weights in float32.
        sample_prompt: prompt for the greedy sample after each interval.
        sample_tokens: tokens in that sample (0: no sample).
    """

    steps: int = 2000
    batch_size: int = DEFAULT_BATCH_SIZE
    learning_rate: float = 1e-3
    min_learning_rate: float = 1e-4
    warmup_steps: int = 100
    weight_decay: float = 0.1
    beta_2: float = 0.99
    clip_norm: float = 1.0
    eval_interval: int = 250
    eval_batches: int = 50
    stride: int = 0
    seed: int = 1337
    jit_compile: bool = True
    mixed_precision: bool = False
    sample_prompt: str = "\n"
    sample_tokens: int = 100

    def __post_init__(self):
        # Every field is checked here, before a run writes anything: a mistake found after
        # the run directory exists would leave a half-written run behind.
        for name in ("steps", "batch_size", "eval_interval"):
            _require(self, name, lambda v: v >= 1, "must be at least 1")
        for name in ("warmup_steps", "eval_batches", "stride", "sample_tokens"):
            _require(self, name, lambda v: v >= 0, "must be 0 or more")
        _require(self, "seed", lambda v: 0 <= v < 2**32, "must be in [0, 2**32)")
        _require(self, "learning_rate", lambda v: math.isfinite(v) and v > 0,
                 "must be a positive number")
        _require(self, "min_learning_rate", lambda v: 0 <= v <= self.learning_rate,
                 f"must be in [0, learning rate {self.learning_rate:g}]")
        for name in ("weight_decay", "clip_norm"):
            _require(self, name, lambda v: math.isfinite(v) and v >= 0,
                     "must be 0 or a positive number")
        _require(self, "beta_2", lambda v: 0 <= v < 1, "must be in [0, 1)")

    @classmethod
    def from_dict(cls, values):
        names = [f for f in cls.__dataclass_fields__]
        for key in values:
            if key not in names:
                raise TflError(f"unknown training option {key!r}: {did_you_mean(key, names)}")
        return cls(**values)

    @property
    def num_intervals(self):
        return math.ceil(self.steps / self.eval_interval)

    @property
    def steps_per_interval(self):
        # Intervals of equal length; total steps round up to a multiple of the interval count.
        return math.ceil(self.steps / self.num_intervals)


def _require(config, name, valid, rule):
    value = getattr(config, name)
    try:
        ok = bool(valid(value))
    except TypeError:  # not a number at all
        ok = False
    if not ok:
        raise TflError(f"training option {name} is {value!r}; it {rule}")


def make_optimizer(config: TrainConfig):
    """AdamW with linear warm-up then cosine decay, and global-norm clipping."""
    import keras  # (imported here so that reading a config, as the CLI does, stays fast)

    total_steps = config.num_intervals * config.steps_per_interval
    warmup = min(config.warmup_steps, total_steps - 1)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0,
        warmup_target=config.learning_rate,
        warmup_steps=warmup,
        decay_steps=max(total_steps - warmup, 1),
        alpha=config.min_learning_rate / config.learning_rate,
    )
    optimizer = keras.optimizers.AdamW(
        learning_rate=schedule,
        weight_decay=config.weight_decay,
        beta_2=config.beta_2,
        global_clipnorm=config.clip_norm or None,
    )
    # Decay matrices only: biases, norm scales and embeddings keep their scale (as in GPT-2).
    optimizer.exclude_from_weight_decay(
        var_names=["bias", "gamma", "beta", "embeddings", "position_embeddings"]
    )
    return optimizer


def compile_model(model, config: TrainConfig, distributed=False):
    """Compile `model` for next-token training: `make_optimizer(config)`, cross-entropy on
    logits, XLA as the config says (off under a multi-device strategy)."""
    import keras

    # XLA cannot compile a step whose variables live on several devices (a known TensorFlow
    # limitation), so a mirrored run trains without it.
    model.compile(
        optimizer=make_optimizer(config),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=config.jit_compile and not distributed,
    )
