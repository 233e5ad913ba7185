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
# # 00 · A language model is a probability distribution
#
# A language model assigns a probability to every text. By the chain rule,
#
# $$P(w_1, \dots, w_T) = \prod_{t=1}^{T} P(w_t \mid w_1, \dots, w_{t-1}),$$
#
# so it is enough to predict the *next* token from the ones before it. We measure a model by the
# average negative log-probability it gives to held-out text (the cross-entropy, in nats per token)
# and by its exponential, the **perplexity**: the number of equally likely choices the model is,
# on average, hesitating between.
#
# The oldest language models simply count. An **n-gram model** looks only at the previous n - 1
# tokens. This notebook builds them with `tfl.models.ngram` on Tiny Shakespeare, character by character.

# %%
import math
import os

import matplotlib.pyplot as plt

import tfl
from tfl.models.ngram import NGramLM, ngram_baseline

# TFL_NOTEBOOK_SIZE=tiny runs every notebook on small settings (CI does this).
TINY = os.environ.get("TFL_NOTEBOOK_SIZE") == "tiny"
EVAL_CHARS = 5_000 if TINY else None
ORDERS = [1, 2, 3] if TINY else [1, 2, 3, 4, 5, 6, 7]

# %% [markdown]
# ## The corpus and its characters

# %%
corpus = tfl.load_corpus_or_fallback("tiny_shakespeare", None, print)
tokenizer = tfl.build_tokenizer("char", corpus.train)
print(corpus.split_sizes(), "vocabulary:", tokenizer.vocab_size)
print(corpus.train[:200])

# %% [markdown]
# ## Counting: a bigram model by hand
#
# With add-k smoothing, $P(w \mid h) = \dfrac{c(h, w) + k}{c(h) + kV}$. Below, the most likely
# characters after the letter `q`: counting already knows English spelling.

# %%
train_ids = tokenizer.encode(corpus.train)
bigram = NGramLM(order=2, vocab_size=tokenizer.vocab_size, smoothing="add_k", k=0.1).fit(train_ids)
q = tokenizer.encode("q")[0]
after_q = sorted(range(3, tokenizer.vocab_size), key=lambda w: -bigram.prob((q,), w))[:5]
for w in after_q:
    print(repr(tokenizer.id_to_token(w)), round(bigram.prob((q,), w), 4))

# %% [markdown]
# Probabilities after any context sum to one, which is what makes this a distribution:

# %%
print(sum(bigram.prob((q,), w) for w in range(tokenizer.vocab_size)))

# %% [markdown]
# ## Perplexity against the order n
#
# Longer contexts predict better, until the counts become too sparse to trust. Kneser-Ney
# smoothing backs off to lower orders in a principled way, using *continuation* counts.

# %%
results = {order: ngram_baseline(corpus, tokenizer, order=order, max_chars=EVAL_CHARS)
           for order in ORDERS}
for order, r in results.items():
    print(f"{order}-gram: loss {r['loss']:.3f} nats/char, perplexity {r['perplexity']:.2f}, "
          f"{r['bits_per_char']:.3f} bits/char")

# %%
plt.plot(list(results), [r["perplexity"] for r in results.values()], marker="o")
plt.xlabel("n (tokens of context + 1)")
plt.ylabel("validation perplexity")
plt.title("Kneser-Ney n-gram models on Tiny Shakespeare")
plt.grid(alpha=0.3)
plt.show()

# %% [markdown]
# ## What perplexity means
#
# A uniform guess over the vocabulary has perplexity equal to the vocabulary size:

# %%
print("uniform:", tokenizer.vocab_size, "= exp(log V) =", math.exp(math.log(tokenizer.vocab_size)))

# %% [markdown]
# The neural models of the next notebooks are measured the same way (`tfl eval` prints the same
# three numbers), so every one of them is compared against these counts.
