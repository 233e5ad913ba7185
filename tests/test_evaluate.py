import math

import numpy as np
import pytest

from tfl.errors import TflError
from tfl.inference.evaluate import eval_windows, evaluate_ids, evaluate_run, evaluate_split
from tfl.models import LSTMConfig, TransformerConfig, build_model
from tfl.tokenizers import CharTokenizer


def reference_mean_nll(model, ids, seq_len):
    """Independent computation: numpy log-softmax over each window, no padding involved."""
    total, count = 0.0, 0
    for start in range(0, len(ids) - 1, seq_len):
        inputs = np.array(ids[start : start + seq_len])
        targets = np.array(ids[start + 1 : start + seq_len + 1])
        n = len(targets)
        window = np.zeros((1, seq_len), dtype="int32")
        window[0, : len(inputs)] = inputs
        logits = model(window).numpy()[0, :n].astype(np.float64)
        log_probs = logits - logits.max(-1, keepdims=True)
        log_probs -= np.log(np.exp(log_probs).sum(-1, keepdims=True))
        total -= log_probs[np.arange(n), targets].sum()
        count += n
    return total / count, count


@pytest.mark.parametrize("config", [TransformerConfig.from_preset("nano", vocab_size=11),
                                    LSTMConfig.from_preset("nano", vocab_size=11)],
                         ids=["transformer", "lstm"])
def test_perplexity_is_exp_of_the_independent_mean_cross_entropy(config):
    model = build_model(config)
    ids = np.random.default_rng(1).integers(3, 11, size=203).tolist()  # last window is partial
    result = evaluate_ids(model, ids, config.seq_len, batch_size=4)
    expected_loss, expected_count = reference_mean_nll(model, ids, config.seq_len)
    assert result["tokens"] == expected_count == 202
    assert result["loss"] == pytest.approx(expected_loss, rel=1e-5)
    assert result["perplexity"] == pytest.approx(math.exp(expected_loss), rel=1e-5)


def test_padding_is_excluded_from_the_loss():
    inputs, targets, weights = eval_windows([5, 6, 7, 8, 9], seq_len=3)
    np.testing.assert_array_equal(inputs, [[5, 6, 7], [8, 9, 0]])
    np.testing.assert_array_equal(targets, [[6, 7, 8], [9, 0, 0]])
    np.testing.assert_array_equal(weights, [[1, 1, 1], [1, 0, 0]])


def test_bits_per_character_of_a_char_model():
    config = TransformerConfig.from_preset("nano", vocab_size=11)
    model = build_model(config)
    tok = CharTokenizer.train("abcdefgh")
    result = evaluate_split(model, tok, "abcdefgh" * 20, config.seq_len)
    assert result["bits_per_char"] == pytest.approx(result["loss"] / math.log(2))


def test_too_short_to_evaluate():
    model = build_model(TransformerConfig.from_preset("nano", vocab_size=11))
    with pytest.raises(TflError, match="at least 2"):
        evaluate_ids(model, [4], 32)


@pytest.mark.parametrize("options, message", [
    ({"max_chars": 0}, "max_chars"), ({"max_chars": -5}, "max_chars"),
    ({"ngram_order": -1}, "ngram_order"), ({"ngram_order": 2.5}, "ngram_order"),
    ({"splits": ["dev"]}, "unknown split")])
def test_evaluate_run_checks_its_settings_before_loading_anything(tmp_path, options, message):
    # No run exists here: were the settings checked after loading, the error would be that.
    with pytest.raises(TflError, match=message):
        evaluate_run(tmp_path / "no-run", **options)
