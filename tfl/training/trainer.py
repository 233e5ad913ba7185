"""Training: `model.fit` on the windowed pipeline, with checkpoints that resume exactly.

Training is counted in steps and cut into intervals of `eval_interval` steps (one Keras "epoch"
each). After every interval the run evaluates on validation batches, writes a resume checkpoint
(weights, optimizer slots, dropout RNG state, step) and the history, keeps the best model, and
prints a short greedy sample so a learner can watch the model improve.

Starting the same command again after an interruption (Ctrl-C or a killed process) resumes from
the last completed interval: the batch stream is a fixed function of the seed and the step, so
the resumed run ends with the same weights as an uninterrupted one.

"""

import csv
import io
import json
import math
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np

from tfl.errors import TflError
from tfl.io import atomic_directory, write_json_atomic, write_text_atomic


class History(list):
    """The per-interval records of a run (a list of dicts), and a digest of the final weights."""

    def __init__(self, records, weights_sha256=None):
        super().__init__(records)
        self.weights_sha256 = weights_sha256


class _Monitor(keras.callbacks.Callback):
    """Forwards Keras events to the trainer: progress line, interval records, checkpoints."""

    def __init__(self, trainer):
        super().__init__()
        self.trainer = trainer

    def on_epoch_begin(self, epoch, logs=None):
        self.trainer._interval_index = epoch
        self.trainer._interval_started = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.trainer._on_batch_end(batch, logs or {})

    def on_epoch_end(self, epoch, logs=None):
        self.trainer._on_interval_end(epoch, logs or {})


class Trainer:
    """Trains one run directory. Use `train(...)`, which builds and calls this."""

    def __init__(self, run_dir, model, tokenizer, model_config, train_config, data_ids,
                 log=print, extra_callbacks=(), distributed=False):
        self.run_dir = Path(run_dir)
        self.distributed = distributed
        self.model = model
        self.tokenizer = tokenizer
        self.model_config = model_config
        self.config = train_config
        self.data_ids = data_ids
        self.log = log or (lambda *a, **k: None)
        self.extra_callbacks = list(extra_callbacks)
        self.history = []
        self.best_val_loss = math.inf
        self._interval_started = time.perf_counter()
        self.tokens_per_step = train_config.batch_size * model_config.seq_len

    # -- checkpoints ----------------------------------------------------------------------

    @property
    def checkpoint_dir(self):
        return self.run_dir / "checkpoint"

    def _save_checkpoint(self, completed_intervals):
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

    def restore_checkpoint(self):
        """Load the resume state if there is one; returns the number of completed intervals."""
        progress_file = self.checkpoint_dir / "progress.json"
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

    # -- callbacks ------------------------------------------------------------------------

    def _on_batch_end(self, batch, logs):
        if not sys.stdout.isatty() or self.log is not print:
            return
        step = self._interval_index * self.config.steps_per_interval + batch + 1
        elapsed = time.perf_counter() - self._interval_started
        rate = (batch + 1) * self.tokens_per_step / max(elapsed, 1e-9)
        print(f"\rstep {step}/{self.total_steps}  loss {logs.get('loss', float('nan')):.4f}  "
              f"{rate:,.0f} tokens/s", end="", flush=True)

    def _on_interval_end(self, epoch, logs):
        elapsed = time.perf_counter() - self._interval_started
        step = (epoch + 1) * self.config.steps_per_interval
        loss, val_loss = logs.get("loss"), logs.get("val_loss")
        if loss is None or not math.isfinite(loss):
            return  # TerminateOnNaN stops the run; train() reports it
        record = {
            "step": step,
            "tokens": step * self.tokens_per_step,
            "loss": float(loss),
            "val_loss": float(val_loss) if val_loss is not None else None,
            "learning_rate": float(self.model.optimizer.learning_rate),
            "tokens_per_s": self.config.steps_per_interval * self.tokens_per_step / elapsed,
            "interval_seconds": elapsed,
        }
        self.history.append(record)
        if record["val_loss"] is not None and record["val_loss"] < self.best_val_loss:
            self.best_val_loss = record["val_loss"]
            self.save_best()
        self._save_checkpoint(epoch + 1)
        self._write_history()
        val = f"  val {record['val_loss']:.4f}" if record["val_loss"] is not None else ""
        if sys.stdout.isatty() and self.log is print:
            print("\r", end="")
        self.log(f"step {step:>6}/{self.total_steps}  loss {record['loss']:.4f}{val}  "
                 f"{record['tokens_per_s']:,.0f} tokens/s")
        if self.config.sample_tokens and not self.distributed:
            # (Under a strategy the weights live on several devices; sample after training
            # with `tfl generate` instead.)
            self.log("  sample: " + repr(self.sample()))

    def save_best(self):
        self.model.save(self.run_dir / ".best.keras.tmp.keras")
        (self.run_dir / ".best.keras.tmp.keras").replace(self.run_dir / "best.keras")

    def sample(self):
        """A greedy continuation of the sample prompt (the decoder is compiled once per run)."""
        from tfl.inference.decoders import make_decoder
        from tfl.inference.generate import decode_loop, make_sampler

        if getattr(self, "_decoder", None) is None:
            self._decoder = make_decoder(self.model, self.model_config)
        prompt = self.tokenizer.encode(self.config.sample_prompt)
        new = decode_loop(self._decoder, prompt, self.config.sample_tokens, make_sampler("greedy"),
                          self.model_config.seq_len)
        return self.tokenizer.decode(new)

    def _write_history(self):
        write_json_atomic(self.run_dir / "history.json", self.history)
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(self.history[0]))
        writer.writeheader()
        writer.writerows(self.history)
        write_text_atomic(self.run_dir / "history.csv", out.getvalue())

    # -- the loop ---------------------------------------------------------------------------

    @property
    def total_steps(self):
        return self.config.num_intervals * self.config.steps_per_interval

    def fit(self):
        from tfl.data.pipeline import make_dataset

        cfg, seq_len = self.config, self.model_config.seq_len
        start_interval = self.restore_checkpoint()
        self._interval_index = start_interval
        if start_interval >= cfg.num_intervals:
            self.log(f"{self.run_dir} is already trained ({self.total_steps} steps)")
            return History(self.history, weights_sha256=weights_digest(self.model))
        if start_interval:
            self.log(f"resuming {self.run_dir} at step {start_interval * cfg.steps_per_interval}")
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
            # Shard by element: every replica gets its slice of each global batch. (The default
            # AUTO policy looks for input files first and warns when there are none.)
            import tensorflow as tf

            options = tf.data.Options()
            options.experimental_distribute.auto_shard_policy = (
                tf.data.experimental.AutoShardPolicy.DATA)
            train_ds, val_ds = train_ds.with_options(options), val_ds.with_options(options)

        callbacks = [
            keras.callbacks.TerminateOnNaN(),
            keras.callbacks.TensorBoard(str(self.run_dir / "logs"), write_graph=False),
            _Monitor(self),
            *self.extra_callbacks,
        ]
        # Keras warns that fit's shuffle flag is ignored for datasets; ours shuffles itself.
        warnings.filterwarnings("ignore", message=".*shuffle=True.*was passed")
        try:
            self.model.fit(
                train_ds,
                steps_per_epoch=cfg.steps_per_interval,
                epochs=cfg.num_intervals,
                initial_epoch=start_interval,
                validation_data=val_ds,
                callbacks=callbacks,
                verbose=0,
            )
        except KeyboardInterrupt:
            done = len(self.history) * cfg.steps_per_interval
            self.model.save(self.run_dir / "model.keras")
            self.log(f"\ninterrupted: the checkpoint at step {done} is kept; run the same "
                     "command again to resume")
            raise
        if not self.history or len(self.history) < cfg.num_intervals:
            step = len(self.history) * cfg.steps_per_interval
            raise TflError(
                f"the loss became NaN after step {step}; lower --learning-rate "
                "or keep gradient clipping on"
            )
        self.model.save(self.run_dir / "model.keras")
        plot_history(self.history, self.run_dir / "loss.png", title=self.run_dir.name)
        return History(self.history, weights_sha256=weights_digest(self.model))


def plot_history(history, path, title=""):
    """Training and validation loss against steps, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in history]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(steps, [r["loss"] for r in history], marker="o", label="train (interval mean)")
    if history and history[0]["val_loss"] is not None:
        ax.plot(steps, [r["val_loss"] for r in history], marker="o", label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats / token)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def weights_digest(model):
    """sha256 of all weights' bytes: equal digests mean bit-identical weights."""
    import hashlib

    digest = hashlib.sha256()
    for w in model.get_weights():
        digest.update(np.ascontiguousarray(w).tobytes())
    return digest.hexdigest()
