"""Shared test set-up: offline data, quiet TensorFlow, tiny fixtures."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Named corpora are found in ../shared/data, as a user with a local copy would set it up.
if SHARED_DATA.is_dir():
    os.environ.setdefault("TFL_DATA_DIR", str(SHARED_DATA))


@pytest.fixture(scope="session")
def shakespeare_path():
    path = SHARED_DATA / "tiny_shakespeare.txt"
    if not path.is_file():
        pytest.skip("../shared/data/tiny_shakespeare.txt is not beside this checkout")
    return path


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
