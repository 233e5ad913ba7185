import gc
import itertools
import json
import weakref

import numpy as np
import pytest
import tensorflow as tf

from tfl.errors import TflError
from tfl.inference import decoders
from tfl.inference.decoders import (CachedTransformerDecoder, RecomputeDecoder,
                                    StatefulLSTMDecoder, make_decoder)
from tfl.inference.generate import (beam_search, decode_ids, decode_loop, generate,
                                    generate_ids)
from tfl.inference.sampling import SAMPLERS, make_sampler
from tfl.models import LSTMConfig, TransformerConfig, build_model
from tfl.models.parts import LSTMParts, TransformerParts
from tfl.run import load_run
from tfl.tokenizers.base import BOS_ID, NUM_SPECIAL


@pytest.fixture(scope="module")
def transformer():
    config = TransformerConfig.from_preset("nano", vocab_size=23)
    return build_model(config), config


@pytest.fixture(scope="module")
def rotary_transformer():
    config = TransformerConfig.from_preset("nano", vocab_size=23, position="rotary")
    return build_model(config), config


@pytest.fixture(scope="module")
def lstm():
    config = LSTMConfig.from_preset("nano", vocab_size=23, num_layers=2)
    return build_model(config), config


@pytest.fixture(scope="module")
def trained(trained_runs):
    """The session's trained runs, loaded once: name -> Run. Their text is learned, so the
    tokens that decoders and samplers choose are not a random model's near-ties."""
    return {name: load_run(path) for name, path in trained_runs.items()}


def prompt_ids(run, text="the old f"):
    return run.tokenizer.encode(text, errors="strict")


@pytest.mark.parametrize("which", ["transformer", "rotary_transformer"])
def test_cached_logits_equal_full_recomputation_at_every_step(which, request):
    model, config = request.getfixturevalue(which)
    cached, reference = CachedTransformerDecoder(model, config), RecomputeDecoder(model, config)
    prompt = np.array([[4, 9, 13, 5]])
    np.testing.assert_allclose(cached.start(prompt), reference.start(prompt), atol=1e-5)
    tokens = np.random.default_rng(0).integers(3, 23, size=20)
    for token in tokens:  # a 20-token generation, one position per step
        np.testing.assert_allclose(cached.step([token]), reference.step([token]), atol=1e-5)
    assert cached.position == 24


def test_a_decoder_decodes_with_the_weights_as_they_are_now():
    # The Trainer builds one decoder per run and samples after every interval.
    config = TransformerConfig.from_preset("nano", vocab_size=23, position="learned")
    model = build_model(config)
    decoder, prompt = make_decoder(model, config), np.array([[4, 9, 13, 5]])
    decoder.start(prompt)
    rng = np.random.default_rng(3)
    for weight in model.weights:  # as training would
        weight.assign(weight + rng.normal(0, 0.05, weight.shape).astype("float32"))
    np.testing.assert_allclose(decoder.start(prompt), RecomputeDecoder(model, config).start(prompt),
                               atol=1e-5)


def test_stateful_lstm_equals_rerunning_the_full_sequence(lstm):
    model, config = lstm
    decoder = StatefulLSTMDecoder(model, config)
    ids = np.random.default_rng(1).integers(3, 23, size=(1, config.seq_len)).astype("int32")
    full = model(ids).numpy()[0]  # (seq_len, vocab)
    np.testing.assert_allclose(decoder.start(ids[:, :1])[0], full[0], atol=1e-5)
    for t in range(1, config.seq_len):
        np.testing.assert_allclose(decoder.step(ids[:, t])[0], full[t], atol=1e-5)


@pytest.mark.parametrize("sampler", ["greedy", "top_k", "top_p", "temperature"])
def test_cached_and_uncached_generation_agree(trained, sampler):
    run = trained["transformer"]
    args = (run.model, run.model_config, prompt_ids(run), 40)  # past the 32-token window
    a = generate_ids(*args, sampler=sampler, seed=3)
    b = generate_ids(*args, sampler=sampler, seed=3, cached=False)
    assert a == b and len(a) == 40


@pytest.mark.parametrize("name", ["transformer", "lstm"])  # rotary: step by step below
def test_beam_search_over_the_cache_equals_beam_search_recomputing(trained, name):
    # The uncached decoder re-reads every beam's whole prompt at every step, so a cache that
    # keeps the wrong keys, values or state, or loses them when beams are reordered, differs.
    run = trained[name]
    args = (run.model, run.model_config, prompt_ids(run), 20)
    cached = generate_ids(*args, sampler="beam", num_beams=4)
    recomputed = generate_ids(*args, sampler="beam", num_beams=4, cached=False)
    assert cached == recomputed and len(cached) == 20
    assert run.tokenizer.decode(cached) != run.tokenizer.decode(cached[:1]) * 20  # not stuck


@pytest.mark.parametrize("name", ["transformer", "rotary", "lstm"])
def test_beam_steps_over_the_cache_equal_recomputation(trained, name):
    # Step by step, as keras-hub's BeamSampler drives a decoder: the cache is repeated once
    # per beam, and after every step its rows are reordered with the beams they belong to.
    # Each step's logits must equal those recomputed from the beam's whole prompt.
    run = trained[name]
    model, config = run.model, run.model_config
    context, beams, rng = prompt_ids(run), 3, np.random.default_rng(0)
    total = len(context) + 8
    prompt = np.zeros((beams, total), np.int32)
    prompt[:, : len(context)] = context
    cached, reference = make_decoder(model, config), RecomputeDecoder(model, config)
    cache = tf.repeat(cached.beam_start(np.array([context])), beams, axis=0)
    for index in range(len(context), total):
        index = tf.constant(index)  # a tensor, as the sampler's loop passes it
        logits, _, cache = cached.beam_next(tf.constant(prompt), cache, index)
        expected, _, _ = reference.beam_next(tf.constant(prompt), (), index)
        np.testing.assert_allclose(logits, expected, atol=1e-4)
        order = rng.integers(0, beams, size=beams)  # beams kept, dropped or duplicated
        prompt, cache = prompt[order], tf.gather(cache, order)
        prompt[:, int(index)] = rng.integers(NUM_SPECIAL, config.vocab_size, size=beams)


def test_beam_search_with_enough_beams_finds_the_most_likely_continuation():
    # With 4 tokens that may be generated, 16 beams keep every 2-token prefix, so beam search
    # over 3 tokens is exhaustive: it must return the continuation with the highest
    # probability, computed here from full forward passes over all 4**3 candidates. The weights
    # (drawn from a fixed seed) and the prompt make a case where the greedy choice is not the
    # best continuation, so beam search that degenerates to greedy fails.
    config = TransformerConfig.from_preset("nano", vocab_size=NUM_SPECIAL + 4)
    model = build_model(config)
    rng = np.random.default_rng(34)
    for weight in model.weights:
        weight.assign(rng.normal(0, 0.5, weight.shape).astype("float32"))
    prompt = [3, 3, 4]
    candidates = np.array(list(itertools.product(range(NUM_SPECIAL, NUM_SPECIAL + 4), repeat=3)))
    windows = np.zeros((len(candidates), config.seq_len), np.int32)
    windows[:, :3] = prompt
    windows[:, 3:6] = candidates
    logits = model(windows, training=False).numpy().astype(np.float64)[:, 2:5, NUM_SPECIAL:]
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))  # special tokens excluded
    scores = np.take_along_axis(log_probs, (candidates - NUM_SPECIAL)[..., None], -1).sum((1, 2))
    best, runner_up = np.sort(scores)[-1], np.sort(scores)[-2]
    assert best - runner_up > 0.05  # a clear winner
    expected = candidates[np.argmax(scores)].tolist()
    assert generate_ids(model, config, prompt, 3, sampler="greedy") != expected
    assert generate_ids(model, config, prompt, 3, sampler="beam", num_beams=16) == expected


# --- padding, unknown and start tokens are never generated -------------------------------------


def favour_special_tokens(logits):
    """Logits (..., vocab) with padding, unknown and start-of-text made by far the most likely."""
    special = tf.range(tf.shape(logits)[-1]) < NUM_SPECIAL
    return tf.where(special, logits + 40.0, logits)


class CachedFavouringSpecial(CachedTransformerDecoder):
    def _call_with_cache(self, token_ids, cache, index):
        logits, cache = super()._call_with_cache(token_ids, cache, index)
        return favour_special_tokens(logits), cache


class StatefulFavouringSpecial(StatefulLSTMDecoder):
    def _step_tensor(self, token, states, index=None):
        logits, states = super()._step_tensor(token, states, index)
        return favour_special_tokens(logits), states


class RecomputeFavouringSpecial(RecomputeDecoder):
    def window_logits(self, window, position):
        return favour_special_tokens(super().window_logits(window, position))


@pytest.fixture(scope="module")
def favouring_special(trained):
    """Decoders of the trained runs whose logits favour the special tokens, made once per
    module so that each compiles its steps once for all samplers."""
    kinds = {"cached": ("transformer", CachedFavouringSpecial),
             "recomputing": ("transformer", RecomputeFavouringSpecial),
             "stateful-lstm": ("lstm", StatefulFavouringSpecial)}
    return {kind: (trained[name], decoder_class(trained[name].model, trained[name].model_config))
            for kind, (name, decoder_class) in kinds.items()}


@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("kind", ["cached", "recomputing", "stateful-lstm"])
def test_special_tokens_are_never_generated_even_when_most_likely(favouring_special, kind,
                                                                  sampler):
    run, decoder = favouring_special[kind]
    prompt = prompt_ids(run)
    assert np.argmax(decoder.start(np.array([prompt]))) < NUM_SPECIAL  # what would be chosen
    # 40 tokens cross the 32-token window (one slide); beam search stays within one window.
    new_tokens = 20 if sampler == "beam" else 40
    ids = decode_ids(decoder, prompt, new_tokens, run.model_config.seq_len, sampler=sampler,
                     seed=0, top_k=5, top_p=0.95)
    assert len(ids) == new_tokens and min(ids) >= NUM_SPECIAL


@pytest.mark.parametrize("which", ["transformer", "rotary_transformer"])
def test_generation_past_the_context_slides_the_window(which, request):
    model, config = request.getfixturevalue(which)  # seq_len 32
    long_run = 3 * config.seq_len
    a = generate_ids(model, config, [5, 6], long_run, sampler="greedy")
    b = generate_ids(model, config, [5, 6], long_run, sampler="greedy", cached=False)
    assert a == b and len(a) == long_run


def test_long_prompts_are_cropped_to_the_context(transformer, lstm):
    for model, config in (transformer, lstm):
        prompt = list(np.random.default_rng(2).integers(3, 23, size=config.seq_len + 17))
        cropped = prompt[-config.seq_len:]
        assert generate_ids(model, config, prompt, 8) == generate_ids(model, config, cropped, 8)


def test_same_seed_same_tokens_and_greedy_is_deterministic(lstm):
    model, config = lstm
    assert generate_ids(model, config, [4], 15, sampler="top_k", seed=7) == \
        generate_ids(model, config, [4], 15, sampler="top_k", seed=7)
    assert generate_ids(model, config, [4], 15) == generate_ids(model, config, [4], 15)


# --- what is kept between calls ----------------------------------------------------------------


@pytest.mark.parametrize("which, parts", [("transformer", TransformerParts),
                                          ("lstm", LSTMParts)])
def test_repeated_generation_reuses_the_compiled_decoder(which, parts, request, monkeypatch):
    model, config = request.getfixturevalue(which)
    generate_ids(model, config, [5, 6], 8, sampler="top_k", seed=1)
    decoder = make_decoder(model, config)
    # Tracing runs the Python step; running what was compiled does not.
    traces = []
    step = "call_with_cache" if parts is TransformerParts else "step"
    original = getattr(parts, step)

    def counted(*args, **kwargs):
        traces.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(parts, step, counted)
    generate_ids(model, config, [5, 6], 8, sampler="top_k", seed=1)
    assert make_decoder(model, config) is decoder and traces == []


def test_a_model_no_longer_used_is_freed():
    config = TransformerConfig.from_preset("nano", vocab_size=23)
    first = build_model(config)
    generate_ids(first, config, [5], 2)  # its decoder compiled and kept
    freed = weakref.ref(first)
    del first
    for _ in range(decoders._DECODERS.max_size):  # newer models' decoders push it out
        model = build_model(config)
        make_decoder(model, config)
    del model
    gc.collect()
    assert freed() is None


# --- samplers on a fake next-token function over a tiny alphabet -----------------------------

ALPHABET = "abcd"  # ids 3..6; id of a character = 3 + its index


class FakeDecoder:
    """Next-token logits from a rule: after x comes the next letter (d -> a), clearly favoured,
    with the letter after that second, and the rest far behind."""

    max_context = None

    def __init__(self):
        self.contexts = []

    def _logits(self, last):
        logits = np.full((1, 7), -30.0, dtype=np.float32)
        nxt = 3 + ((last - 3 + 1) % 4) if last >= 3 else 3
        logits[0, nxt] = 5.0
        logits[0, 3 + (nxt - 3 + 1) % 4] = 3.0
        return logits

    def start(self, context):
        self.contexts.append(np.asarray(context).tolist())
        return self._logits(int(np.asarray(context)[0, -1]))

    def step(self, tokens):
        return self._logits(int(np.asarray(tokens)[0]))

    def beam_start(self, context):
        return ()

    def beam_next(self, prompt, cache, index):
        import tensorflow as tf

        last = tf.cast(prompt[:, index - 1], tf.int32)
        nxt = 3 + (last - 3 + 1) % 4
        logits = tf.fill((tf.shape(prompt)[0], 7), -30.0)
        logits += 35.0 * tf.one_hot(nxt, 7)
        return logits, None, cache


def fake_text(sampler, prompt="a", n=6, seed=None, **options):
    ids = [3 + ALPHABET.index(c) for c in prompt]
    chosen = make_sampler(sampler, seed=seed, **options)
    if sampler == "beam":
        new = beam_search(FakeDecoder(), ids, n, chosen, seq_len=64)
    else:
        new = decode_loop(FakeDecoder(), ids, n, chosen, seq_len=64)
    return "".join(ALPHABET[i - 3] for i in new)


@pytest.mark.parametrize("sampler, options", [
    ("greedy", {}),
    ("top_k", {"top_k": 1}),
    ("top_p", {"top_p": 0.5}),
    ("temperature", {"temperature": 0.05}),
    ("beam", {"num_beams": 3}),
])
def test_each_sampler_on_the_fake_alphabet(sampler, options):
    assert fake_text(sampler, "a", 6, seed=0, **options) == "bcdabc"
    assert fake_text(sampler, "cd", 3, seed=0, **options) == "abc"


def test_top_k_never_leaves_the_top_k():
    text = fake_text("top_k", "a", 300, seed=1, top_k=2, temperature=5.0)
    follows = {"a": "bc", "b": "cd", "c": "da", "d": "ab"}
    previous = "a"
    for char in text:
        assert char in follows[previous]
        previous = char
    assert len(set(text)) == 4  # the second choice is taken sometimes at this temperature


def test_empty_prompt_starts_from_the_start_token():
    decoder = FakeDecoder()
    decode_loop(decoder, [], 3, make_sampler("greedy"), seq_len=8)
    assert decoder.contexts == [[[BOS_ID]]]


def test_unknown_sampler():
    with pytest.raises(TflError, match="did you mean 'top_k'"):
        make_sampler("topk")


@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("setting, message", [
    ({"temperature": 0}, "temperature"), ({"temperature": -1.0}, "temperature"),
    ({"temperature": float("nan")}, "temperature"), ({"temperature": float("inf")}, "temperature"),
    ({"top_k": 0}, "top_k"), ({"top_k": 2.5}, "top_k"), ({"top_p": 0}, "top_p"),
    ({"top_p": 1.5}, "top_p"), ({"top_p": float("nan")}, "top_p"), ({"num_beams": 0}, "num_beams"),
    ({"num_beams": -2}, "num_beams")])
def test_an_impossible_setting_is_refused_whatever_the_sampler(sampler, setting, message):
    with pytest.raises(TflError, match=message):
        make_sampler(sampler, **setting)


def test_top_k_above_the_vocabulary_keeps_every_token(trained):
    run = trained["transformer"]
    vocab_size = run.model_config.vocab_size
    args = (run.model, run.model_config, prompt_ids(run), 30)
    assert generate_ids(*args, sampler="top_k", top_k=vocab_size + 100, seed=4) == \
        generate_ids(*args, sampler="top_k", top_k=vocab_size, seed=4)


def test_max_new_tokens_is_checked(transformer):
    model, config = transformer
    assert generate_ids(model, config, [5], 0) == []
    for bad in (-1, 2.5):
        with pytest.raises(TflError, match="max_new_tokens"):
            generate_ids(model, config, [5], bad)


def test_beam_search_stays_within_one_window(transformer):
    model, config = transformer
    with pytest.raises(TflError, match="within one context window"):
        generate_ids(model, config, [5] * 30, 10, sampler="beam")


# --- the text API and the CLI ------------------------------------------------------------------


def test_generate_text_streams_and_refuses_unknown_characters(trained_runs, trained):
    pieces = []
    text = generate(trained_runs["transformer"], "the ", 20, sampler="top_k", seed=5,
                    on_text=pieces.append)
    assert "".join(pieces) == text and len(text) == 20
    run = trained["transformer"]  # the same run, loaded: the same text
    assert generate(run, "the ", 20, sampler="top_k", seed=5) == text
    with pytest.raises(TflError, match="'Z'.*'é'|'é'.*'Z'"):
        generate(run, "Zé the", 5)


def test_cli_generate(trained_runs, capsys):
    from tfl.cli import main

    # --top-k above the vocabulary: every token is kept, and a note on stderr says so.
    command = ["generate", str(trained_runs["transformer"]), "--prompt", "the",
               "--max-new-tokens", "12", "--seed", "1", "--top-k", "1000"]
    assert main(command + ["--json"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)  # the note does not spoil the JSON on stdout
    assert result["prompt"] == "the" and len(result["text"]) == 12
    assert captured.err.startswith("tfl: note: --top-k 1000 is more than the")
    assert captured.err.count("\n") == 1
    assert main(command) == 0
    assert capsys.readouterr().out == "the" + result["text"] + "\n"
    assert main(command[:-2] + ["--prompt", "~~"]) == 2
    captured = capsys.readouterr()
    assert "characters not in the tokenizer's vocabulary: '~'" in captured.err
    assert captured.out == ""  # the prompt is not printed before the error
