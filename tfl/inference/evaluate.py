"""Perplexity and bits per character of a language model on a split.

The split's ids are read in consecutive windows of `seq_len` predictions: window k feeds ids
`[kT, kT + T)` and predicts ids `[kT + 1, kT + T]`, so every token but the first is predicted
exactly once. The last window is padded; padded positions get weight 0, so the loss is the
mean over real tokens only.

    perplexity = exp(mean negative log-likelihood per token, in nats)
    bits per character = total nats / ln 2 / characters predicted

>>> import numpy as np
>>> from tfl.models import TransformerConfig, build_model
>>> model = build_model(TransformerConfig.from_preset("nano", vocab_size=20))
>>> result = evaluate_ids(model, np.arange(3, 20).repeat(5), seq_len=32)
>>> result["tokens"]
84
"""

import math
import numbers

import numpy as np
import tensorflow as tf

from tfl.errors import TflError
from tfl.metrics import bits_per_character, perplexity
from tfl.tokenizers.base import PAD_ID


def eval_windows(token_ids, seq_len):
    """(inputs, targets, weights) arrays covering every token after the first, padded at the end."""
    ids = np.asarray(token_ids, dtype=np.int32)
    if len(ids) < 2:
        raise TflError(
            f"the split has {len(ids)} tokens; at least 2 are needed to measure perplexity"
        )
    num_predictions = len(ids) - 1
    num_rows = math.ceil(num_predictions / seq_len)
    padded = np.full(num_rows * seq_len + 1, PAD_ID, dtype=np.int32)
    padded[: len(ids)] = ids
    inputs = np.stack([padded[r * seq_len : (r + 1) * seq_len] for r in range(num_rows)])
    targets = np.stack([padded[r * seq_len + 1 : (r + 1) * seq_len + 1] for r in range(num_rows)])
    weights = np.zeros_like(targets, dtype=np.float32)
    weights.reshape(-1)[:num_predictions] = 1.0
    return inputs, targets, weights


def _nll_sum(model):
    @tf.function(jit_compile=True, reduce_retracing=True)
    def nll_sum(inputs, targets, weights):
        logits = tf.cast(model(inputs, training=False), tf.float32)  # (B, T, V)
        nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=logits)
        return tf.reduce_sum(nll * weights)

    return nll_sum


def evaluate_ids(model, token_ids, seq_len, batch_size=32, max_tokens=None):
    """Mean loss, perplexity and token count of `model` on `token_ids`.

    Args:
        model: a Keras model from ids `(B, seq_len)` to logits `(B, seq_len, vocab)`.
        token_ids: the split's ids.
        seq_len: the model's input length.
        batch_size: windows per forward pass.
        max_tokens: evaluate only the first `max_tokens` ids (for quick estimates).
    """
    ids = np.asarray(token_ids)[: max_tokens or None]
    inputs, targets, weights = eval_windows(ids, seq_len)
    nll_sum = _nll_sum(model)
    total = 0.0
    for start in range(0, len(inputs), batch_size):
        stop = start + batch_size
        # Pad the final batch to a full one so the compiled function is traced once.
        batch = [a[start:stop] for a in (inputs, targets, weights)]
        short = batch_size - len(batch[0])
        if short:
            batch = [np.concatenate([a, np.zeros((short,) + a.shape[1:], a.dtype)]) for a in batch]
        total += float(nll_sum(*batch))
    count = int(weights.sum())
    loss = total / count
    return {"loss": loss, "perplexity": perplexity(loss), "tokens": count}


def evaluate_split(model, tokenizer, text, seq_len, batch_size=32, max_chars=None):
    """Perplexity and bits per character of `model` on `text` (usually a corpus split)."""
    text = text[: max_chars or None]
    ids = tokenizer.encode(text)
    result = evaluate_ids(model, ids, seq_len, batch_size)
    chars_predicted = len(text) * result["tokens"] / len(ids)
    result["bits_per_char"] = bits_per_character(result["loss"], result["tokens"], chars_predicted)
    return result


def evaluate_run(run_dir, splits=("validation", "test"), max_chars=None, ngram_order=0,
                 data_dir=None, which="model"):
    """Evaluate a run directory on its corpus's splits; optionally beside an n-gram baseline.

    Returns `{"run_dir": ..., "rows": [{"model", "split", "loss", "perplexity",
    "bits_per_char", "tokens"}, ...]}`. Empty splits (Tiny Shakespeare has no test split) are
    skipped. `max_chars` is None (whole splits) or at least 1; `ngram_order` is 0 (no baseline)
    or an n-gram order of at least 1.
    """
    from tfl.data import load_corpus
    from tfl.data.corpora import SPLITS
    from tfl.models.ngram import check_max_chars
    from tfl.run import load_run

    check_max_chars(max_chars)  # before anything is loaded
    if ngram_order != 0 and not (isinstance(ngram_order, numbers.Integral) and ngram_order >= 1):
        raise TflError(f"ngram_order must be 0 (no baseline) or an n-gram order of at least 1 "
                       f"(1: unigrams), got {ngram_order}")
    for split in splits:
        if split not in SPLITS:
            raise TflError(f"unknown split {split!r}; use validation, test or train")
    run = load_run(run_dir, which=which)
    corpus = load_corpus(run.data.corpus, data_dir=data_dir)
    rows = []
    for split in splits:
        if not corpus.split(split):
            continue
        result = evaluate_split(run.model, run.tokenizer, corpus.split(split),
                                run.model_config.seq_len, max_chars=max_chars)
        rows.append({"model": f"{run.model_config.architecture} ({run.path.name})",
                     "split": split, **result})
        if ngram_order:
            from tfl.models.ngram import ngram_baseline

            baseline = ngram_baseline(corpus, run.tokenizer, order=ngram_order, split=split,
                                      max_chars=max_chars)
            rows.append({"model": f"{ngram_order}-gram Kneser-Ney", **baseline})
    if not rows:
        raise TflError(f"the splits {', '.join(splits)} of {corpus.name} are empty")
    return {"run_dir": str(run_dir), "corpus": corpus.name, "rows": rows}
