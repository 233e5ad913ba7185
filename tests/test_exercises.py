"""Every exercise check accepts the teachers' solution and rejects typical wrong answers."""

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from tfl.exercises import CHECKS, ExerciseError, report

SOLUTIONS = Path(__file__).resolve().parents[1] / "notebooks" / "solutions" / "exercise_solutions.py"
spec = importlib.util.spec_from_file_location("exercise_solutions", SOLUTIONS)
solutions = importlib.util.module_from_spec(spec)
spec.loader.exec_module(solutions)

WRONG = {
    "perplexity": lambda losses: math.exp(sum(losses)),  # forgot the mean
    "bits_per_character": lambda loss, tokens, chars: loss / math.log(2),  # ignores chars/token
    "causal_mask": lambda n: np.triu(np.ones((n, n), dtype=bool)),  # looks at the future
    "attention": lambda q, k, v, mask: solutions.attention(q * math.sqrt(q.shape[-1]), k, v, mask),
    "top_k_filter": lambda logits, k: np.where(logits >= np.sort(logits)[-k - 1], logits, -np.inf),
    "softmax": lambda logits, t: np.exp(logits * t) / np.exp(logits * t).sum(),  # multiplies
    "block_parameters": lambda d, f: 4 * d * d + 2 * d * f,  # no biases or norms
    "lstm_parameters": lambda i, h: i * h + h * h + h,  # one gate only
    "bigram_probability": lambda text, p, c, k, v: (text.count(p + c) + k) / (text.count(p) + k * v),
    "make_windows": lambda ids, n: (  # overlapping windows, one token apart
        np.array([ids[i : i + n] for i in range(len(ids) - n)]),
        np.array([ids[i + 1 : i + n + 1] for i in range(len(ids) - n)])),
}


def test_there_are_at_least_eight_exercises():
    assert len(CHECKS) >= 8 and set(WRONG) == set(CHECKS)


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_check_accepts_the_solution(name):
    assert CHECKS[name](getattr(solutions, name)).startswith("correct")


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_check_rejects_a_wrong_answer(name):
    with pytest.raises(ExerciseError):
        CHECKS[name](WRONG[name])


def test_report_never_raises(capsys):
    def unfinished(*args):
        raise NotImplementedError

    assert report(CHECKS["perplexity"], unfinished).startswith("not done yet")
    assert report(CHECKS["perplexity"], WRONG["perplexity"]).startswith("not yet right")
    assert report(CHECKS["causal_mask"], lambda n: 1 / 0).startswith("your function raised")
