"""Text generation by full recomputation over a sliding window.

The model sees at most `seq_len` tokens. The prompt is cropped to its last `seq_len` tokens;
each new token is predicted from the window of the last `seq_len` tokens, so generation past the
context slides the window. Shorter windows are padded on the right: both architectures are
causal, so padding after position t never changes the logits at t.

>>> import numpy as np
>>> from tfl.models import TransformerConfig, build_model
>>> model = build_model(TransformerConfig.from_preset("nano", vocab_size=20))
>>> len(generate_ids(model, [5, 6, 7], max_new_tokens=4, seq_len=32))
4
"""

import weakref

import numpy as np
import tensorflow as tf

from tfl.tokenizers.base import BOS_ID, PAD_ID


_COMPILED = weakref.WeakKeyDictionary()  # model -> its compiled next-token function


def _next_logits_fn(model):
    """A compiled `(window, position) -> logits` for `model`, built once per model."""
    if model in _COMPILED:
        return _COMPILED[model]

    @tf.function(jit_compile=True, reduce_retracing=True)
    def next_logits(window, position):
        logits = model(window, training=False)  # (1, seq_len, vocab)
        return tf.cast(logits[0, position], tf.float32)  # (vocab,)

    _COMPILED[model] = next_logits
    return next_logits


def generate_ids(model, prompt_ids, max_new_tokens, seq_len):
    """Greedy continuation of `prompt_ids`: a list of `max_new_tokens` new ids.

    An empty prompt starts from the beginning-of-sequence token.
    """
    ids = list(prompt_ids) or [BOS_ID]
    next_logits = _next_logits_fn(model)
    new = []
    for _ in range(max_new_tokens):
        context = ids[-seq_len:]
        window = np.full((1, seq_len), PAD_ID, dtype=np.int32)
        window[0, : len(context)] = context
        logits = next_logits(window, tf.constant(len(context) - 1, tf.int32)).numpy()
        token = int(np.argmax(logits))
        ids.append(token)
        new.append(token)
    return new
