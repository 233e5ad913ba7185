import itertools
import math

import numpy as np
import pytest

from tfl.errors import TflError
from tfl.models.ngram import NGramLM


@pytest.mark.parametrize("smoothing", ["kneser_ney", "add_k"])
@pytest.mark.parametrize("order", [1, 2, 4])
def test_probabilities_sum_to_one_for_seen_and_unseen_contexts(order, smoothing):
    rng = np.random.default_rng(0)
    ids = rng.integers(3, 9, size=400).tolist()
    model = NGramLM(order, vocab_size=10, smoothing=smoothing).fit(ids)
    contexts = [tuple(ids[5 : 5 + order - 1]), (9,) * (order - 1), ()]
    for context in contexts:
        assert sum(model.prob(context, w) for w in range(10)) == pytest.approx(1.0, abs=1e-9)


def test_add_k_matches_a_hand_count():
    ids = [3, 4, 3, 5, 3, 4]
    model = NGramLM(2, vocab_size=6, smoothing="add_k", k=1.0).fit(ids)
    # c(3,4) = 2, c(3) as a context = 3, V = 6
    assert model.prob((3,), 4) == pytest.approx((2 + 1) / (3 + 6))


def test_a_deterministic_sequence_is_learned():
    ids = list(itertools.islice(itertools.cycle([3, 4, 5, 6]), 400))
    result = NGramLM(3, vocab_size=7).fit(ids).evaluate(ids[:50])
    assert result["perplexity"] < 1.1
    assert result["loss"] == pytest.approx(math.log(result["perplexity"]))


def test_higher_orders_beat_unigrams_on_real_text():
    from tfl.data import load_corpus
    from tfl.models.ngram import ngram_baseline
    from tfl.tokenizers import build_tokenizer

    corpus = load_corpus("python_docs")
    tok = build_tokenizer("char", corpus.train)
    ppl = {n: ngram_baseline(corpus, tok, order=n, max_chars=5000)["perplexity"] for n in (1, 3)}
    assert ppl[3] < ppl[1] / 2


def test_bad_arguments():
    with pytest.raises(TflError, match="order"):
        NGramLM(0, 5)
    with pytest.raises(TflError, match="smoothing"):
        NGramLM(2, 5, smoothing="witten_bell")
