"""`train()`: from a corpus name and a preset to a trained run directory.

This is the workflow the CLI's `tfl train` calls: choose the distribution strategy (once, first),
learn (or reload) the tokenizer, build the model from its preset under that strategy, and hand
the run directory to a `Trainer` driven by a runner (`model.fit`, or the multi-worker loop).
"""

import contextlib
import dataclasses
from pathlib import Path

import keras

from tfl.errors import TflError
from tfl.training.config import TrainConfig, compile_model

def train(architecture, preset, corpus, out, *, tokenizer="char", vocab_size=None,
          train_config=None, epochs=None, model_overrides=None, data_dir=None, log=print,
          extra_callbacks=(), devices=None, multi_worker=False):
    """Train a model into the run directory `out`, resuming if `out` holds the same run.

    Args:
        architecture: "transformer" or "lstm".
        preset: a preset name of that architecture ("nano", "char-cpu", ...).
        corpus: a corpus name or path (see `tfl.data.load_corpus`).
        out: the run directory.
        tokenizer: tokenizer kind, learned from the training split.
        vocab_size: target vocabulary size for learned tokenizers.
        train_config: a `TrainConfig` (defaults if None).
        epochs: train for this many passes over the training windows instead of
            `train_config.steps` (leave that at its default): steps =
            max(1, epochs * windows // batch_size); config.json records the resulting steps.
        model_overrides: config fields to change from the preset, e.g. {"dropout": 0.1}.
        log: where progress lines go (None: nowhere).
        extra_callbacks: Keras callbacks for `model.fit` (not used by `multi_worker` runs).
        devices: None (the default device), "auto" or a number of devices to mirror over
            (see `tfl.training.distribute.get_strategy`); `train_config.batch_size` is the
            global batch.
        multi_worker: train as one worker of the cluster in `TF_CONFIG`
            (see `tfl.training.multi_worker`); only the chief writes `out`.

    Returns the run's `History`: one dict per interval, and `weights_sha256` of the final weights.

    >>> import tempfile
    >>> history = train("transformer", "nano", "python_docs", tempfile.mkdtemp() + "/run",
    ...                 train_config=TrainConfig(steps=4, eval_interval=2, batch_size=2,
    ...                                          eval_batches=1, sample_tokens=0), log=None)
    >>> [r["step"] for r in history]
    [2, 4]
    """
    from tfl.data.corpora import load_corpus
    from tfl.data.pipeline import encode_splits, num_windows
    from tfl.models import build_model, config_class
    from tfl.run import (TOKENIZER_DIR, DataSettings, RunSettings, is_run_directory,
                         read_run_settings)
    from tfl.tokenizers import build_tokenizer, load_tokenizer
    from tfl.training import fit_runner
    from tfl.training.distribute import choose_strategy
    from tfl.training.multi_worker import is_chief, run_custom_loop
    from tfl.training.trainer import Trainer

    train_config = train_config or TrainConfig()
    out = Path(out)
    if epochs is not None:
        if epochs < 1:
            raise TflError(f"--epochs must be at least 1, got {epochs}")
        if train_config.steps != TrainConfig.steps:
            raise TflError("give either steps or epochs, not both")
    if multi_worker and train_config.mixed_precision:
        raise TflError("--mixed-precision is not supported with --multi-worker yet")
    # Chosen once, first: the cluster and logical devices must be set up before any other
    # TensorFlow op runs.
    strategy = choose_strategy(devices, multi_worker)
    chief = not multi_worker or is_chief(strategy)

    data = DataSettings(str(corpus), tokenizer, vocab_size)
    corpus_obj = load_corpus(corpus, data_dir=data_dir)
    existing = is_run_directory(out)
    if existing and chief:
        tok = load_tokenizer(out / TOKENIZER_DIR)
    else:
        # (Other workers learn the same tokenizer from the same text rather than race the
        # chief for its files.)
        tok = build_tokenizer(tokenizer, corpus_obj.train, vocab_size=vocab_size)
    model_config = config_class(architecture).from_preset(
        preset, vocab_size=tok.vocab_size, **(model_overrides or {}))
    ids = encode_splits(corpus_obj, tok, splits=("train", "validation"))
    if epochs is not None:
        windows = num_windows(len(ids["train"]), model_config.seq_len, train_config.stride or None)
        train_config = dataclasses.replace(
            train_config, steps=max(1, epochs * windows // train_config.batch_size))
    settings = RunSettings(model_config, train_config, data)
    if existing and chief:
        if not read_run_settings(out).same_run_as(settings):
            raise TflError(f"{out} holds a run with other settings; choose another --out "
                           "or delete that directory to start over")
    elif chief and out.exists() and any(out.iterdir()):
        raise TflError(f"{out} exists and is not a tfl run; choose another --out")

    keras.utils.set_random_seed(train_config.seed)
    with strategy.scope(), _dtype_policy(_policy_name(train_config)):
        model = build_model(model_config)
        compile_model(model, train_config, distributed=strategy.num_replicas_in_sync > 1)
    if log:
        replicas = strategy.num_replicas_in_sync
        log(f"{architecture} {preset}: {model.count_params():,} parameters, vocabulary "
            f"{tok.vocab_size}, {len(ids['train']):,} training tokens, {replicas} "
            f"replica{'s' if replicas > 1 else ''} -> {out}")
    trainer = Trainer(out, model, tok, settings, ids, strategy=strategy, writes=chief, log=log)
    if multi_worker:
        return run_custom_loop(trainer, strategy)
    return fit_runner.run(trainer, extra_callbacks)


def _policy_name(train_config):
    if not train_config.mixed_precision:
        return "float32"
    import tensorflow as tf

    return "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"


@contextlib.contextmanager
def _dtype_policy(name):
    """Layers built in this block take the dtype policy `name`; the global policy the caller had
    is restored afterwards."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)
