"""Text generation: samplers over a decoder, with a sliding context window.

The loop: read the prompt once (`decoder.start`), then repeatedly turn the next-token logits into
a token with a keras-hub sampler and feed that token back (`decoder.step`).

Context rules (the same for the cached and the recomputing decoders, so they agree exactly):
- An empty prompt starts from the beginning-of-sequence token.
- A prompt longer than the model's context (`seq_len`) is cropped to its last `seq_len` tokens.
- When a Transformer's window is full, it slides: generation continues from the last
  `seq_len // 2` tokens (one new prefill), so every token sees at least half a context and the
  prefill cost is paid once per `seq_len // 2` tokens. An LSTM has no window: its state carries.

Padding, unknown and start-of-text tokens are never generated. Samplers (keras-hub's): greedy, temperature (random sampling from softmax(logits / T)), top_k,
top_p (nucleus) and beam search. Same seed, same prompt and settings: same text.

>>> from tfl.models import TransformerConfig, build_model
>>> config = TransformerConfig.from_preset("nano", vocab_size=20)
>>> model = build_model(config)
>>> len(generate_ids(model, config, [5, 6, 7], max_new_tokens=4))
4
"""

from pathlib import Path

import keras_hub
import numpy as np

from tfl.errors import TflError, did_you_mean
from tfl.tokenizers.base import BOS_ID, NUM_SPECIAL, PAD_ID

SAMPLERS = ("greedy", "temperature", "top_k", "top_p", "beam")


_SAMPLER_CACHE = {}  # settings -> (sampler, its initial RNG state)


def make_sampler(name="greedy", temperature=1.0, top_k=10, top_p=0.9, num_beams=4, seed=None):
    """The keras-hub sampler called `name`, e.g. `make_sampler("top_k", top_k=5, seed=1)`.

    Samplers are kept per setting, so the decoders' compiled loops that use them are traced once;
    a seeded sampler's random state is reset on every call, so the same seed gives the same text.
    """
    key = (name, temperature, top_k, top_p, num_beams, seed)
    if key not in _SAMPLER_CACHE:
        sampler = _new_sampler(name, temperature, top_k, top_p, num_beams, seed)
        generator = getattr(sampler, "seed_generator", None)
        _SAMPLER_CACHE[key] = (sampler, None if generator is None else generator.state.numpy())
    sampler, initial_state = _SAMPLER_CACHE[key]
    if seed is not None and initial_state is not None:
        sampler.seed_generator.state.assign(initial_state)
    return sampler


def _new_sampler(name, temperature, top_k, top_p, num_beams, seed):
    if name not in SAMPLERS:
        raise TflError(f"unknown sampler {name!r}; {did_you_mean(name, SAMPLERS)}")
    if temperature <= 0:
        raise TflError(f"temperature must be positive, got {temperature}; use --sampler greedy "
                       "for the most likely token")
    samplers = keras_hub.samplers
    if name == "greedy":
        return samplers.GreedySampler()
    if name == "temperature":
        return samplers.RandomSampler(temperature=temperature, seed=seed)
    if name == "top_k":
        if top_k < 1:
            raise TflError(f"top_k must be at least 1, got {top_k}")
        return samplers.TopKSampler(k=top_k, temperature=temperature, seed=seed)
    if name == "top_p":
        if not 0 < top_p <= 1:
            raise TflError(f"top_p must be in (0, 1], got {top_p}")
        return samplers.TopPSampler(p=top_p, temperature=temperature, seed=seed)
    return samplers.BeamSampler(num_beams=num_beams, temperature=temperature)


def without_special_tokens(logits):
    """`logits` with padding, unknown and start-of-text made impossible: generated text never
    contains them. Accepts numpy arrays (the decode loop) and tensors (beam search)."""
    if isinstance(logits, np.ndarray):
        logits = logits.copy()
        logits[:, :NUM_SPECIAL] = -1e9
        return logits
    import tensorflow as tf

    allowed = tf.range(tf.shape(logits)[-1]) >= NUM_SPECIAL
    return tf.where(allowed, logits, tf.constant(-1e9, logits.dtype))


_NEXT_TOKEN_FNS = {}  # id(sampler) -> (sampler, compiled next-token function)


def next_token(sampler, logits):
    """One token id per row of `logits` (batch, vocab), chosen by a keras-hub `sampler`.

    Compiled with XLA like the decoders' segment loops: TensorFlow's random ops draw different
    numbers with and without XLA, and both paths must draw the same tokens.
    """
    import tensorflow as tf

    if id(sampler) not in _NEXT_TOKEN_FNS:

        @tf.function(jit_compile=True)
        def choose(logits):
            probabilities = sampler.compute_probabilities(without_special_tokens(logits))
            return tf.cast(sampler.get_next_token(probabilities), tf.int32)

        _NEXT_TOKEN_FNS[id(sampler)] = (sampler, choose)
    return _NEXT_TOKEN_FNS[id(sampler)][1](tf.constant(logits)).numpy()


def decode_loop(decoder, prompt_ids, max_new_tokens, sampler, seq_len, on_token=None):
    """New token ids from `decoder` (see `tfl.inference.decoders`), following the context rules above.

    Decoders that can (the cached Transformer, the stateful LSTM) sample whole segments of
    tokens in one compiled call; the others go one token at a time. Both draw the same tokens.
    """
    from tfl.inference.decoders import SEGMENT_TOKENS

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
    import tensorflow as tf

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


def generate_ids(model, config, prompt_ids, max_new_tokens, sampler="greedy", cached=True,
                 on_token=None, **sampler_options):
    """New token ids continuing `prompt_ids`, from a Keras model and its config."""
    from tfl.inference.decoders import make_decoder

    if max_new_tokens < 0:
        raise TflError("--max-new-tokens must be zero or more")
    decoder = make_decoder(model, config, cached=cached or sampler == "beam")
    chosen = make_sampler(sampler, **sampler_options) if isinstance(sampler, str) else sampler
    if max_new_tokens == 0:
        return []
    if sampler == "beam":
        return beam_search(decoder, prompt_ids, max_new_tokens, chosen, config.seq_len)
    return decode_loop(decoder, prompt_ids, max_new_tokens, chosen, config.seq_len, on_token)


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


def generate(run, prompt="", max_new_tokens=200, sampler="top_k", temperature=1.0, top_k=10,
             top_p=0.9, num_beams=4, seed=None, cached=True, on_text=None):
    """Generate text from a run directory (or a loaded `tfl.run.Run`).

    Args:
        run: a run directory path, or a `Run` from `tfl.run.load_run`.
        prompt: text to continue; characters outside a character vocabulary are an error.
        max_new_tokens: tokens to generate.
        sampler: "greedy", "temperature", "top_k", "top_p" or "beam".
        temperature, top_k, top_p, num_beams: sampler settings.
        seed: makes sampling reproducible.
        cached: use the key/value cache (Transformer) or carried state (LSTM).
        on_text: called with each new piece of text as it is produced (for streaming).

    Returns the generated text (without the prompt).

    >>> text = generate("saved_models/transformer-char-cpu", "ROMEO:", 50, seed=1)  # doctest: +SKIP
    """
    from tfl.run import load_run

    if isinstance(run, (str, Path)):
        run = load_run(run)
    prompt_ids = run.tokenizer.encode(prompt, errors="strict")
    stream = TextStream(run.tokenizer, on_text) if on_text else None
    ids = generate_ids(run.model, run.model_config, prompt_ids, max_new_tokens, sampler=sampler,
                       cached=cached, on_token=stream, temperature=temperature, top_k=top_k,
                       top_p=top_p, num_beams=num_beams, seed=seed)
    text = run.tokenizer.decode(ids)
    if stream:
        stream.finish(text)
    return text
