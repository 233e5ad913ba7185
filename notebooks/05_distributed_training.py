# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 05 · Training on several devices
#
# `tf.distribute.MirroredStrategy` keeps one replica of the model per device. Every step, each
# global batch is split between the replicas, each computes gradients on its share, the
# gradients are summed across devices (an *all-reduce*), and every replica applies the same
# update, so they stay identical.
#
# Without GPUs we can still watch it work: TensorFlow can split one CPU into several *logical*
# devices. That must happen before TensorFlow runs anything, so it is the first cell.

# %%
import tfl.training.distribute

devices = tfl.training.distribute.split_cpu(2)
print(devices)

# %%
import json
import os
import tempfile

import numpy as np

import tfl
from tfl import TrainConfig

TINY = os.environ.get("TFL_NOTEBOOK_SIZE") == "tiny"
STEPS = 6 if TINY else 200

# %% [markdown]
# ## One device against two replicas, same seed, same global batch
# With the same global batch the two runs do the same arithmetic up to the order in which the
# all-reduce adds numbers. Two details make them agree exactly: XLA is off under the strategy
# (tfl does this), and gradient clipping is off (`clip_norm=0`), because Keras 3 clips each
# replica's gradient before the all-reduce rather than the summed one.

# %%
corpus = tfl.load_corpus_or_fallback("tiny_shakespeare", None, print)
root = tempfile.mkdtemp()
config = TrainConfig(steps=STEPS, eval_interval=max(STEPS // 3, 1), batch_size=16,
                     sample_tokens=0, jit_compile=False, clip_norm=0)
histories = {}
for n in (1, 2):
    histories[n] = tfl.train("transformer", "nano", corpus.name, f"{root}/devices-{n}",
                                   train_config=config, devices=n, log=None)
for n, h in histories.items():
    print(f"{n} device(s): losses {[round(r['loss'], 5) for r in h]}")

a = tfl.load_run(f"{root}/devices-1").model.get_weights()
b = tfl.load_run(f"{root}/devices-2").model.get_weights()
print("largest weight difference:", max(float(np.abs(x - y).max()) for x, y in zip(a, b)))

# %% [markdown]
# ## Batch size and learning rate
# `--batch-size` in tfl is the *global* batch. On N real devices you would usually grow it N
# times to keep each device as busy as before, and scale the learning rate with it (linearly,
# with a warm-up, is the common starting point). On logical CPU devices there is no speed to
# gain: they share the same cores, and the all-reduce adds work (`python bench/distribute.py`
# measures it).
#
# On a machine with GPUs the same call, `devices=N` (or `tfl train --devices N`), mirrors the
# model over N GPUs, and on one GPU it can be split into logical GPUs the same way. Training on
# several hosts (or several processes on one) uses `MultiWorkerMirroredStrategy`: print one
# `TF_CONFIG` per worker with `tfl tf-config --workers 2`, then run the same
# `tfl train --multi-worker ...` command in each worker's shell with its own `TF_CONFIG`. Every
# worker's replicas share the global batch; worker 0 writes the run directory.
