"""Text generation: any decoder, a sampler, and a sliding context window.

The loop: read the prompt once (`decoder.start`), then repeatedly turn the next-token logits into
a token (`tfl.inference.sampling`) and feed that token back (`decoder.step`). A decoder is
anything with `start`, `step` and `max_context` (`tfl.inference.decoders`, or the LiteRT
decoders of `tfl.edge.litert`); `generate_text` is the one text-in, text-out loop for all of them.

Context rules (the same for the cached and the recomputing decoders, so they agree exactly):
- An empty prompt starts from the beginning-of-sequence token.
- A prompt longer than the model's context (`seq_len`) is cropped to its last `seq_len` tokens.
- When a Transformer's window is full, it slides: generation continues from the last
  `seq_len // 2` tokens (one new prefill), so every token sees at least half a context and the
  prefill cost is paid once per `seq_len // 2` tokens. An LSTM has no window: its state carries.

Same seed, same prompt and settings: same text.

>>> from tfl.models import TransformerConfig, build_model
>>> config = TransformerConfig.from_preset("nano", vocab_size=20)
>>> model = build_model(config)
>>> len(generate_ids(model, config, [5, 6, 7], max_new_tokens=4))
4
"""

from pathlib import Path

import keras_hub
import numpy as np
import tensorflow as tf

from tfl.errors import TflError
from tfl.inference.decoders import SEGMENT_TOKENS, make_decoder
from tfl.inference.sampling import (check_sampler_settings, make_sampler, next_token,
                                    without_special_tokens)
from tfl.tokenizers.base import BOS_ID, PAD_ID


def decode_loop(decoder, prompt_ids, max_new_tokens, sampler, seq_len, on_token=None):
    """New token ids from `decoder`, sampled by `sampler`, following the context rules above.

    Decoders that can (the cached Transformer, the stateful LSTM) sample whole segments of
    tokens in one compiled call; the others go one token at a time. Both draw the same tokens.
    """
    context = (list(prompt_ids) or [BOS_ID])[-seq_len:]
    window = decoder.max_context
    logits = decoder.start(np.array([context]))
    in_segments = hasattr(decoder, "sample_segment")
    new = []
    while len(new) < max_new_tokens:
        remaining = max_new_tokens - len(new)
        room = window - len(context) if window else remaining
        if in_segments and room > 0:
            tokens, logits = decoder.sample_segment(sampler, logits,
                                                    min(room, remaining, SEGMENT_TOKENS))
            if window:
                context += tokens
        else:
            tokens = [int(next_token(sampler, logits)[0])]
            if remaining == 1:
                pass  # the last token: nothing left to predict
            elif window and len(context) >= window:
                context = (context + tokens)[-(window // 2):]
                logits = decoder.start(np.array([context]))
            else:
                context += tokens
                logits = decoder.step(np.array(tokens))
        new += tokens
        if on_token:
            for token in tokens:
                on_token(token)
    return new


def beam_search(decoder, prompt_ids, max_new_tokens, sampler, seq_len):
    """Beam search with keras-hub's `BeamSampler`, within one context window."""
    context = (list(prompt_ids) or [BOS_ID])[-seq_len:]
    total = len(context) + max_new_tokens
    if decoder.max_context and total > decoder.max_context:
        raise TflError(
            f"beam search runs within one context window: prompt ({len(context)} tokens) plus "
            f"--max-new-tokens ({max_new_tokens}) must be at most {decoder.max_context}; "
            "ask for fewer tokens or use another sampler"
        )
    prompt = np.full((1, total), PAD_ID, dtype=np.int32)
    prompt[0, : len(context)] = context
    mask = np.zeros((1, total), dtype=bool)
    mask[0, : len(context)] = True
    cache = decoder.beam_start(np.array([context]))

    def next_logits(prompt, cache, index):
        logits, hidden, cache = decoder.beam_next(prompt, cache, index)
        return without_special_tokens(logits), hidden, cache

    out = sampler(next_logits, tf.constant(prompt), cache=cache, index=len(context),
                  mask=tf.constant(mask))
    return [int(i) for i in np.asarray(out)[0, len(context):]]


def decode_ids(decoder, prompt_ids, max_new_tokens, seq_len, sampler="greedy", on_token=None,
               **sampler_options):
    """New token ids continuing `prompt_ids`, from any decoder: beam search or the decode loop.

    `sampler` is a name (with `sampler_options` for `make_sampler`) or a keras-hub sampler.
    """
    check_max_new_tokens(max_new_tokens)
    chosen = make_sampler(sampler, **sampler_options) if isinstance(sampler, str) else sampler
    if max_new_tokens == 0:
        return []
    if isinstance(chosen, keras_hub.samplers.BeamSampler):
        if not hasattr(decoder, "beam_next"):
            raise TflError("beam search is not available for this model; use greedy, "
                           "temperature, top_k or top_p")
        return beam_search(decoder, prompt_ids, max_new_tokens, chosen, seq_len)
    return decode_loop(decoder, prompt_ids, max_new_tokens, chosen, seq_len, on_token)


def check_max_new_tokens(max_new_tokens):
    """Raise a one-line `TflError` unless `max_new_tokens` is a whole number, zero or more."""
    whole = isinstance(max_new_tokens, (int, np.integer)) and not isinstance(max_new_tokens, bool)
    if not whole or max_new_tokens < 0:
        raise TflError(f"max_new_tokens must be a whole number, zero or more, got {max_new_tokens}")


def generate_ids(model, config, prompt_ids, max_new_tokens, sampler="greedy", cached=True,
                 on_token=None, **sampler_options):
    """New token ids continuing `prompt_ids`, from a Keras model and its config.

    `cached=False` decodes with the recomputing reference, beam search included.
    """
    decoder = make_decoder(model, config, cached=cached)
    if isinstance(sampler, str):
        sampler_options.setdefault("vocab_size", config.vocab_size)
    return decode_ids(decoder, prompt_ids, max_new_tokens, config.seq_len, sampler, on_token,
                      **sampler_options)


class TextStream:
    """Turns generated ids into text pieces as they come, holding back an incomplete character."""

    def __init__(self, tokenizer, on_text):
        self.tokenizer, self.on_text = tokenizer, on_text
        self.ids, self.sent = [], 0

    def __call__(self, token):
        self.ids.append(token)
        text = self.tokenizer.decode(self.ids)
        stable = len(text.rstrip("\ufffd")) if text.endswith("\ufffd") else len(text)
        if stable > self.sent:
            self.on_text(text[self.sent : stable])
            self.sent = stable

    def finish(self, text):
        if len(text) > self.sent:
            self.on_text(text[self.sent :])


def generate_text(decoder, tokenizer, seq_len, prompt="", max_new_tokens=200, sampler="top_k",
                  temperature=1.0, top_k=10, top_p=0.9, num_beams=4, seed=None, on_text=None):
    """Text continuing `prompt`, from any decoder and the tokenizer of its model.

    `generate` (a run's Keras model) and `tfl.edge.litert.generate_tflite` (a `.tflite` file)
    both come here; the arguments are `generate`'s.

    >>> from tfl.models import TransformerConfig, build_model
    >>> from tfl.tokenizers import CharTokenizer
    >>> tokenizer = CharTokenizer.train("abc")
    >>> config = TransformerConfig.from_preset("nano", vocab_size=tokenizer.vocab_size)
    >>> decoder = make_decoder(build_model(config), config)
    >>> len(generate_text(decoder, tokenizer, config.seq_len, "ab", 5, sampler="greedy"))
    5
    """
    prompt_ids = tokenizer.encode(prompt, errors="strict")
    stream = TextStream(tokenizer, on_text) if on_text else None
    ids = decode_ids(decoder, prompt_ids, max_new_tokens, seq_len, sampler, on_token=stream,
                     temperature=temperature, top_k=top_k, top_p=top_p, num_beams=num_beams,
                     seed=seed, vocab_size=tokenizer.vocab_size)
    text = tokenizer.decode(ids)
    if stream:
        stream.finish(text)
    return text


def generate(run, prompt="", max_new_tokens=200, sampler="top_k", temperature=1.0, top_k=10,
             top_p=0.9, num_beams=4, seed=None, cached=True, on_text=None):
    """Generate text from a run directory (or a loaded `tfl.run.Run`).

    Args:
        run: a run directory path, or a `Run` from `tfl.run.load_run`.
        prompt: text to continue; characters outside a character vocabulary are an error.
        max_new_tokens: tokens to generate.
        sampler: "greedy", "temperature", "top_k", "top_p" or "beam".
        temperature, top_k, top_p, num_beams: sampler settings, all checked whichever sampler
            is chosen (`check_sampler_settings`); a top_k above the vocabulary size keeps
            every token.
        seed: makes sampling reproducible.
        cached: use the key/value cache (Transformer) or carried state (LSTM).
        on_text: called with each new piece of text as it is produced (for streaming).

    Returns the generated text (without the prompt).

    >>> text = generate("saved_models/transformer-char-cpu", "ROMEO:", 50, seed=1)  # doctest: +SKIP
    """
    from tfl.run import load_run

    check_max_new_tokens(max_new_tokens)  # before loading anything
    check_sampler_settings(sampler, temperature, top_k, top_p, num_beams)
    if isinstance(run, (str, Path)):
        run = load_run(run)
    decoder = make_decoder(run.model, run.model_config, cached=cached)
    return generate_text(decoder, run.tokenizer, run.model_config.seq_len, prompt, max_new_tokens,
                         sampler=sampler, temperature=temperature, top_k=top_k, top_p=top_p,
                         num_beams=num_beams, seed=seed, on_text=on_text)
