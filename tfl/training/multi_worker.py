"""Training on several worker processes (or hosts) with `MultiWorkerMirroredStrategy`.

Every worker runs the same `tfl train --multi-worker ...` command with its own `TF_CONFIG`
(the cluster's addresses and this worker's index). TensorFlow's collective all-reduce keeps the
replicas identical; tfl adds no communication of its own.

Keras 3's `fit` does not run under this strategy (keras-team/keras#20585), so these runs use a
short custom loop over `strategy.run` with the same model, optimizer, loss, data order and run
directory as `fit`. The chief (worker 0) writes the run directory; the other workers only read
its checkpoint when resuming, so `--out` must be a path every worker sees (a shared filesystem
across hosts).

To try it on one machine, open one terminal per worker:

    tfl tf-config --workers 2                  # prints one TF_CONFIG per worker
    TF_CONFIG='...' tfl train --multi-worker --preset nano --data python_docs --out runs/mw

>>> configs = local_tf_configs(2)
>>> [json.loads(c)["task"] for c in configs]
[{'type': 'worker', 'index': 0}, {'type': 'worker', 'index': 1}]
"""

import json
import os
import socket

from tfl.errors import TflError


def free_ports(count):
    """`count` TCP ports on 127.0.0.1 that are free right now."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def local_tf_configs(num_workers, ports=None):
    """One `TF_CONFIG` JSON string per worker of a cluster on 127.0.0.1."""
    ports = ports or free_ports(num_workers)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    return [json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})
            for i in range(num_workers)]


def read_tf_config():
    """This process's `TF_CONFIG`, checked; raises `TflError` naming what is wrong."""
    raw = os.environ.get("TF_CONFIG")
    hint = "print one per worker with `tfl tf-config --workers N`"
    if not raw:
        raise TflError(f"--multi-worker needs the TF_CONFIG environment variable; {hint}")
    try:
        config = json.loads(raw)
        workers = config["cluster"]["worker"]
        task = config["task"]
        index = int(task["index"])
    except (ValueError, KeyError, TypeError):
        raise TflError(f"TF_CONFIG is not a valid cluster description; {hint}") from None
    if task.get("type") not in ("worker", "chief") or not 0 <= index < len(
            config["cluster"].get(task.get("type"), [])):
        raise TflError(f"TF_CONFIG's task {task} is not in its cluster; {hint}")
    return config


def make_strategy(timeout_seconds=600):
    """A `MultiWorkerMirroredStrategy` from `TF_CONFIG`. Must run before any other TensorFlow
    op; a collective that waits longer than `timeout_seconds` (a dead worker) fails the run."""
    read_tf_config()
    import tensorflow as tf

    options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=timeout_seconds)
    try:
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    except (RuntimeError, ValueError) as error:
        raise TflError(f"cannot start the worker cluster from TF_CONFIG ({error}); start "
                       "--multi-worker runs in a fresh process") from None


def is_chief(strategy):
    resolver = strategy.cluster_resolver
    return resolver.task_type == "chief" or (
        resolver.task_type == "worker" and resolver.task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict())


def run_custom_loop(trainer, strategy):
    """Train `trainer` (a `tfl.training.trainer.Trainer` whose model was built under
    `strategy`) with a custom loop over `strategy.run`; returns its History.

    The same steps, batches and run directory as the `model.fit` runner: the Trainer restores,
    checkpoints, records and finishes; this loop only runs the steps and the evaluation.
    """
    import keras
    import numpy as np
    import tensorflow as tf

    model, optimizer = trainer.model, trainer.model.optimizer
    start_interval = trainer.begin()
    # Every worker must resume from the same point, or the replicas would differ. The
    # variance of the workers' start points is zero exactly when they agree; every worker
    # computes the same verdict, so they stop together.
    point = tf.constant([start_interval, start_interval ** 2], tf.float64)

    def this_workers_point():
        return point

    @tf.function
    def mean_point():
        return strategy.reduce("MEAN", strategy.run(this_workers_point), axis=None)

    mean, mean_square = mean_point().numpy()
    if mean_square != mean ** 2:
        raise TflError("the workers see different checkpoints in --out; put the run directory "
                       "on a filesystem every worker shares")
    if start_interval >= trainer.num_intervals:
        return trainer.finish()

    train_ds, val_ds = trainer.datasets(start_interval)
    train_iter = iter(strategy.experimental_distribute_dataset(train_ds))
    val_ds = strategy.experimental_distribute_dataset(val_ds)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)
    replicas = strategy.num_replicas_in_sync

    def replica_train_step(x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(loss_fn(y, model(x, training=True)))
            # The optimizer sums gradients over replicas: scale so the sum is the global mean,
            # as `fit` does.
            scaled = loss / replicas
        grads = tape.gradient(scaled, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    def replica_eval_step(x, y):
        return tf.reduce_mean(loss_fn(y, model(x, training=False)))

    @tf.function
    def train_step(iterator):
        losses = strategy.run(replica_train_step, args=next(iterator))
        return strategy.reduce("MEAN", losses, axis=None)

    @tf.function
    def eval_step(x, y):
        return strategy.reduce("MEAN", strategy.run(replica_eval_step, args=(x, y)), axis=None)

    for interval in range(start_interval, trainer.num_intervals):
        trainer.interval_begins(interval)
        losses = []
        for step in range(trainer.config.steps_per_interval):
            losses.append(float(train_step(train_iter)))
            trainer.step_done(step, float(np.mean(losses)))
        val_loss = float(np.mean([float(eval_step(x, y)) for x, y in val_ds]))
        trainer.interval_done(interval, float(np.mean(losses)), val_loss)
    return trainer.finish()
