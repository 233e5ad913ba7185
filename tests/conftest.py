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
