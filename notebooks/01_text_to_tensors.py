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
# # 01 · From text to tensors
#
# A neural network reads numbers. This notebook turns text into token ids with four tokenizers,
# compares them, and cuts the ids into the `(inputs, targets)` windows a language model trains on.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np

import tfl

TINY = os.environ.get("TFL_NOTEBOOK_SIZE") == "tiny"
SEQ_LEN = 16 if TINY else 64
BATCH_SIZE = 4

# %%
corpus = tfl.load_corpus_or_fallback("tiny_shakespeare", None, print)
train_text = corpus.train[:100_000] if TINY else corpus.train

# %% [markdown]
# ## Four tokenizers
#
# Characters and bytes never meet an unknown symbol; words do; WordPiece splits rare words into
# known pieces. The price of small units is longer sequences (more tokens per character).

# %%
tokenizers = {
    "char": tfl.build_tokenizer("char", train_text),
    "byte": tfl.build_tokenizer("byte"),
    "word": tfl.build_tokenizer("word", train_text, vocab_size=5_000),
    "wordpiece": tfl.build_tokenizer("wordpiece", train_text, vocab_size=1_000),
}
validation = corpus.validation[:20_000]
for name, tok in tokenizers.items():
    stats = tfl.tokenizer_stats(tok, validation)
    print(f"{name:10s} vocabulary {tok.vocab_size:6,}  tokens/char {stats.tokens_per_char:.3f}  "
          f"unknown {100 * stats.unk_rate:.2f}%")

# %%
sample = "ROMEO:\nBut, soft! what light through yonder window breaks?"
for name, tok in tokenizers.items():
    ids = tok.encode(sample)
    print(f"{name:10s} {len(ids):3d} tokens: {[tok.id_to_token(i) for i in ids[:12]]}")
    print(f"{'':10s} decoded: {tok.decode(ids)!r}")

# %% [markdown]
# ## Windows for next-token prediction
#
# `tfl.make_dataset` cuts the ids into windows of `seq_len + 1` tokens; the first `seq_len` are
# the inputs and the last `seq_len` the targets, so position t learns to predict token t + 1.

# %%
tok = tokenizers["char"]
ids = tfl.encode_splits(corpus, tok, splits=("train",))["train"]
dataset = tfl.make_dataset(ids, seq_len=SEQ_LEN, global_batch_size=BATCH_SIZE, shuffle=True)
inputs, targets = next(iter(dataset))
print(inputs.shape, targets.shape)
print("inputs :", repr(tok.decode(inputs[0].numpy())))
print("targets:", repr(tok.decode(targets[0].numpy())))

# %% [markdown]
# The picture: each row is one example; the targets are the inputs shifted left by one.

# %%
fig, axes = plt.subplots(2, 1, figsize=(10, 3))
for ax, data, title in zip(axes, (inputs, targets), ("inputs", "targets")):
    ax.imshow(data.numpy(), aspect="auto", cmap="viridis")
    ax.set_title(title)
    ax.set_yticks(range(BATCH_SIZE))
axes[1].set_xlabel("position in the window")
plt.tight_layout()
plt.show()
np.testing.assert_array_equal(inputs.numpy()[:, 1:], targets.numpy()[:, :-1])
