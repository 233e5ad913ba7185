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
# # 03 · A GPT-style Transformer
#
# Attention lets every position look at every earlier one at once:
# $\mathrm{softmax}\!\left(QK^\top/\sqrt{d}\ \text{masked}\right)V$. A *causal* mask hides the
# future, so position t predicts token t + 1 from tokens 1..t only. We compute attention by hand,
# check it against the trained model, draw its attention, and compare it with the LSTM.

# %%
import math
import os
import tempfile

import matplotlib.pyplot as plt
import numpy as np

import tfl
from tfl.inference.evaluate import evaluate_split
from tfl.models.attention import attention_weights, block_input
from tfl import TrainConfig

TINY = os.environ.get("TFL_NOTEBOOK_SIZE") == "tiny"
PRESET = "nano" if TINY else "micro"
STEPS = 40 if TINY else 1500
EVAL_CHARS = 5_000 if TINY else 50_000

# %% [markdown]
# ## The causal mask

# %%
n = 6
mask = np.tril(np.ones((n, n), dtype=bool))
print(mask.astype(int))

# %% [markdown]
# ## Train a small Transformer and an LSTM on the same budget

# %%
corpus = tfl.load_corpus_or_fallback("tiny_shakespeare", None, print)
runs = {}
for architecture in ("transformer", "lstm"):
    run_dir = os.path.join(tempfile.mkdtemp(), f"{architecture}-{PRESET}")
    tfl.train(architecture, PRESET, corpus.name, run_dir, log=None,
                    train_config=TrainConfig(steps=STEPS, eval_interval=max(STEPS // 5, 1),
                                             batch_size=32, sample_tokens=0))
    runs[architecture] = tfl.load_run(run_dir)
for name, run in runs.items():
    r = evaluate_split(run.model, run.tokenizer, corpus.validation, run.model_config.seq_len,
                       max_chars=EVAL_CHARS)
    print(f"{name:12s} {run.model.count_params():9,} parameters  perplexity {r['perplexity']:.2f}")

# %% [markdown]
# ## Attention by hand, checked against the layer
# Take the first block's query and key projections, form the scores, mask, softmax: the
# probabilities must reproduce the layer's output when applied to its values.

# %%
run = runs["transformer"]
config = run.model_config
text = "ROMEO:\nBut soft"
ids = run.tokenizer.encode(text)
layer = run.model.get_layer("block_0")
h = layer._self_attention_layer_norm(block_input(run.model, config, ids)).numpy()[0]  # (T, d)
attention = layer._self_attention_layer
q = attention._query_dense(h[None]).numpy()[0]  # (T, heads, head_dim)
k = attention._key_dense(h[None]).numpy()[0]
scores = np.einsum("thd,shd->hts", q, k) / math.sqrt(config.head_dim)
scores = np.where(np.tril(np.ones((len(ids), len(ids)), bool)), scores, -np.inf)
weights = np.exp(scores - scores.max(-1, keepdims=True))
weights /= weights.sum(-1, keepdims=True)
np.testing.assert_allclose(weights, attention_weights(run.model, config, ids), atol=1e-5)
print("attention computed by hand matches tfl.models.attention.attention_weights")

# %% [markdown]
# ## What the heads look at

# %%
labels = [repr(c)[1:-1] for c in text]
fig, axes = plt.subplots(1, config.num_heads, figsize=(4 * config.num_heads, 4))
for head, ax in enumerate(np.atleast_1d(axes)):
    ax.imshow(weights[head], cmap="viridis")
    ax.set_xticks(range(len(labels)), labels, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_title(f"block 0, head {head}")
plt.tight_layout()
plt.show()

# %%
print(tfl.generate(run, "ROMEO:\n", 200, sampler="top_k", top_k=5, temperature=0.8, seed=0))
