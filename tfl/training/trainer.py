"""The `Trainer`: owns a run directory while it trains, and exposes the hooks a runner calls.

Training is counted in steps and cut into intervals of `eval_interval` steps. After every
interval the run evaluates on validation batches, writes a resume checkpoint (weights, optimizer
slots, dropout RNG state, step) and the history, keeps the best model, and prints a short greedy
sample so a learner can watch the model improve.

The Trainer does not run the steps itself: a runner does, and calls its public hooks in order:

    start = trainer.begin()                      # restore the checkpoint: first interval to run
    train_ds, val_ds = trainer.datasets(start)   # the batch stream from that point on
    for interval in range(start, trainer.num_intervals):
        trainer.interval_begins(interval)
        ...  trainer.step_done(step_in_interval, running_mean_loss)  after every step
        trainer.interval_done(interval, loss, val_loss)
    history = trainer.finish()                   # model.keras, loss.png; History

(`trainer.interrupted()` on Ctrl-C instead of `finish`, `trainer.end_progress()` when the runner
stops with another error.) With a `log`, a progress counter runs from `begin` to the end.

Two runners exist: `tfl.training.fit_runner` (Keras `model.fit`, one device or mirrored) and
`tfl.training.multi_worker` (a custom loop under `MultiWorkerMirroredStrategy`). Only a Trainer
with `writes=True` (the chief) writes files.

Starting the same command again after an interruption (Ctrl-C or a killed process) resumes from
the last completed interval: the batch stream is a fixed function of the seed and the step, so
the resumed run ends with the same weights as an uninterrupted one. A run killed after its last
checkpoint is finished by the rerun (`finish()` writes model.keras and loss.png from it).
"""

import csv
import io
import json
import math
import time
from pathlib import Path

import numpy as np

from tfl.errors import TflError
from tfl.io import atomic_directory, recover_directory, write_json_atomic, write_text_atomic
from tfl.run import (BEST_FILE, CHECKPOINT_DIR, CONFIG_FILE, MODEL_FILE, TOKENIZER_DIR,
                     RunSettings)

PLOT_FILE = "loss.png"


class History(list):
    """The per-interval records of a run (a list of dicts), and a digest of the final weights."""

    def __init__(self, records, weights_sha256=None):
        super().__init__(records)
        self.weights_sha256 = weights_sha256


class Trainer:
    """Trains one run directory; a runner drives it through its hooks (see the module doc).

    Args:
        run_dir: the run directory (created by `begin()` when `writes`).
        model: the compiled Keras model (built under `strategy`'s scope).
        tokenizer: the run's tokenizer.
        settings: the run's `tfl.run.RunSettings` (written as config.json).
        data_ids: {"train": ids, "validation": ids}, token ids of the two splits.
        strategy: the `tf.distribute` strategy the model was built under (default: none).
        writes: write the run directory; False on every worker of a cluster but the chief.
        log: where progress lines go (None: nowhere).

    Use `tfl.train(...)`, which builds the model, the Trainer and a runner:

    >>> import tempfile
    >>> from tfl import TrainConfig, train
    >>> history = train("lstm", "nano", "python_docs", tempfile.mkdtemp() + "/run", log=None,
    ...                 train_config=TrainConfig(steps=2, eval_interval=2, batch_size=2,
    ...                                          eval_batches=1, sample_tokens=0,
    ...                                          jit_compile=False))
    >>> len(history), len(history.weights_sha256)
    (1, 64)
    """

    def __init__(self, run_dir, model, tokenizer, settings: RunSettings, data_ids, *,
                 strategy=None, writes=True, log=print):
        import tensorflow as tf

        self.run_dir = Path(run_dir)
        self.model = model
        self.tokenizer = tokenizer
        self.settings = settings
        self.config = settings.train_config
        self.model_config = settings.model_config
        self.data_ids = data_ids
        self.strategy = strategy or tf.distribute.get_strategy()
        self.writes = writes
        self.log = log or (lambda *a, **k: None)
        self.shows_progress = log is not None
        self._progress = None
        self._loss = math.nan
        # Under several replicas every global batch is split between them, and the weights live
        # on several devices (the greedy sample is then left to `tfl generate`).
        self.distributed = self.strategy.num_replicas_in_sync > 1
        self.history = []
        self.best_val_loss = math.inf
        self.tokens_per_step = self.config.batch_size * self.model_config.seq_len
        self._start_interval = 0
        self._interval_started = time.perf_counter()

    @property
    def num_intervals(self):
        return self.config.num_intervals

    @property
    def total_steps(self):
        return self.config.num_intervals * self.config.steps_per_interval

    @property
    def completed_steps(self):
        """Steps up to the last checkpoint (the steps a rerun would not train again)."""
        return len(self.history) * self.config.steps_per_interval

    @property
    def checkpoint_dir(self):
        return self.run_dir / CHECKPOINT_DIR

    @property
    def tensorboard_dir(self):
        """Where a runner writes TensorBoard logs (None when this Trainer does not write)."""
        return self.run_dir / "logs" if self.writes else None

    # -- hooks a runner calls -------------------------------------------------------------

    def begin(self):
        """Start or resume: write a new run's settings and tokenizer, restore the checkpoint.

        Returns the first interval to train (`num_intervals` when the run is already trained).
        """
        if self.writes and not (self.run_dir / CONFIG_FILE).is_file():
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self.tokenizer.save(self.run_dir / TOKENIZER_DIR)
            write_json_atomic(self.run_dir / CONFIG_FILE, self.settings.to_json())
        with self.strategy.scope():
            self._start_interval = self._restore_checkpoint()
        start_step = self._start_interval * self.config.steps_per_interval
        if 0 < self._start_interval < self.num_intervals:
            self.log(f"resuming {self.run_dir} at step {start_step}")
        if self.shows_progress and self._start_interval < self.num_intervals:
            from tfl.progress import Progress

            self._progress = Progress(
                self.total_steps - start_step,
                f"training from step {start_step}" if start_step else "training",
                extra=lambda: f"loss {self._loss:.4f}")
        self._interval_started = time.perf_counter()
        return self._start_interval

    def datasets(self, start_interval):
        """`(train, validation)` datasets: the training stream from `start_interval` on
        (repeated, shuffled by the seed) and the fixed validation batches.

        Under several replicas both are sharded by element: every replica gets its slice of
        each global batch. (The default AUTO policy looks for input files first and warns
        when there are none.)
        """
        from tfl.data.pipeline import make_dataset

        cfg, seq_len = self.config, self.model_config.seq_len
        train_ds = make_dataset(self.data_ids["train"], seq_len, cfg.batch_size,
                                stride=cfg.stride or None, shuffle=True, seed=cfg.seed,
                                repeat=True, split_name="train")
        # The batch stream is a fixed function of (seed, step): skip what was already seen.
        train_ds = train_ds.skip(start_interval * cfg.steps_per_interval)
        # Caching only pays when every batch is read; a partial read (eval_batches) discards it.
        val_ds = make_dataset(self.data_ids["validation"], seq_len, cfg.batch_size,
                              split_name="validation", cache=not cfg.eval_batches)
        if cfg.eval_batches:
            val_ds = val_ds.take(cfg.eval_batches)
        if self.distributed:
            import tensorflow as tf

            options = tf.data.Options()
            options.experimental_distribute.auto_shard_policy = (
                tf.data.experimental.AutoShardPolicy.DATA)
            train_ds, val_ds = train_ds.with_options(options), val_ds.with_options(options)
        return train_ds, val_ds

    def interval_begins(self, interval):
        """Interval `interval` (0-based) starts now: its clock starts."""
        self._interval_started = time.perf_counter()

    def step_done(self, step_in_interval, loss):
        """Step `step_in_interval` (0-based, within the current interval) has finished with
        running mean `loss`: advance the progress counter (`tfl.progress.Progress`: a line
        updated in place on a terminal, a plain line now and then elsewhere; none without a
        `log`)."""
        self._loss = loss
        if self._progress is not None:
            self._progress.advance()

    def interval_done(self, interval, loss, val_loss):
        """Interval `interval` has finished with mean training `loss` and `val_loss`: record it,
        keep the best model, write the checkpoint and history, log, and sample.

        Raises `TflError` when a loss is not finite (the run diverged).
        """
        if not all(x is not None and math.isfinite(x) for x in (loss, val_loss)):
            self._end_progress(failed=True)
            raise self._nan_error()
        elapsed = time.perf_counter() - self._interval_started
        step = (interval + 1) * self.config.steps_per_interval
        record = {
            "step": step,
            "tokens": step * self.tokens_per_step,
            "loss": float(loss),
            "val_loss": float(val_loss),
            "learning_rate": float(self.model.optimizer.learning_rate),
            "tokens_per_s": self.config.steps_per_interval * self.tokens_per_step / elapsed,
            "interval_seconds": elapsed,
        }
        self.history.append(record)
        if record["val_loss"] < self.best_val_loss:
            self.best_val_loss = record["val_loss"]
            self._save_model(BEST_FILE)
        self._save_checkpoint(interval + 1)
        self._write_history()
        if self._progress is not None and self._progress.interactive:
            # The interval's line goes above the progress line, which the next step redraws.
            self._progress.stream.write("\r\033[K")
        self.log(f"step {step:>6}/{self.total_steps}  loss {record['loss']:.4f}  "
                 f"val {record['val_loss']:.4f}  {record['tokens_per_s']:,.0f} tokens/s")
        if self.config.sample_tokens and not self.distributed:
            self.log("  sample: " + repr(self.sample()))

    def interrupted(self):
        """Ctrl-C: keep the current weights in model.keras and say how to resume (a run
        stopped before its first checkpoint keeps nothing: `tfl.train` removes it)."""
        self._end_progress(failed=True)
        if not self.history:
            self.log("interrupted before the first checkpoint: nothing was kept")
            return
        self._save_model(MODEL_FILE)
        self.log(f"interrupted: the checkpoint at step {self.completed_steps} is kept; run the "
                 "same command again to resume")

    def finish(self):
        """End the run: write the history, model.keras and loss.png from the final state, also
        when the run was already trained (a process killed after its last checkpoint has not
        written them yet). Returns the `History`.

        Raises `TflError` when the runner stopped before the last interval (a diverged run).
        """
        self._end_progress(failed=len(self.history) < self.num_intervals)
        if len(self.history) < self.num_intervals:
            raise self._nan_error()
        if self._start_interval >= self.num_intervals:
            self.log(f"{self.run_dir} is already trained ({self.total_steps} steps)")
        if self.writes:
            self._write_history()
            self._save_model(MODEL_FILE)
            plot_history(self.history, self.run_dir / PLOT_FILE, title=self.run_dir.name)
        return History(self.history, weights_sha256=weights_digest(self.model))

    def end_progress(self):
        """The run stopped with an error: end the progress line (`finish` and `interrupted`
        end it otherwise)."""
        self._end_progress(failed=True)

    # -- the run directory ------------------------------------------------------------------

    def _end_progress(self, failed):
        progress, self._progress = self._progress, None
        if progress is None:
            return
        if not failed:
            progress.__exit__(None, None, None)  # its last line, with the time taken
        elif progress.interactive:
            progress.stream.write("\n")  # the count where it stopped stays on screen

    def _nan_error(self):
        return TflError(f"the loss became NaN after step {self.completed_steps}; lower "
                        "--learning-rate or keep gradient clipping on")

    def _save_model(self, name):
        # Through a temporary file: a kill mid-save never leaves a truncated model behind,
        # so "the file exists" means "the file is complete".
        if not self.writes:
            return
        tmp = self.run_dir / f".{name}.tmp.keras"
        self.model.save(tmp)
        tmp.replace(self.run_dir / name)

    def _save_checkpoint(self, completed_intervals):
        if not self.writes:
            return
        # Every variable's value, in order: model weights, dropout RNG states (a .keras file
        # does not keep those), optimizer step and moment estimates.
        values = [v.numpy() for v in self.model.variables + self.model.optimizer.variables]
        with atomic_directory(self.checkpoint_dir) as tmp:
            np.savez(tmp / "variables.npz", *values)
            write_json_atomic(tmp / "progress.json", {
                "completed_intervals": completed_intervals,
                "history": self.history,
                "best_val_loss": self.best_val_loss,
            })

    def _restore_checkpoint(self):
        """Load the resume state if there is one; returns the number of completed intervals."""
        progress_file = recover_directory(self.checkpoint_dir) / "progress.json"
        if not progress_file.is_file():
            return 0
        optimizer = self.model.optimizer
        optimizer.build(self.model.trainable_variables)
        variables = self.model.variables + optimizer.variables
        try:
            progress = json.loads(progress_file.read_text())
            with np.load(self.checkpoint_dir / "variables.npz") as saved:
                values = [saved[f"arr_{i}"] for i in range(len(saved.files))]
            if len(values) != len(variables):
                raise ValueError("variable count")
            for var, value in zip(variables, values):
                var.assign(value)
        except (OSError, ValueError, KeyError):
            raise TflError(f"the checkpoint in {self.checkpoint_dir} is corrupt or from another "
                           "model; delete that directory to start the run over") from None
        self.history = progress["history"]
        self.best_val_loss = progress["best_val_loss"]
        return progress["completed_intervals"]

    def _write_history(self):
        if not self.writes:
            return
        write_json_atomic(self.run_dir / "history.json", self.history)
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(self.history[0]))
        writer.writeheader()
        writer.writerows(self.history)
        write_text_atomic(self.run_dir / "history.csv", out.getvalue())

    def sample(self):
        """A greedy continuation of the sample prompt (`tfl.inference` keeps the compiled
        decoder of a model, so it is traced once per run)."""
        from tfl.inference.generate import generate_ids

        prompt = self.tokenizer.encode(self.config.sample_prompt)
        new = generate_ids(self.model, self.model_config, prompt, self.config.sample_tokens,
                           sampler="greedy")
        return self.tokenizer.decode(new)


def plot_history(history, path, title=""):
    """Training and validation loss against steps, as a PNG.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "loss.png"
    >>> plot_history([{"step": 2, "loss": 3.0, "val_loss": 3.1}], path); path.is_file()
    True
    """
    from tfl.plotting import figure

    steps = [r["step"] for r in history]
    with figure(path) as ax:
        ax.plot(steps, [r["loss"] for r in history], marker="o", label="train (interval mean)")
        if history and history[0]["val_loss"] is not None:
            ax.plot(steps, [r["val_loss"] for r in history], marker="o", label="validation")
        ax.set_xlabel("step")
        ax.set_ylabel("cross-entropy (nats / token)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()


def weights_digest(model):
    """sha256 of all weights' bytes: equal digests mean bit-identical weights.

    >>> import keras
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> weights_digest(model) == weights_digest(model)
    True
    """
    import hashlib

    digest = hashlib.sha256()
    for w in model.get_weights():
        digest.update(np.ascontiguousarray(w).tobytes())
    return digest.hexdigest()
