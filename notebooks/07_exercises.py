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
# # 07 · Exercises
#
# Ten short exercises. Replace each `raise NotImplementedError` with your answer and run the
# check cell below it: it says `correct`, or which case is wrong and what was expected.
# Use numpy only. (Teachers: solutions are in `notebooks/solutions/exercise_solutions.py`.)

# %%
import math

import numpy as np

from tfl.exercises import CHECKS, report

# %% [markdown]
# ## 1. Perplexity from losses
# Given per-token losses in nats (negative log-probabilities), return the perplexity.

# %%
def perplexity(losses):
    raise NotImplementedError


report(CHECKS["perplexity"], perplexity)

# %% [markdown]
# ## 2. Bits per character
# A model's mean loss is `mean_loss` nats per token over `tokens` tokens that cover `characters`
# characters of text. How many bits per character is that?

# %%
def bits_per_character(mean_loss, tokens, characters):
    raise NotImplementedError


report(CHECKS["bits_per_character"], bits_per_character)

# %% [markdown]
# ## 3. A causal mask
# Return an `(n, n)` boolean array that is True where query position i may attend to key
# position j (a decoder must never look at the future).

# %%
def causal_mask(n):
    raise NotImplementedError


report(CHECKS["causal_mask"], causal_mask)

# %% [markdown]
# ## 4. Scaled dot-product attention
# One head: `softmax(q k^T / sqrt(d) masked) v`, with masked-out scores set to minus infinity.

# %%
def attention(q, k, v, mask):
    raise NotImplementedError


report(CHECKS["attention"], attention)

# %% [markdown]
# ## 5. Top-k filtering
# Keep the `k` largest logits and set all the others to minus infinity.

# %%
def top_k_filter(logits, k):
    raise NotImplementedError


report(CHECKS["top_k_filter"], top_k_filter)

# %% [markdown]
# ## 6. Softmax with a temperature
# Divide the logits by the temperature, then softmax. Make it safe for large logits.

# %%
def softmax(logits, temperature):
    raise NotImplementedError


report(CHECKS["softmax"], softmax)

# %% [markdown]
# ## 7. Parameters of a Transformer block
# A pre-LayerNorm block of width `d` with an MLP of width `ffn`: query, key, value and output
# projections (with biases), two MLP layers (with biases), two LayerNorms (scale and shift).

# %%
def block_parameters(d, ffn):
    raise NotImplementedError


report(CHECKS["block_parameters"], block_parameters)

# %% [markdown]
# ## 8. Parameters of an LSTM layer
# Four gates, each with an input kernel, a recurrent kernel and a bias.

# %%
def lstm_parameters(input_dim, units):
    raise NotImplementedError


report(CHECKS["lstm_parameters"], lstm_parameters)

# %% [markdown]
# ## 9. An add-k bigram probability
# From `text`, estimate P(`char` | `previous`) with add-k smoothing over a vocabulary of
# `vocab_size` characters. Count only pairs of neighbouring characters.

# %%
def bigram_probability(text, previous, char, k, vocab_size):
    raise NotImplementedError


report(CHECKS["bigram_probability"], bigram_probability)

# %% [markdown]
# ## 10. Windows for next-token prediction
# Cut `ids` into non-overlapping windows of `seq_len + 1` tokens; return (inputs, targets)
# arrays of shape (windows, seq_len), targets shifted by one.

# %%
def make_windows(ids, seq_len):
    raise NotImplementedError


report(CHECKS["make_windows"], make_windows)
