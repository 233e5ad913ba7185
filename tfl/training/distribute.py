"""Choosing a `tf.distribute` strategy: one device or several.

tfl uses TensorFlow's own engine and adds no distribution code of its own: with
`MirroredStrategy` one process holds a model replica per device, each global batch is split
across the replicas, and gradients are all-reduced every step, so the replicas stay identical.
Several processes or hosts (`MultiWorkerMirroredStrategy`) are in `tfl.training.multi_worker`;
`choose_strategy` picks one of the three for a run, once, before anything else runs.

With no GPU, one CPU can be split into N *logical* devices (before TensorFlow starts), which
is how tfl's multi-device code is taught and tested on a laptop. It shows the mechanics and the
overhead, not a speed-up: the logical devices share the same cores.

Learning rate and batch size: tfl's `--batch-size` is the *global* batch (summed over
replicas). Keep it and the learning rate as they are to reproduce a one-device run exactly; to
use more devices for throughput, grow the global batch with the number of replicas and scale
the learning rate with it (linearly, with warm-up, is the usual starting point).

>>> get_strategy(1).num_replicas_in_sync
1
>>> choose_strategy(devices=None).num_replicas_in_sync
1
"""

from tfl.errors import TflError


def split_cpu(num_devices):
    """Make the CPU appear as `num_devices` logical devices. Must run before TensorFlow runs
    any op (in a notebook: first thing after a kernel restart)."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    configs = [tf.config.LogicalDeviceConfiguration() for _ in range(num_devices)]
    try:
        tf.config.set_logical_device_configuration(cpu, configs)
    except RuntimeError:
        current = len(tf.config.list_logical_devices("CPU"))
        if current != num_devices:
            raise TflError(
                f"TensorFlow has already started with {current} CPU device(s), so it cannot be "
                f"split into {num_devices}; choose --devices before anything else runs (in a "
                "notebook, restart the kernel and call tfl.training.distribute.split_cpu first)"
            ) from None
    return [d.name for d in tf.config.list_logical_devices("CPU")]


def get_strategy(devices="auto"):
    """The strategy for `devices` ("auto", or a number).

    - "auto": all visible GPUs (mirrored) if there are any, else the default one-device strategy.
    - N: N GPUs if there are that many; otherwise the CPU split into N logical devices
      (for teaching and tests).
    """
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if devices == "auto":
        return tf.distribute.MirroredStrategy() if gpus else tf.distribute.get_strategy()
    try:
        devices = int(devices)
    except (TypeError, ValueError):
        raise TflError(f"--devices takes a number or 'auto', not {devices!r}") from None
    if devices < 1:
        raise TflError(f"--devices must be at least 1, got {devices}")
    if devices == 1 and not gpus:
        return tf.distribute.get_strategy()
    if len(gpus) >= devices:
        return tf.distribute.MirroredStrategy([f"/gpu:{i}" for i in range(devices)])
    names = split_cpu(devices)
    return tf.distribute.MirroredStrategy(names[:devices])


def choose_strategy(devices=None, multi_worker=False, cluster_timeout=None, log=None):
    """The strategy a run trains under: one worker of the `TF_CONFIG` cluster (`multi_worker`),
    mirrored over `devices` (see `get_strategy`), or TensorFlow's default one-device strategy.

    A worker waits at most `cluster_timeout` seconds for the others (default
    `tfl.training.multi_worker.DEFAULT_CLUSTER_TIMEOUT`), and says in `log` what it waits for
    (see `tfl.training.multi_worker.make_strategy`).

    Call it before TensorFlow runs any other op: the cluster and the logical CPU devices can
    only be set up in a fresh TensorFlow.
    """
    if multi_worker:
        if devices:
            raise TflError("--multi-worker and --devices do not combine; each worker uses "
                           "its default device")
        from tfl.training.multi_worker import DEFAULT_CLUSTER_TIMEOUT, make_strategy

        return make_strategy(cluster_timeout or DEFAULT_CLUSTER_TIMEOUT, log=log)
    if devices:
        return get_strategy(devices)
    import tensorflow as tf

    return tf.distribute.get_strategy()
