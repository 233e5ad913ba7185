import gc
import json
import weakref

import numpy as np
import pytest

from tfl.errors import TflError
from tfl.inference import decoders
from tfl.inference.decoders import (CachedTransformerDecoder, RecomputeDecoder,
                                    StatefulLSTMDecoder, make_decoder)
from tfl.inference.generate import beam_search, decode_loop, generate, generate_ids
from tfl.inference.sampling import make_sampler
from tfl.models import LSTMConfig, TransformerConfig, build_model
from tfl.models.parts import LSTMParts, TransformerParts
from tfl.tokenizers.base import BOS_ID


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


@pytest.mark.parametrize("sampler", ["greedy", "top_k", "top_p", "temperature", "beam"])
def test_cached_and_uncached_generation_agree(transformer, sampler):
    model, config = transformer
    a = generate_ids(model, config, [5, 6], 12, sampler=sampler, seed=3)
    b = generate_ids(model, config, [5, 6], 12, sampler=sampler, seed=3, cached=False)
    assert a == b and len(a) == 12


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
    generate_ids(first, config, [5], 2)
    freed = weakref.ref(first)
    del first
    for _ in range(decoders._DECODERS.max_size):  # newer models push the first one out
        model = build_model(config)
        generate_ids(model, config, [5], 2)
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


def test_bad_sampler_settings():
    with pytest.raises(TflError, match="did you mean 'top_k'"):
        make_sampler("topk")
    with pytest.raises(TflError, match="temperature"):
        make_sampler("temperature", temperature=0)
    with pytest.raises(TflError, match="top_p"):
        make_sampler("top_p", top_p=1.5)


def test_beam_search_stays_within_one_window(transformer):
    model, config = transformer
    with pytest.raises(TflError, match="within one context window"):
        generate_ids(model, config, [5] * 30, 10, sampler="beam")


# --- the text API and the CLI ------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from tfl.training.config import TrainConfig
    from tfl.training.workflow import train

    root = tmp_path_factory.mktemp("gen")
    corpus = root / "toy.txt"
    corpus.write_text("hello world, hello there.\n" * 200)
    train("transformer", "nano", str(corpus), root / "run", log=None,
          train_config=TrainConfig(steps=4, eval_interval=4, batch_size=4, eval_batches=1,
                                   sample_tokens=0))
    return root / "run"


def test_generate_text_streams_and_refuses_unknown_characters(tiny_run):
    pieces = []
    text = generate(tiny_run, "hello", 20, sampler="top_k", seed=5, on_text=pieces.append)
    assert "".join(pieces) == text and len(text) == 20
    assert generate(tiny_run, "hello", 20, sampler="top_k", seed=5) == text
    with pytest.raises(TflError, match="'Z'.*'é'|'é'.*'Z'"):
        generate(tiny_run, "Zé hello", 5)


def test_cli_generate(tiny_run, capsys):
    from tfl.cli import main

    assert main(["generate", str(tiny_run), "--prompt", "hel", "--max-new-tokens", "12",
                 "--seed", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["prompt"] == "hel" and len(result["text"]) == 12
    assert main(["generate", str(tiny_run), "--prompt", "hel", "--max-new-tokens", "12",
                 "--seed", "1"]) == 0
    assert capsys.readouterr().out == "hel" + result["text"] + "\n"
    assert main(["generate", str(tiny_run), "--prompt", "~~", "--max-new-tokens", "3"]) == 2
    assert "characters not in the tokenizer's vocabulary: '~'" in capsys.readouterr().err
