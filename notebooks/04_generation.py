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
# # 04 · Generating text
#
# A language model gives a distribution over the next token; a *sampler* turns it into a choice.
# This notebook trains a small Transformer, compares greedy, temperature, top-k, top-p and beam
# search on the same prompt, draws the next-token distribution, and times cached decoding.

# %%
import os
import tempfile
import time

import matplotlib.pyplot as plt
import numpy as np

import tfl
from tfl.inference.decoders import make_decoder
from tfl.inference.generate import generate_ids
from tfl.inference.sampling import without_special_tokens
from tfl import TrainConfig

TINY = os.environ.get("TFL_NOTEBOOK_SIZE") == "tiny"
PRESET = "nano" if TINY else "micro"
STEPS = 40 if TINY else 1500
RUN_DIR = os.path.join(tempfile.mkdtemp(), f"transformer-{PRESET}")
PROMPT = "ROMEO:\n"
SAMPLE_TOKENS = 20 if TINY else 50  # beam search must fit in one context window

# %%
corpus = tfl.load_corpus_or_fallback("tiny_shakespeare", None, print)
history = tfl.train("transformer", PRESET, corpus.name, RUN_DIR, log=None,
                          train_config=TrainConfig(steps=STEPS, eval_interval=STEPS // 2,
                                                   batch_size=32, sample_tokens=0))
print(f"validation loss after {STEPS} steps: {history[-1]['val_loss']:.3f}")
run = tfl.load_run(RUN_DIR)

# %% [markdown]
# ## Five samplers, one prompt

# %%
settings = {
    "greedy": {},
    "temperature": {"temperature": 0.8},
    "top_k": {"top_k": 5},
    "top_p": {"top_p": 0.9},
    "beam": {"num_beams": 4},
}
for name, options in settings.items():
    text = tfl.generate(run, PROMPT, SAMPLE_TOKENS, sampler=name, seed=0, **options)
    print(f"--- {name} {options}\n{PROMPT}{text}\n")

# %% [markdown]
# ## The next-token distribution
# Temperature divides the logits before the softmax: below 1 it sharpens the distribution,
# above 1 it flattens it.

# %%
decoder = make_decoder(run.model, run.model_config)
logits = np.asarray(without_special_tokens(decoder.start(np.array([run.tokenizer.encode(PROMPT)]))))[0]
top = np.argsort(logits)[::-1][:15]
labels = [repr(run.tokenizer.id_to_token(i)) for i in top]
for t in (0.5, 1.0, 2.0):
    p = np.exp(logits / t - np.max(logits / t))
    p /= p.sum()
    plt.plot(range(len(top)), p[top], marker="o", label=f"temperature {t}")
plt.xticks(range(len(top)), labels, rotation=60)
plt.ylabel("probability of the next character")
plt.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Why a key/value cache
# Without a cache, every new token re-runs the model over the whole window. With it, only the
# new position is computed.

# %%
new_tokens = 64 if TINY else 256
for cached in (True, False):
    generate_ids(run.model, run.model_config, [3], 8, cached=cached)  # compile once
    start = time.perf_counter()
    generate_ids(run.model, run.model_config, [3], new_tokens, cached=cached)
    rate = new_tokens / (time.perf_counter() - start)
    print(f"{'cached' if cached else 'recompute':10s} {rate:8.0f} tokens/s")
