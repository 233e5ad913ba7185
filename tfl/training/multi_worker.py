"""Training on several worker processes (or hosts) with `MultiWorkerMirroredStrategy`.

Every worker runs the same `tfl train --multi-worker ...` command with its own `TF_CONFIG`
(the cluster's addresses and this worker's index). TensorFlow's collective all-reduce keeps the
replicas identical; tfl adds no communication of its own.

Keras 3's `fit` does not run under this strategy (keras-team/keras#20585), so these runs use a
short custom loop over `strategy.run` with the same model, optimizer, loss, data order and run
directory as `fit`. The chief (worker 0) writes the run directory; the other workers only read
its checkpoint when resuming, so `--out` must be a path every worker sees (a shared filesystem
across hosts).

Before TensorFlow starts the cluster, each worker waits until every other worker answers on
its port (`wait_for_cluster`: at most `--cluster-timeout` seconds, saying whom it waits for,
stoppable with Ctrl-C). The same time-out bounds an all-reduce waiting for a worker that hangs;
TensorFlow's heartbeats notice one that dies. Either way the run stops with a one-line
`TflError`, its last checkpoint kept, and the same commands on every worker resume it.

To try it on one machine, open one terminal per worker:

    tfl tf-config --workers 2                  # prints one TF_CONFIG per worker
    TF_CONFIG='...' tfl train --multi-worker --preset nano --data python_docs --out runs/mw

>>> configs = local_tf_configs(2)
>>> [json.loads(c)["task"] for c in configs]
[{'type': 'worker', 'index': 0}, {'type': 'worker', 'index': 1}]
"""

import json
import os
import signal
import socket
import sys
import threading
import time

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


DEFAULT_CLUSTER_TIMEOUT = 300  # seconds a worker waits for the others (--cluster-timeout)
ANNOUNCE_AFTER_SECONDS = 2


def cluster_tasks(config):
    """`{(job, index): (host, port)}` of the chief and workers of a checked `TF_CONFIG`.

    >>> cluster_tasks(json.loads(local_tf_configs(2, ports=[4000, 4001])[0]))
    {('worker', 0): ('127.0.0.1', 4000), ('worker', 1): ('127.0.0.1', 4001)}
    """
    tasks = {}
    for job in ("chief", "worker"):
        for index, address in enumerate(config["cluster"].get(job, [])):
            host, _, port = str(address).rpartition(":")
            if not host or not port.isdigit():
                raise TflError(f"TF_CONFIG's address {address!r} is not HOST:PORT; print one "
                               "per worker with `tfl tf-config --workers N`")
            tasks[(job, index)] = (host.strip("[]"), int(port))
    return tasks


def _listening(host, port):
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def wait_for_cluster(config, timeout_seconds=DEFAULT_CLUSTER_TIMEOUT, log=None):
    """Return once every other task of the cluster in `config` (a checked `TF_CONFIG`) accepts
    connections; raise `TflError` after `timeout_seconds` naming those that do not.

    TensorFlow's cluster start-up waits for missing workers without limit, and holds the
    interpreter while it waits (Ctrl-C cannot reach Python), so tfl waits here first, in plain
    Python. Every worker waits like this before it starts TensorFlow's server, so meanwhile it
    listens on its own port itself, so that the others see it. `log` (default: stderr) gets one
    line naming the tasks waited for, once the wait has lasted `ANNOUNCE_AFTER_SECONDS`.
    """
    tasks = cluster_tasks(config)
    me = (config["task"]["type"], int(config["task"]["index"]))
    _, port = tasks[me]
    try:
        stand_in = socket.create_server(("", port))
    except OSError as error:
        raise TflError(f"cannot listen on port {port} of this worker ({me[0]} {me[1]} in "
                       f"TF_CONFIG: {error.strerror}); give it a free port (`tfl tf-config`)"
                       ) from None
    stand_in.setblocking(False)
    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    waiting = {task: address for task, address in tasks.items() if task != me}
    started = time.monotonic()
    announced = False
    try:
        while True:
            # A task seen once counts as started: its stand-in closes before its own server
            # opens, and a probe in between must not undo that.
            waiting = {t: a for t, a in waiting.items() if not _listening(*a)}
            if not waiting:
                return
            names = ", ".join(f"{job} {index} ({h}:{p})" for (job, index), (h, p)
                              in sorted(waiting.items()))
            waited = time.monotonic() - started
            if waited >= timeout_seconds:
                raise TflError(f"{names} of TF_CONFIG did not start within {timeout_seconds:g} s;"
                               " start `tfl train --multi-worker` with its own TF_CONFIG on "
                               "every worker, or raise --cluster-timeout")
            if not announced and waited >= ANNOUNCE_AFTER_SECONDS:
                # (Workers started together find each other within a second: no line then.)
                log(f"waiting for {names} of TF_CONFIG to start (at most {timeout_seconds:g} s,"
                    " --cluster-timeout)")
                announced = True
            _close_probes(stand_in)
            time.sleep(0.25)
    finally:
        stand_in.close()


def _close_probes(server):
    # Connections to the stand-in are other workers' probes or TensorFlow connecting early;
    # closing them at once makes TensorFlow retry until the real server listens.
    while True:
        try:
            connection, _ = server.accept()
        except OSError:
            return
        connection.close()


def make_strategy(timeout_seconds=DEFAULT_CLUSTER_TIMEOUT, log=None):
    """A `MultiWorkerMirroredStrategy` from `TF_CONFIG`. Must run before any other TensorFlow
    op.

    Waits at most `timeout_seconds` for the other workers to start (`wait_for_cluster`, which
    says what it waits for in `log`); afterwards a collective that waits longer than that for a
    worker (one that hangs) fails the run, and a worker that dies is noticed by TensorFlow's
    heartbeats within seconds.
    """
    config = read_tf_config()
    wait_for_cluster(config, timeout_seconds, log)
    import tensorflow as tf

    options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=timeout_seconds)
    on_sigterm = signal.getsignal(signal.SIGTERM)
    try:
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    except (RuntimeError, ValueError, tf.errors.OpError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise TflError(f"cannot start the worker cluster from TF_CONFIG ({reason}); start "
                       "--multi-worker runs in a fresh process") from None
    finally:
        # TensorFlow's cluster start-up installs a SIGTERM handler that only takes note (for
        # preemption checkpoints, which tfl does not use), so `kill` no longer stops the
        # worker. Put back what Python had: SIGTERM ends the process, the checkpoint stays.
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, on_sigterm)


def is_chief(strategy):
    resolver = strategy.cluster_resolver
    return resolver.task_type == "chief" or (
        resolver.task_type == "worker" and resolver.task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict())


def run_custom_loop(trainer, strategy):
    """Train `trainer` (a `tfl.training.trainer.Trainer` whose model was built under
    `strategy`) with a custom loop over `strategy.run`; returns its History.

    The same steps, batches and run directory as the `model.fit` runner: the Trainer restores,
    checkpoints, records and finishes; this loop only runs the steps and the evaluation. When
    another worker dies or hangs, the run stops with a `TflError` (the last checkpoint stays).
    """
    import tensorflow as tf

    start_interval = trainer.begin()
    try:
        _train_intervals(trainer, strategy, start_interval)
    except KeyboardInterrupt:
        trainer.interrupted()
        raise
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
            tf.errors.AbortedError, tf.errors.CancelledError) as error:
        trainer.end_progress()
        what = ("did not answer in time" if isinstance(error, tf.errors.DeadlineExceededError)
                else "stopped")
        raise TflError(f"another worker of the cluster {what} (it crashed, was killed, or hung "
                       f"for --cluster-timeout seconds); the checkpoint at step "
                       f"{trainer.completed_steps} is kept: start every worker again with the "
                       "same command to resume") from None
    return trainer.finish()


def _train_intervals(trainer, strategy, start_interval):
    import keras
    import numpy as np
    import tensorflow as tf

    model, optimizer = trainer.model, trainer.model.optimizer
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
        return

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
