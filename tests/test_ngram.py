import itertools
import json
import math
from fractions import Fraction as F

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


# Interpolated Kneser-Ney by hand, on a corpus small enough to count on paper:
#   a a b a b a b a a b      (a = 3, b = 4; V = 5 ids with <pad>, <unk>, <bos>)
# Top order (trigrams) uses raw counts c; lower orders use continuation counts N1+(. h w), the
# number of distinct tokens seen before the n-gram. For each order, with counts c_m:
#   P_m(w | h) = max(c_m(h w) - D_m, 0) / c_m(h .) + D_m * T_m(h) / c_m(h .) * P_{m-1}(w | h')
# where c_m(h .) sums c_m over w, T_m(h) counts the distinct w after h, h' drops h's oldest
# token, P_0 = 1 / V, and D_m = n1 / (n1 + 2 n2) from the counts of counts of order m.
A, B = 3, 4
TOY = [A, A, B, A, B, A, B, A, A, B]
# trigram counts: aab 2, aba 3, bab 2, baa 1            -> n1 = 1, n2 = 2: D3 = 1/5
# continuation counts of bigrams (from trigram types aab, aba, bab, baa):
#   ab 2 (a.ab, b.ab), ba 1, aa 1                       -> n1 = 2, n2 = 1: D2 = 2/4 = 1/2
# continuation counts of unigrams (from bigram types aa, ab, ba): a 2, b 1
#                                                       -> n1 = 1, n2 = 1: D1 = 1/3
D3, D2, D1, V = F(1, 5), F(1, 2), F(1, 3), 5
# unigrams: c(.) = 3, T = 2
P1 = {A: (2 - D1) / 3 + D1 * 2 / 3 / V, B: (1 - D1) / 3 + D1 * 2 / 3 / V}  # 3/5, 4/15
P1_SPECIAL = D1 * 2 / 3 / V  # 2/45
# bigrams: after a: ab 2, aa 1 (c = 3, T = 2); after b: ba 1 (c = 1, T = 1)
P2 = {(A, B): (2 - D2) / 3 + D2 * 2 / 3 * P1[B],  # 53/90
      (A, A): (1 - D2) / 3 + D2 * 2 / 3 * P1[A],  # 11/30
      (B, A): (1 - D2) / 1 + D2 * 1 / 1 * P1[A],  # 4/5
      (B, B): D2 * 1 / 1 * P1[B]}  # 2/15
# trigrams: after aa: b 2 (c = 2, T = 1); after ab: a 3 (c = 3, T = 1);
#           after ba: b 2, a 1 (c = 3, T = 2); bb never seen: the bigram estimate
P3 = {(A, A, B): (2 - D3) / 2 + D3 * 1 / 2 * P2[A, B],  # 863/900
      (A, B, A): (3 - D3) / 3 + D3 * 1 / 3 * P2[B, A],  # 74/75
      (B, A, A): (1 - D3) / 3 + D3 * 2 / 3 * P2[A, A],  # 71/225
      (B, A, B): (2 - D3) / 3 + D3 * 2 / 3 * P2[A, B],  # 458/675
      (B, B, A): P2[B, A]}  # 4/5


def test_kneser_ney_equals_the_hand_computation():
    assert (P1[A], P1[B], P2[A, B], P3[A, A, B], P3[B, A, A]) == \
        (F(3, 5), F(4, 15), F(53, 90), F(863, 900), F(71, 225))  # the arithmetic, checked once
    model = NGramLM(3, vocab_size=V).fit(TOY)
    for (*context, token), expected in P3.items():
        assert model.prob(tuple(context), token) == pytest.approx(float(expected), rel=1e-12)
    for (previous, token), expected in P2.items():  # a context of one token: the bigram level
        assert model.prob((previous,), token) == pytest.approx(float(expected), rel=1e-12)
    for token in (A, B):
        assert model.prob((), token) == pytest.approx(float(P1[token]), rel=1e-12)
    assert model.prob((), 0) == pytest.approx(float(P1_SPECIAL), rel=1e-12)
    # The loss of a sequence is the mean negative log-probability of each token after the first.
    expected_loss = -(math.log(P2[A, B]) + math.log(P3[A, B, A]) + math.log(P3[B, A, B])) / 3
    assert model.evaluate([A, B, A, B])["loss"] == pytest.approx(expected_loss, rel=1e-12)


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
    for order in (0, -1, 2.5):
        with pytest.raises(TflError, match="order"):
            NGramLM(order, 5)
    with pytest.raises(TflError, match="smoothing"):
        NGramLM(2, 5, smoothing="witten_bell")


def test_cli_ngram_json(text_file, capsys):
    from tfl.cli import main

    corpus = text_file("the cat sees the dog. the dog sees a bird.\n" * 300)
    assert main(["ngram", str(corpus), "--order", "1", "3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)  # stdout is the JSON object and nothing else
    assert result["tokenizer"] == "char"
    rows = {row["order"]: row for row in result["rows"]}
    assert set(rows) == {1, 3}
    for row in rows.values():
        assert row["perplexity"] == pytest.approx(math.exp(row["loss"]))
        assert row["split"] == "validation" and row["tokens"] > 0
    uniform = len(set(corpus.read_text()))  # characters that can follow
    assert rows[3]["perplexity"] < rows[1]["perplexity"] < uniform
