"""`train()`: from a corpus name and a preset to a trained run directory.

This is the workflow the CLI's `tfl train` calls: check `--out`, choose the distribution
strategy (once, first), learn (or reload) the tokenizer, check the corpus and the batch, build
the model from its preset under that strategy, then take the run directory's lock
(`tfl.training.lock`) and hand the directory to a `Trainer` driven by a runner (`model.fit`, or
the multi-worker loop). Nothing is written before the lock is taken.
"""

import contextlib
import dataclasses
import math
import shutil
from pathlib import Path

import keras

from tfl.errors import TflError
from tfl.io import check_writable_path
from tfl.training.config import TrainConfig, compile_model
from tfl.training.lock import LOCK_FILE, check_unlocked, is_lock_file, run_lock
from tfl.training.multi_worker import DEFAULT_CLUSTER_TIMEOUT


def train(architecture, preset, corpus, out, *, tokenizer="char", vocab_size=None,
          train_config=None, epochs=None, model_overrides=None, data_dir=None, log=print,
          extra_callbacks=(), devices=None, multi_worker=False,
          cluster_timeout=DEFAULT_CLUSTER_TIMEOUT):
    """Train a model into the run directory `out`, resuming if `out` holds the same run.

    Everything is checked before anything is written (the options, `out`, the split over
    replicas, the corpus against the batch), and a new run that stops before its first
    checkpoint removes what it wrote, so a mistake never leaves a half-written run behind.
    While it trains, the run holds the lock of `out` (`tfl.training.lock`): a second `train`
    on the same `out` stops at once with a `TflError`.

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
        log: where progress lines go (None: nowhere, and no progress counter).
        extra_callbacks: Keras callbacks for `model.fit` (not used by `multi_worker` runs).
        devices: None (the default device), "auto" or a number of devices to mirror over
            (see `tfl.training.distribute.get_strategy`); `train_config.batch_size` is the
            global batch, and must split evenly over them.
        multi_worker: train as one worker of the cluster in `TF_CONFIG`
            (see `tfl.training.multi_worker`); only the chief writes `out`.
        cluster_timeout: with `multi_worker`, seconds to wait for the other workers, at
            start-up and at every step.

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
    from tfl.run import TOKENIZER_DIR, DataSettings, RunSettings, is_run_directory
    from tfl.tokenizers import build_tokenizer, load_tokenizer
    from tfl.training.distribute import choose_strategy
    from tfl.training.multi_worker import is_chief
    from tfl.training.trainer import Trainer

    train_config = train_config or TrainConfig()
    out = Path(out)
    check_writable_path(out)
    check_unlocked(out)
    if epochs is not None:
        if epochs < 1:
            raise TflError(f"--epochs must be at least 1, got {epochs}")
        if train_config.steps != TrainConfig.steps:
            raise TflError("give either steps or epochs, not both")
    if multi_worker and train_config.mixed_precision:
        raise TflError("--mixed-precision is not supported with --multi-worker yet")
    if not (isinstance(cluster_timeout, (int, float)) and 0 < cluster_timeout < math.inf):
        raise TflError(f"--cluster-timeout must be a positive number of seconds, "
                       f"got {cluster_timeout!r}")
    if str(devices).isdigit():  # (known before any device is set up)
        _check_batch_splits(train_config.batch_size, int(devices))
    # Chosen once, first: the cluster and logical devices must be set up before any other
    # TensorFlow op runs.
    strategy = choose_strategy(devices, multi_worker, cluster_timeout=cluster_timeout, log=log)
    replicas = strategy.num_replicas_in_sync
    _check_batch_splits(train_config.batch_size, replicas)
    chief = not multi_worker or is_chief(strategy)

    data = DataSettings(str(corpus), tokenizer, vocab_size)
    corpus_obj = load_corpus(corpus, data_dir=data_dir)
    existing = chief and is_run_directory(out) and not _never_trained(out)
    if existing:
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
    _check_splits_fill_a_batch(ids, model_config.seq_len, train_config)
    settings = RunSettings(model_config, train_config, data)
    if chief and not (out / LOCK_FILE).exists():
        # (With a lock file there, another run may be writing `out` right now: the lock, taken
        # below, speaks first.)
        _check_directory_takes(out, settings)

    keras.utils.set_random_seed(train_config.seed)
    with strategy.scope(), _dtype_policy(_policy_name(train_config)):
        model = build_model(model_config)
        compile_model(model, train_config, distributed=replicas > 1)
    trainer = Trainer(out, model, tok, settings, ids, strategy=strategy, writes=chief, log=log)
    summary = (f"{architecture} {preset}: {model.count_params():,} parameters, vocabulary "
               f"{tok.vocab_size}, {len(ids['train']):,} training tokens, {replicas} "
               f"replica{'s' if replicas > 1 else ''} -> {out}")
    if not chief:
        return _run(trainer, strategy, multi_worker, extra_callbacks, summary)
    created = not out.exists()
    try:
        with run_lock(out):
            # What was checked above without the lock, again under it: another process may
            # have started a run in `out` in between.
            if _never_trained(out):
                trainer.log(f"starting {out} over: its last run was stopped before its first "
                            "checkpoint")
                _remove_contents(out)
            if is_run_directory(out) != existing:
                raise TflError(f"{out} changed while this run was starting (another `tfl "
                               "train`?); run the command again")
            _check_directory_takes(out, settings)
            try:
                return _run(trainer, strategy, multi_worker, extra_callbacks, summary)
            except BaseException:
                trainer.end_progress()
                if not existing and not (trainer.checkpoint_dir / "progress.json").is_file():
                    _remove_contents(out)  # a new run that stopped before its first checkpoint
                raise
    finally:
        if created:
            with contextlib.suppress(OSError):  # (only when empty: the run left nothing)
                out.rmdir()


def _check_batch_splits(batch_size, replicas):
    if batch_size % replicas:
        suggestion = replicas * max(1, round(batch_size / replicas))
        raise TflError(f"--batch-size {batch_size} does not split evenly over {replicas} "
                       f"replicas; use a multiple of {replicas} (e.g. {suggestion})")


def _check_splits_fill_a_batch(ids, seq_len, train_config):
    from tfl.data.pipeline import num_windows

    for split, stride in (("train", train_config.stride or None), ("validation", None)):
        windows = num_windows(len(ids[split]), seq_len, stride)
        if windows < train_config.batch_size:
            raise TflError(
                f"the {split} split has {len(ids[split]):,} tokens, {windows} window(s) of "
                f"{seq_len + 1}: fewer than one batch of {train_config.batch_size}; use a "
                "larger corpus, a smaller --batch-size or a preset with a shorter context")


def _never_trained(out):
    """True for a run directory whose run was killed before its first checkpoint: it holds
    settings, a tokenizer and perhaps logs, no weights: nothing worth keeping."""
    from tfl.run import BEST_FILE, CHECKPOINT_DIR, MODEL_FILE, is_run_directory

    return is_run_directory(out) and not any(
        (out / name).exists() for name in (CHECKPOINT_DIR, MODEL_FILE, BEST_FILE))


def _check_directory_takes(out, settings):
    """Raise `TflError` unless `out` is missing, empty, holds this same run, or a run that never
    reached a checkpoint."""
    from tfl.run import is_run_directory, read_run_settings

    if _never_trained(out):
        return
    if is_run_directory(out):
        if not read_run_settings(out).same_run_as(settings):
            raise TflError(f"{out} holds a run with other settings; choose another --out "
                           "or delete that directory to start over")
    elif out.is_dir() and any(not is_lock_file(p) for p in out.iterdir()):
        raise TflError(f"{out} exists and is not a tfl run; choose another --out")


def _remove_contents(directory):
    for path in Path(directory).iterdir():
        if is_lock_file(path):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _run(trainer, strategy, multi_worker, extra_callbacks, summary):
    from tfl.training import fit_runner
    from tfl.training.multi_worker import run_custom_loop

    trainer.log(summary)
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
