"""The tf.data input pipeline for next-token prediction.

A split's token ids are cut into windows of `seq_len + 1` tokens, `stride` tokens apart. Each
window gives one example: inputs are its first `seq_len` tokens, targets the last `seq_len`,
so position t learns to predict token t + 1.

    ids      [ 5  9  2  7  3  8  4 ... ]
    window   [ 5  9  2  7  3 ]                 seq_len = 4, stride = 4
    inputs   [ 5  9  2  7 ]
    targets     [ 9  2  7  3 ]
    next window          [ 3  8  4 ... ]

Batches are built with the *global* batch size and `drop_remainder=True`, so every batch has the
same static shape and the same dataset distributes unchanged under a `tf.distribute` strategy
(which splits each global batch across replicas).

The pipeline runs with tf.data's autotuning switched off and fixed parallelism instead: with
autotuning on, `model.fit` on a 2-core machine often locked into markedly slower steps (see
`docs/performance.md`). Cutting windows out of an array in memory needs no tuning: the pipeline
alone delivers far more tokens a second than a model here consumes.

>>> import numpy as np
>>> ds = make_dataset(np.arange(100), seq_len=8, global_batch_size=4)
>>> inputs, targets = next(iter(ds))
>>> inputs.shape.as_list(), targets.shape.as_list()
([4, 8], [4, 8])
"""

import os

import numpy as np
import tensorflow as tf

from tfl.data.corpora import SPLITS
from tfl.errors import TflError

PARALLEL_CALLS = os.cpu_count() or 1  # window-cutting map calls in flight
PREFETCH_BATCHES = 2  # batches made ahead of the training step


def encode_splits(corpus, tokenizer, splits=SPLITS):
    """Token ids of each split of `corpus`, as int32 arrays. Unknown pieces become `<unk>`."""
    return {name: np.asarray(tokenizer.encode(corpus.split(name)), dtype=np.int32) for name in splits}


def num_windows(num_tokens, seq_len, stride=None):
    """How many windows of `seq_len + 1` tokens, `stride` apart, fit in `num_tokens` tokens."""
    stride = stride or seq_len
    if num_tokens < seq_len + 1:
        return 0
    return (num_tokens - (seq_len + 1)) // stride + 1


def make_dataset(
    token_ids,
    seq_len,
    global_batch_size,
    *,
    stride=None,
    shuffle=False,
    seed=0,
    repeat=False,
    cache=True,
    split_name="data",
):
    """A `tf.data.Dataset` of `(inputs, targets)` int32 batches of shape `[global_batch_size, seq_len]`.

    Args:
        token_ids: 1-D sequence of token ids (one split).
        seq_len: tokens per example seen by the model (the context length).
        global_batch_size: examples per batch, summed over all replicas.
        stride: tokens between the starts of consecutive windows (default `seq_len`, windows
            that do not overlap, so every token is predicted once per epoch).
        shuffle: shuffle windows: epoch e uses a permutation drawn from (seed, e), so each
            epoch of a repeated dataset has a new order and every run the same sequence.
        repeat: repeat forever (for step-based training).
        cache: keep the (unshuffled) windows in memory after the first pass; shuffled windows
            are gathered from the token ids, which are in memory already.
        split_name: used in error messages.
    """
    if seq_len < 1 or global_batch_size < 1:
        raise TflError("seq_len and batch size must be positive integers")
    stride = stride or seq_len
    ids = np.asarray(token_ids, dtype=np.int32)
    windows = num_windows(len(ids), seq_len, stride)
    if windows == 0:
        raise TflError(
            f"the {split_name} split has {len(ids)} tokens, fewer than one window of "
            f"seq_len + 1 = {seq_len + 1}; use a larger corpus or a shorter context (a smaller "
            "--preset for `tfl train`, --seq-len for `tfl data inspect`)"
        )
    if windows < global_batch_size:
        raise TflError(
            f"the {split_name} split makes {windows} windows of {seq_len + 1} tokens, fewer than "
            f"one batch of {global_batch_size}; use a smaller --batch-size or a larger corpus"
        )
    ids_tensor = tf.constant(ids)
    offsets = tf.range(seq_len + 1)

    def window_at(index):
        start = tf.cast(index, tf.int32) * stride
        return tf.gather(ids_tensor, start + offsets)  # (seq_len + 1,)

    if shuffle:
        # Epoch e visits the windows in a permutation drawn from (seed, e) by a *stateless*
        # shuffle: the order is a pure function of the seed and the epoch, identical in any
        # process and under any tf.distribute strategy (whose dataset rewriting can change the
        # seeds of stateful random ops), and a resumed run can skip to the same batch.
        def epoch_order(epoch):
            order = tf.random.experimental.stateless_shuffle(
                tf.range(windows, dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), epoch]))
            return tf.data.Dataset.from_tensor_slices(order)

        epochs = tf.data.Dataset.range(2**62 if repeat else 1)
        ds = epochs.flat_map(epoch_order).map(window_at, num_parallel_calls=PARALLEL_CALLS)
    else:
        ds = tf.data.Dataset.range(windows).map(window_at, num_parallel_calls=PARALLEL_CALLS)
        if cache:
            ds = ds.cache()
        if repeat:
            ds = ds.repeat()
    ds = ds.batch(global_batch_size, drop_remainder=True)
    ds = ds.map(split_inputs_targets, num_parallel_calls=PARALLEL_CALLS)
    options = tf.data.Options()
    options.autotune.enabled = False  # see the module docstring: fixed settings train faster here
    return ds.prefetch(PREFETCH_BATCHES).with_options(options)


def split_inputs_targets(windows):
    """(batch, seq_len + 1) windows -> (inputs, targets), each (batch, seq_len)."""
    return windows[:, :-1], windows[:, 1:]
