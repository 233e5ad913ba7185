"""`train()`: from a corpus name and a preset to a trained run directory.

This is the workflow the CLI's `tfl train` calls: learn (or reload) the tokenizer, build the
model from its preset, choose the distribution strategy once, write the run's settings, and hand
the rest to a `Trainer`.
"""

from pathlib import Path

import keras

from tfl.errors import TflError
from tfl.io import write_json_atomic
from tfl.training.config import TrainConfig, compile_model
from tfl.training.trainer import Trainer


def train(architecture, preset, corpus, out, *, tokenizer="char", vocab_size=None,
          train_config=None, model_overrides=None, data_dir=None, log=print,
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
        model_overrides: config fields to change from the preset, e.g. {"dropout": 0.1}.
        devices: None (the default device), "auto" or a number of devices to mirror over
            (see `tfl.training.distribute.get_strategy`); `train_config.batch_size` is the global batch.
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
    from tfl.data.pipeline import encode_splits
    from tfl.models import build_model, config_class
    from tfl.run import TOKENIZER_DIR, DataSettings, RunSettings, read_run_settings
    from tfl.tokenizers import build_tokenizer, load_tokenizer

    train_config = train_config or TrainConfig()
    out = Path(out)
    chief = True
    if multi_worker:
        from tfl.training import multi_worker as mw

        if devices:
            raise TflError("--multi-worker and --devices do not combine; each worker uses "
                           "its default device")
        if train_config.mixed_precision:
            raise TflError("--mixed-precision is not supported with --multi-worker yet")
        # The cluster must start before any other TensorFlow op runs.
        strategy = mw.make_strategy()
        chief = mw.is_chief(strategy)
    data = DataSettings(str(corpus), tokenizer, vocab_size)
    corpus_obj = load_corpus(corpus, data_dir=data_dir)
    existing = (out / "config.json").is_file()
    if existing and chief:
        tok = load_tokenizer(out / TOKENIZER_DIR)
    else:
        # (Other workers learn the same tokenizer from the same text rather than race the
        # chief for its files.)
        tok = build_tokenizer(tokenizer, corpus_obj.train, vocab_size=vocab_size)
    model_config = config_class(architecture).from_preset(
        preset, vocab_size=tok.vocab_size, **(model_overrides or {}))
    settings = RunSettings(model_config, train_config, data)
    if existing and chief:
        if not read_run_settings(out).same_run_as(settings):
            raise TflError(f"{out} holds a run with other settings; choose another --out "
                           "or delete that directory to start over")
    elif chief and out.exists() and any(out.iterdir()):
        raise TflError(f"{out} exists and is not a tfl run; choose another --out")

    ids = encode_splits(corpus_obj, tok, splits=("train", "validation"))
    if multi_worker:
        pass
    elif devices:
        from tfl.training.distribute import get_strategy

        strategy = get_strategy(devices)
    else:
        import tensorflow as tf

        strategy = tf.distribute.get_strategy()
    distributed = strategy.num_replicas_in_sync > 1
    keras.utils.set_random_seed(train_config.seed)
    if train_config.mixed_precision:
        import tensorflow as tf

        policy = "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"
        keras.mixed_precision.set_global_policy(policy)
    try:
        with strategy.scope():
            model = build_model(model_config)
            compile_model(model, train_config, distributed=distributed)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    if not existing and chief:
        out.mkdir(parents=True, exist_ok=True)
        tok.save(out / TOKENIZER_DIR)
        write_json_atomic(out / "config.json", settings.to_json())
    if log:
        replicas = strategy.num_replicas_in_sync
        log(f"{architecture} {preset}: {model.count_params():,} parameters, vocabulary "
            f"{tok.vocab_size}, {len(ids['train']):,} training tokens, {replicas} "
            f"replica{'s' if replicas > 1 else ''} -> {out}")
    trainer = Trainer(out, model, tok, model_config, train_config, ids, log=log,
                      extra_callbacks=extra_callbacks, distributed=distributed)
    if multi_worker:
        return mw.fit_multi_worker(trainer, strategy)
    return trainer.fit()
