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
from tfl import TrainConfig, evaluate_split

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
# ## One block by hand, checked against the layer
# A pre-LayerNorm block computes, for the residual stream $x$ (one row of width $d$ per position):
#
# $$a = x + \mathrm{Attention}(\mathrm{LN}(x)), \qquad y = a + W_2\,\mathrm{GELU}(W_1\,\mathrm{LN}(a) + b_1) + b_2.$$
#
# Inside attention, each of the $H$ heads projects $\mathrm{LN}(x)$ to queries $Q$, keys $K$ and
# values $V$ of width $d_h = d / H$, and mixes the values with the weights
# $\mathrm{softmax}(QK^\top/\sqrt{d_h} + M)$, where the mask $M$ is $-\infty$ above the
# diagonal (a position never sees a later one). The output projection maps the $H$ heads back
# to width $d$. Below, every step is written in NumPy from the layer's weights (reached by role
# with `tfl.model_parts`), and the result is compared with what the Keras layer itself returns.

# %%
run = runs["transformer"]
config = run.model_config
text = "ROMEO:\nBut soft"
ids = run.tokenizer.encode(text)
parts = tfl.model_parts(run.model, config)
block = parts.block(0)
x = parts.embed(np.array([ids], np.int32)).numpy()[0]  # (T, d): the stream entering block 0


def layer_norm(x, norm):
    gamma, beta = norm.get_weights()
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + norm.epsilon) * gamma + beta


def project(h, dense):  # (T, d) -> (T, heads, d_h)
    kernel, bias = dense.get_weights()
    return np.einsum("td,dhk->thk", h, kernel) + bias


def gelu(z):  # the exact GELU, z * Phi(z)
    return 0.5 * z * (1 + np.vectorize(math.erf)(z / math.sqrt(2)))


h = layer_norm(x, block.attention_norm)
q, k, v = (project(h, dense) for dense in (block.query, block.key, block.value))
scores = np.einsum("thd,shd->hts", q, k) / math.sqrt(config.head_dim)  # (H, T, T)
scores = np.where(np.tril(np.ones((len(ids), len(ids)), bool)), scores, -np.inf)
weights = np.exp(scores - scores.max(-1, keepdims=True))
weights /= weights.sum(-1, keepdims=True)  # each row sums to 1
attended = np.einsum("hts,shd->thd", weights, v)  # (T, H, d_h)
out_kernel, out_bias = block.attention_output.get_weights()  # (H, d_h, d), (d,)
a = x + np.einsum("thd,hdm->tm", attended, out_kernel) + out_bias
w1, b1 = block.mlp_in.get_weights()
w2, b2 = block.mlp_out.get_weights()
y = a + gelu(layer_norm(a, block.mlp_norm) @ w1 + b1) @ w2 + b2

from_keras = parts.blocks[0](x[None]).numpy()[0]
np.testing.assert_allclose(y, from_keras, atol=1e-4)
print(f"block 0 by hand equals the Keras layer (largest difference {np.abs(y - from_keras).max():.1e})")

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
