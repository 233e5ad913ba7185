"""Shared test set-up: offline data, quiet TensorFlow, tiny fixtures."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Named corpora are found in $TFL_DATA_DIR, or else in ../shared/data, as a user with a local
# copy would set it up.
if SHARED_DATA.is_dir():
    os.environ.setdefault("TFL_DATA_DIR", str(SHARED_DATA))


@pytest.fixture(scope="session")
def shakespeare_path():
    """Tiny Shakespeare, found the way a user's run finds it: `TFL_DATA_DIR` (which defaults to
    ../shared/data here), then tfl's download cache. Tests that need it fail, never skip, when it
    cannot be had."""
    from tfl.data.corpora import tiny_shakespeare_path
    from tfl.errors import CorpusUnavailableError

    try:
        return tiny_shakespeare_path()
    except CorpusUnavailableError as e:
        pytest.fail(f"these tests need Tiny Shakespeare: {e}", pytrace=False)


@pytest.fixture
def text_file(tmp_path):
    """Write `content` (str or bytes) to a file in a temporary directory and return its path."""

    def write(content, name="corpus.txt"):
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    return write


def toy_grammar_text(sentences=4000, seed=0):
    """A learnable corpus: short sentences from a tiny grammar (about 25 distinct characters).
    A model that has learned it scores far better than uniform, so comparisons between a
    model and its exports or decoders are comparisons of something learned."""
    import random

    rng = random.Random(seed)
    subjects = ["the cat", "a dog", "my bird", "the old fox"]
    verbs = ["sees", "likes", "eats", "hides from"]
    objects = ["the fish.", "a red bone.", "some seeds.", "the moon."]
    return "".join(f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)}\n"
                   for _ in range(sentences))


TRAINED_RUN_KINDS = {"transformer": ("transformer", None), "lstm": ("lstm", None),
                     "rotary": ("transformer", {"position": "rotary"})}


@pytest.fixture(scope="session")
def trained_runs(tmp_path_factory):
    """Nano Transformer, LSTM and rotary-Transformer run directories, trained once per test
    session on `toy_grammar_text` until clearly better than uniform. Read-only: a test that
    changes a run copies it first (`shutil.copytree`)."""
    from tfl.training.config import TrainConfig
    from tfl.training.workflow import train

    root = tmp_path_factory.mktemp("trained-runs")
    corpus = root / "toy_grammar.txt"
    corpus.write_text(toy_grammar_text(), encoding="utf-8")
    config = TrainConfig(steps=300, eval_interval=150, batch_size=16, eval_batches=4,
                         learning_rate=3e-3, warmup_steps=20, sample_tokens=0, seed=3,
                         jit_compile=False)
    runs = {}
    for name, (architecture, overrides) in TRAINED_RUN_KINDS.items():
        runs[name] = root / name
        train(architecture, "nano", str(corpus), runs[name], train_config=config,
              model_overrides=overrides, log=None)
    return runs
