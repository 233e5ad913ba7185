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
# # 02 · An Embedding-LSTM language model
#
# A recurrent network reads one token at a time and keeps a state:
# $h_t = f(W x_t + U h_{t-1} + b)$. An LSTM adds a cell state $c_t$ and three gates that decide
# what to forget, what to write and what to show:
#
# $i, f, o = \sigma(W_{i,f,o}\, x_t + U_{i,f,o}\, h_{t-1} + b_{i,f,o})$,
# $g = \tanh(W_g x_t + U_g h_{t-1} + b_g)$,
# $c_t = f \odot c_{t-1} + i \odot g$, $h_t = o \odot \tanh(c_t)$.
#
# We compute one step by hand, check it against Keras, then train `tfl.models.lstm_lm`.

# %%
import os
import tempfile

import keras
import numpy as np

import tfl
from tfl.inference.evaluate import evaluate_split
from tfl.models import LSTMConfig
from tfl.models.ngram import ngram_baseline
from tfl import TrainConfig

TINY = os.environ.get("TFL_NOTEBOOK_SIZE") == "tiny"
PRESET = "nano" if TINY else "micro"
STEPS = 40 if TINY else 1500
EVAL_CHARS = 5_000 if TINY else 50_000

# %% [markdown]
# ## One LSTM step by hand
# Keras stores the four gates side by side in the order input, forget, cell, output.

# %%
units, inputs_dim = 3, 2
cell = keras.layers.LSTMCell(units)
x = np.random.default_rng(0).normal(size=(1, inputs_dim)).astype("float32")
h0 = np.zeros((1, units), "float32")
c0 = np.zeros((1, units), "float32")
h1_keras, _ = cell(x, [h0, c0])

W, U, b = (w.numpy() for w in cell.weights)
z = x @ W + h0 @ U + b
i, f, g, o = np.split(z, 4, axis=-1)
sigmoid = lambda v: 1 / (1 + np.exp(-v))
c1 = sigmoid(f) * c0 + sigmoid(i) * np.tanh(g)
h1 = sigmoid(o) * np.tanh(c1)
print("by hand:", h1, "\nkeras:  ", h1_keras.numpy())
np.testing.assert_allclose(h1, h1_keras.numpy(), atol=1e-6)

# %% [markdown]
# ## Train the language model

# %%
corpus = tfl.load_corpus_or_fallback("tiny_shakespeare", None, print)
run_dir = os.path.join(tempfile.mkdtemp(), f"lstm-{PRESET}")
history = tfl.train("lstm", PRESET, corpus.name, run_dir, log=None,
                          train_config=TrainConfig(steps=STEPS, eval_interval=max(STEPS // 5, 1),
                                                   batch_size=32, sample_tokens=0))
run = tfl.load_run(run_dir)
print(LSTMConfig.from_preset(PRESET, vocab_size=run.tokenizer.vocab_size))
print(f"{run.model.count_params():,} parameters")

# %%
import matplotlib.pyplot as plt

plt.plot([r["step"] for r in history], [r["loss"] for r in history], marker="o", label="train")
plt.plot([r["step"] for r in history], [r["val_loss"] for r in history], marker="o",
         label="validation")
plt.xlabel("step")
plt.ylabel("loss (nats / character)")
plt.legend()
plt.show()

# %% [markdown]
# ## Against the n-gram baseline

# %%
lstm = evaluate_split(run.model, run.tokenizer, corpus.validation, run.model_config.seq_len,
                      max_chars=EVAL_CHARS)
for order in (3, 5):
    baseline = ngram_baseline(corpus, run.tokenizer, order=order, max_chars=EVAL_CHARS)
    print(f"{order}-gram Kneser-Ney perplexity {baseline['perplexity']:.2f}")
print(f"LSTM ({STEPS} steps)        perplexity {lstm['perplexity']:.2f}")

# %% [markdown]
# ## Generated text
# The LSTM carries its state from token to token, so generation never re-reads the past.

# %%
print(tfl.generate(run, "ROMEO:\n", 200, sampler="top_k", top_k=5, temperature=0.8, seed=0))
