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
# # 06 · Compression and TFLite: a language model for a phone
#
# A trained model is a file of numbers. This notebook makes that file small enough for an edge
# device and checks, after every step, how much the model's perplexity paid for it:
#
# 1. **Quantization** stores each weight in 8 bits (or 16) instead of 32.
# 2. **Pruning** sets the smallest weights to exactly zero while fine-tuning, so the model can
#    recover; zeros compress very well.
# 3. **Clustering** lets each weight matrix keep only a few distinct values.
# 4. **Export** to TFLite, and generation with the LiteRT interpreter, as an app on a phone
#    would do it.
#
# TensorFlow Model Optimization (TF-MOT) works only with Keras 2 (`tf_keras`), so tfl builds a
# *twin* of the model with `tf_keras` layers, copies the weights over by role, and checks that
# the twin's logits equal the original's.

# %%
import os
import tempfile

import matplotlib.pyplot as plt
import numpy as np

import tfl
from tfl.edge import compression as optimize
from tfl.edge.report import optimize_run
from tfl.edge.export import convert_to_tflite
from tfl.edge.litert import LiteRTModel, generate_tflite
from tfl import TrainConfig

TINY = os.environ.get("TFL_NOTEBOOK_SIZE") == "tiny"
PRESET = "nano" if TINY else "char-cpu"
STEPS = 40 if TINY else 1000
FINE_TUNE_STEPS = 20 if TINY else 600
EVAL_CHARS = 5_000 if TINY else 30_000
WORK = tempfile.mkdtemp()
RUN_DIR = os.path.join(WORK, f"transformer-{PRESET}")

# %% [markdown]
# ## A model to compress
# A character-level Transformer trained for a short while on Tiny Shakespeare.

# %%
corpus = tfl.load_corpus_or_fallback("tiny_shakespeare", None, print)
history = tfl.train("transformer", PRESET, corpus.name, RUN_DIR, log=None,
                          train_config=TrainConfig(steps=STEPS, eval_interval=STEPS // 2,
                                                   sample_tokens=0))
run = tfl.load_run(RUN_DIR)
print(f"{run.model.count_params():,} parameters, validation loss {history[-1]['val_loss']:.3f}")

# %% [markdown]
# ## The tf_keras twin
# Same architecture, same weights, another Keras. The largest logit difference on random
# token ids should be at the level of float32 rounding.

# %%
twin = tfl.make_twin(run.model, run.model_config)
print(f"largest |twin - model| logit difference: "
      f"{tfl.twin_max_logit_difference(run.model, twin, run.model_config):.2e}")

# %% [markdown]
# ## Quantization by hand
# Dynamic-range int8 keeps one scale per matrix: `w ≈ scale * q` with `q` an integer in
# [-127, 127] and `scale = max|w| / 127`. The rounding error is at most half a step.

# %%
# The twin's layers by role: the first block's MLP input projection (d -> 4d).
weights = tfl.twin_parts(twin, run.model_config).blocks[0].mlp_in.get_weights()[0]
scale = np.abs(weights).max() / 127
quantized = np.round(weights / scale).astype(np.int8)
error = np.abs(quantized * scale - weights)
print(f"scale {scale:.5f}; largest rounding error {error.max():.5f} (half a step: {scale / 2:.5f})")
plt.hist(weights.ravel(), bins=100)
plt.title("first MLP weights of block 0: most are small, a few are large")
plt.xlabel("weight")
plt.show()

# %% [markdown]
# ## Pruning while fine-tuning
# `prune_low_magnitude` wraps the embedding, attention, MLP and output layers; the sparsity
# rises along a polynomial schedule while the model trains, and the masks follow the smallest
# weights. What counts is the sparsity *measured* on the stripped weights.

# %%
train_ids = run.tokenizer.encode(corpus.train)
pruned, report = optimize.prune(run.model, run.model_config, train_ids, target_sparsity=0.8,
                                steps=FINE_TUNE_STEPS)
print(f"achieved sparsity over all pruned matrices: {report['achieved_sparsity']['overall']:.1%}")
for name, sparsity in list(report["achieved_sparsity"]["weights"].items())[:6]:
    print(f"  {name:45s} {sparsity:.1%}")
kernel = tfl.twin_parts(pruned, run.model_config).blocks[0].mlp_in.get_weights()[0]
plt.imshow(kernel[:64, :128] != 0, cmap="gray_r", aspect="auto")
plt.title("non-zero weights of a pruned matrix (black)")
plt.show()

# %% [markdown]
# ## Every variant, measured
# `optimize_run` (the same as `tfl optimize RUN --prune 0.8 --quantize dynamic-int8`) prunes,
# clusters, converts every variant to TFLite, and measures each file with the LiteRT
# interpreter: size, gzip size, validation perplexity and latency per token.

# %%
OUT = os.path.join(WORK, "optimized")
compression = optimize_run(RUN_DIR, OUT, prune=0.8, quantize="dynamic-int8", clusters=16,
                           fine_tune_steps=FINE_TUNE_STEPS, max_chars=EVAL_CHARS, log=None)
print(f"Keras model perplexity: {compression['keras']['perplexity']:.3f}")
for row in compression["rows"]:
    print(f"{row['variant']:22s} {row['bytes']:>10,} bytes  gzip {row['gzip_bytes']:>10,}  "
          f"perplexity {row['perplexity']:7.3f} ({row['perplexity_change']:+.1%})  "
          f"{row['ms_per_token']:.2f} ms/token")

# %% [markdown]
# ## Size against perplexity
# Down and to the left is better. Quantization moves a model left at almost no cost in
# perplexity; pruning moves it further left once gzip (or any compressor) squeezes the zeros.

# %%
fig, ax = plt.subplots(figsize=(7, 4.5))
for row in compression["rows"]:
    ax.scatter(row["gzip_bytes"] / 1024, row["perplexity"])
    ax.annotate(row["variant"], (row["gzip_bytes"] / 1024, row["perplexity"]), fontsize=8)
ax.axhline(compression["keras"]["perplexity"], linestyle="--", color="grey", label="Keras")
ax.set_xscale("log")
ax.set_xlabel("gzip size (KiB)")
ax.set_ylabel("validation perplexity")
ax.legend()
plt.show()

# %% [markdown]
# ## Generating on the "device"
# The `.tflite` file carries a `step` signature: for the Transformer, a fixed window of token
# ids and the number of real tokens in it, returning the next token's logits. Here the LiteRT
# interpreter (the runtime of Android, iOS and Linux boards) runs the pruned int8 file.

# %%
edge_file = os.path.join(OUT, "pruned-dynamic-int8.tflite")
print(generate_tflite(edge_file, "ROMEO:\n", 40 if TINY else 200, sampler="top_k", top_k=10,
                      temperature=0.8, seed=0))

# %% [markdown]
# The same file, opened directly: its signatures, and the logits of one window.

# %%
edge = LiteRTModel(edge_file)
print(edge.interpreter.get_signature_list())
window = np.array(run.tokenizer.encode(corpus.validation[: run.model_config.seq_len]))
print("logits of the last position:", np.round(edge.logits(window)[-1][:8], 3), "...")

# %% [markdown]
# ## Try it
# - Convert the twin yourself with `convert_to_tflite(twin, run.model_config, "float16")` and
#   compare its size with the table.
# - Prune to 90% or 50% sparsity and plot perplexity against sparsity.
# - From a shell: `tfl optimize RUN_DIR --prune 0.8 --quantize int8 --out DIR`, then
#   `tfl generate --tflite DIR/pruned-int8.tflite --prompt "ROMEO:"`.

# %%
float16 = convert_to_tflite(twin, run.model_config, "float16")
print(f"float16 file: {len(float16):,} bytes")
