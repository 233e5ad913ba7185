"""The count-based baseline: an n-gram language model over token ids.

An n-gram model approximates P(w_t | w_1..w_{t-1}) by P(w_t | the previous n-1 tokens), estimated
from counts. Unseen n-grams would get probability 0 (infinite perplexity), so counts are smoothed:

- add-k: P(w | h) = (c(h, w) + k) / (c(h) + k V).
- interpolated Kneser-Ney: subtract a discount d from every seen count and give the mass freed
  to a lower-order distribution, whose counts are *continuation* counts (in how many distinct
  contexts a word appears) rather than raw counts:
      P(w | h) = max(c(h, w) - d, 0) / c(h) + d N1+(h .) / c(h) * P(w | h'),
  where h' drops the oldest token of h, recursing down to a uniform distribution over V.

>>> model = NGramLM(order=2, vocab_size=5).fit([3, 4, 3, 4, 3, 4, 3])
>>> round(model.prob((3,), 4), 3) > 0.5
True
>>> round(sum(model.prob((3,), w) for w in range(5)), 6)
1.0
"""

import math
import numbers
from collections import Counter, defaultdict

from tfl.errors import TflError, did_you_mean
from tfl.metrics import bits_per_character, perplexity

SMOOTHINGS = ("kneser_ney", "add_k")


def check_order(order):
    """Raise a one-line `TflError` unless `order` is a whole number of at least 1 (1: unigrams).

    >>> check_order(0)
    Traceback (most recent call last):
    ...
    tfl.errors.TflError: n-gram order must be a whole number of at least 1 (1: unigrams), got 0
    """
    if not _is_whole(order) or order < 1:
        raise TflError(f"n-gram order must be a whole number of at least 1 (1: unigrams), "
                       f"got {order}")


def _is_whole(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_smoothing(smoothing):
    if smoothing not in SMOOTHINGS:
        raise TflError(f"unknown smoothing {smoothing!r}; use one of {', '.join(SMOOTHINGS)}")


def check_max_chars(max_chars):
    """Raise a one-line `TflError` unless `max_chars` is None (everything) or at least 1.

    >>> check_max_chars(None), check_max_chars(20_000)
    (None, None)
    """
    if max_chars is not None and (not _is_whole(max_chars) or max_chars < 1):
        raise TflError(f"max_chars must be a whole number of at least 1 (or left out for the "
                       f"whole split), got {max_chars}")


class NGramLM:
    """An n-gram model over ids in `[0, vocab_size)`.

    Args:
        order: n, the number of tokens in an n-gram (context of n - 1 tokens).
        vocab_size: size of the id space (for the uniform floor and add-k).
        smoothing: "kneser_ney" (interpolated, one discount per order) or "add_k".
        k: the added count for add-k.
    """

    def __init__(self, order, vocab_size, smoothing="kneser_ney", k=0.1):
        check_order(order)
        _check_smoothing(smoothing)
        self.order, self.vocab_size, self.smoothing, self.k = order, vocab_size, smoothing, k

    def fit(self, ids):
        """Count n-grams of every order up to `order` in `ids`."""
        ids = [int(i) for i in ids]
        if len(ids) < self.order:
            raise TflError(f"{len(ids)} tokens are too few to fit a {self.order}-gram model")
        n = self.order
        # counts[m][(h, w)]: raw counts of m-grams (m = len(h) + 1).
        self.counts = [None] + [Counter() for _ in range(n)]
        for m in range(1, n + 1):
            grams = self.counts[m]
            for t in range(len(ids) - m + 1):
                grams[tuple(ids[t : t + m])] += 1
        self._build_tables()
        return self

    def _build_tables(self):
        n = self.order
        # For each order m: the counts used at that order (raw at the top, continuation below),
        # their context totals, and the number of distinct words seen after each context.
        self.tables = {}
        for m in range(1, n + 1):
            if m == n or self.smoothing == "add_k":
                used = self.counts[m]
            else:
                used = Counter(gram[1:] for gram in self.counts[m + 1])
            context_total = defaultdict(int)
            context_types = defaultdict(int)
            for gram, c in used.items():
                context_total[gram[:-1]] += c
                context_types[gram[:-1]] += 1
            count_of_count = Counter(c for c in used.values() if c <= 2)
            n1, n2 = count_of_count[1], count_of_count[2]
            discount = n1 / (n1 + 2 * n2) if n1 + n2 else 0.75  # Ney's estimate
            self.tables[m] = (used, context_total, context_types, discount)

    def prob(self, context, token):
        """P(token | context); `context` is a tuple of preceding ids (only the last n-1 are used)."""
        context = tuple(context)[-(self.order - 1):] if self.order > 1 else ()
        if self.smoothing == "add_k":
            used, context_total, _, _ = self.tables[len(context) + 1]
            return (used.get(context + (token,), 0) + self.k) / (
                context_total.get(context, 0) + self.k * self.vocab_size
            )
        return self._kneser_ney(context, token)

    def _kneser_ney(self, context, token):
        p = 1.0 / self.vocab_size
        for m in range(1, len(context) + 2):  # from unigrams up to the full context
            h = context[len(context) - (m - 1):] if m > 1 else ()
            used, context_total, context_types, d = self.tables[m]
            total = context_total.get(h, 0)
            if total == 0:
                continue  # unseen context: keep the lower-order estimate
            c = used.get(h + (token,), 0)
            p = max(c - d, 0) / total + d * context_types[h] / total * p
        return p

    def log_prob_sum(self, ids):
        """Total natural-log probability of `ids[1:]`, each given what precedes it."""
        ids = [int(i) for i in ids]
        total = 0.0
        for t in range(1, len(ids)):
            total += math.log(self.prob(tuple(ids[max(0, t - self.order + 1) : t]), ids[t]))
        return total

    def evaluate(self, ids):
        """Loss (nats per token), perplexity and token count on `ids`, as `evaluate_ids` reports."""
        if len(ids) < 2:
            raise TflError("at least 2 tokens are needed to measure perplexity")
        count = len(ids) - 1
        loss = -self.log_prob_sum(ids) / count
        return {"loss": loss, "perplexity": perplexity(loss), "tokens": count}


def ngram_baseline(corpus, tokenizer, order=5, smoothing="kneser_ney", split="validation",
                   max_chars=None):
    """Fit an n-gram model on the training split of `corpus` and evaluate it on `split`.

    >>> from tfl.data import load_corpus
    >>> from tfl.tokenizers import build_tokenizer
    >>> corpus = load_corpus("python_docs")
    >>> result = ngram_baseline(corpus, build_tokenizer("char", corpus.train), order=3,
    ...                         max_chars=20_000)
    >>> 2 < result["perplexity"] < 20
    True
    """
    check_order(order)
    check_max_chars(max_chars)
    train_ids = tokenizer.encode(corpus.train)
    text = corpus.split(split)[: max_chars or None]
    ids = tokenizer.encode(text)
    model = NGramLM(order, tokenizer.vocab_size, smoothing=smoothing).fit(train_ids)
    result = model.evaluate(ids)
    result["bits_per_char"] = bits_per_character(
        result["loss"], result["tokens"], len(text) * result["tokens"] / len(ids)
    )
    result.update(order=order, smoothing=smoothing, split=split)
    return result


def ngram_baselines(corpus, tokenizer="char", orders=(3, 5), vocab_size=None,
                    smoothing="kneser_ney", split="validation", data_dir=None):
    """`ngram_baseline` for several orders on a corpus given by name or path (what `tfl ngram`
    prints): `{"corpus", "tokenizer", "rows": [...]}`, one row per order.

    >>> result = ngram_baselines("python_docs", orders=[2], split="validation")
    >>> [row["model"] for row in result["rows"]]
    ['2-gram kneser_ney']
    """
    from tfl.data.corpora import SPLITS, load_corpus
    from tfl.tokenizers import build_tokenizer

    for order in orders:  # before the corpus is read
        check_order(order)
    if split not in SPLITS:
        raise TflError(f"unknown split {split!r}; {did_you_mean(split, SPLITS)}")
    _check_smoothing(smoothing)
    if tokenizer == "wordpiece":  # learned with TensorFlow Text: import it without its chatter
        from tfl.runtime import import_tensorflow_quietly

        import_tensorflow_quietly()
    corpus = load_corpus(corpus, data_dir=data_dir)
    learned = build_tokenizer(tokenizer, corpus.train, vocab_size=vocab_size)
    rows = [{"model": f"{order}-gram {smoothing}",
             **ngram_baseline(corpus, learned, order=order, smoothing=smoothing, split=split)}
            for order in orders]
    return {"corpus": corpus.name, "tokenizer": tokenizer, "rows": rows}
