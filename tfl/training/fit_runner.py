"""The `model.fit` runner: trains a `Trainer` with Keras's own loop, one device or mirrored.

Each interval of the Trainer is one Keras "epoch" of `steps_per_interval` steps, with the
validation batches evaluated at its end; `TrainerCallback` forwards Keras's events to the
Trainer's hooks, so checkpoints, history and samples are the Trainer's business, not this one's.

`tfl.train` builds the Trainer and calls `run(trainer)` for any run but a multi-worker one:

>>> import tempfile
>>> from tfl import TrainConfig, train
>>> history = train("lstm", "nano", "python_docs", tempfile.mkdtemp() + "/run", log=None,
...                 train_config=TrainConfig(steps=4, eval_interval=2, batch_size=2,
...                                          eval_batches=1, sample_tokens=0, jit_compile=False))
>>> [r["step"] for r in history]
[2, 4]
"""

import warnings

import keras


class TrainerCallback(keras.callbacks.Callback):
    """Forwards Keras's epoch and batch events to a `Trainer`'s hooks."""

    def __init__(self, trainer):
        super().__init__()
        self.trainer = trainer

    def on_epoch_begin(self, epoch, logs=None):
        self.trainer.interval_begins(epoch)

    def on_train_batch_end(self, batch, logs=None):
        self.trainer.step_done(batch, (logs or {}).get("loss", float("nan")))

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.trainer.interval_done(epoch, logs.get("loss"), logs.get("val_loss"))


def run(trainer, extra_callbacks=()):
    """Train `trainer` (a `tfl.training.trainer.Trainer`) with `model.fit`; returns its History.

    `extra_callbacks` are Keras callbacks called after the Trainer's own (so in `on_epoch_end`
    the interval's checkpoint is already written).
    """
    start_interval = trainer.begin()
    if start_interval < trainer.num_intervals:
        train_ds, val_ds = trainer.datasets(start_interval)
        callbacks = [keras.callbacks.TerminateOnNaN(), TrainerCallback(trainer),
                     *extra_callbacks]
        if trainer.tensorboard_dir:
            callbacks.insert(1, keras.callbacks.TensorBoard(str(trainer.tensorboard_dir),
                                                            write_graph=False))
        try:
            with warnings.catch_warnings():
                # Keras warns that fit's shuffle flag is ignored for datasets; ours shuffles.
                warnings.filterwarnings("ignore", message=".*shuffle=True.*was passed")
                trainer.model.fit(
                    train_ds,
                    steps_per_epoch=trainer.config.steps_per_interval,
                    epochs=trainer.num_intervals,
                    initial_epoch=start_interval,
                    validation_data=val_ds,
                    callbacks=callbacks,
                    verbose=0,
                )
        except KeyboardInterrupt:
            trainer.interrupted()
            raise
    return trainer.finish()
