"""Corpora: named text collections and local files, each with a fixed train/validation/test split.

Named corpora:
- `tiny_shakespeare`: 1,115,394 characters of Shakespeare (the char-rnn / nanoGPT corpus).
  Looked for first in a local data directory (`data_dir=` or the `TFL_DATA_DIR` environment
  variable, `os.pathsep`-separated), then downloaded once with `keras.utils.get_file` and cached.
  Its sha256 is checked either way.
- `python_docs`: about 465,000 characters of English technical prose from the standard library's
  `pydoc_data.topics`. Present on every CPython install, so it always works offline.

Any path is a corpus too: a UTF-8 text file, a directory (its files, sorted, joined by a blank
line) or a glob such as `books/*.txt`. A leading byte-order mark is dropped and Windows line
endings become `\n` (`normalize_newlines`).

>>> corpus = load_corpus("python_docs")
>>> sizes = corpus.split_sizes()
>>> sizes["train"] + sizes["validation"] + sizes["test"] == len(corpus.text)
True
"""

import glob
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from tfl.errors import CorpusUnavailableError, TflError, did_you_mean

SPLITS = ("train", "validation", "test")

TINY_SHAKESPEARE_URL = "https://storage.googleapis.com/download.tensorflow.org/data/shakespeare.txt"
TINY_SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
TINY_SHAKESPEARE_FILENAMES = ("tiny_shakespeare.txt", "shakespeare.txt")

# nanoGPT and char-rnn use the first 90% for training and the last 10% for validation, with no
# test split; keeping their split keeps our numbers comparable with theirs.
NANOGPT_SPLIT = (0.9, 0.1, 0.0)
DEFAULT_SPLIT = (0.9, 0.05, 0.05)


@dataclass(frozen=True)
class Corpus:
    """A text and where it splits into train, validation and test (first, middle, last part).

    Args:
        name: the registered name, or the path the text was read from.
        text: the whole text.
        split_fractions: fractions of characters for (train, validation, test); sum to 1.
        source: where the text came from (a file, a URL, a module).
    """

    name: str
    text: str = field(repr=False)
    split_fractions: tuple = DEFAULT_SPLIT
    source: str = ""

    def __post_init__(self):
        if len(self.split_fractions) != 3 or abs(sum(self.split_fractions) - 1) > 1e-9:
            raise TflError(
                f"split fractions {self.split_fractions} must be three numbers "
                "(train, validation, test) that sum to 1"
            )

    def _boundaries(self):
        n = len(self.text)
        train_end = int(n * self.split_fractions[0])
        if self.split_fractions[2] == 0:
            return train_end, n
        return train_end, train_end + int(n * self.split_fractions[1])

    @property
    def train(self):
        return self.text[: self._boundaries()[0]]

    @property
    def validation(self):
        train_end, val_end = self._boundaries()
        return self.text[train_end:val_end]

    @property
    def test(self):
        return self.text[self._boundaries()[1] :]

    def split(self, name):
        """The text of split `name` ("train", "validation" or "test")."""
        if name not in SPLITS:
            raise TflError(f"unknown split {name!r}; {did_you_mean(name, SPLITS)}")
        return getattr(self, name)

    def split_sizes(self):
        """Characters per split, e.g. {"train": 1003854, "validation": 111540, "test": 0}."""
        return {name: len(self.split(name)) for name in SPLITS}


# --- reading local text ----------------------------------------------------------------------


def read_text_file(path):
    """Read a UTF-8 text file, refusing empty, binary and non-UTF-8 files with a clear message."""
    path = Path(path)
    if not path.exists():
        raise TflError(f"no such file: {path}; give the path to a UTF-8 text file")
    if path.is_dir():
        raise TflError(f"{path} is a directory; give a text file (load_corpus accepts directories)")
    data = path.read_bytes()
    if not data.strip():
        raise TflError(f"{path} is empty; a corpus needs some text")
    if b"\x00" in data:
        raise TflError(f"{path} looks binary (it contains NUL bytes); give a UTF-8 text file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise TflError(
            f"{path} is not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}); "
            "convert it first, e.g. `iconv -f latin1 -t utf-8 in.txt > out.txt`"
        ) from None
    return normalize_newlines(text)


def normalize_newlines(text):
    """`text` without a leading byte-order mark and with Windows (CRLF) and old Mac (CR) line
    endings turned into `\\n`, so that neither becomes a character of the vocabulary.

    >>> normalize_newlines("\\ufeffline one\\r\\nline two\\r")
    'line one\\nline two\\n'
    """
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def _local_corpus(spec):
    path = Path(spec)
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(
            p for p in path.rglob("*") if p.is_file() and not any(
                part.startswith(".") for part in p.relative_to(path).parts)
        )
        if not files:
            raise TflError(f"directory {path} holds no files; put .txt files in it")
    else:
        files = sorted(Path(p) for p in glob.glob(str(spec), recursive=True) if Path(p).is_file())
        if not files:
            return None
    text = "\n\n".join(read_text_file(f) for f in files)
    return Corpus(name=str(spec), text=text, split_fractions=DEFAULT_SPLIT, source=str(spec))


# --- named corpora ---------------------------------------------------------------------------


def data_dirs(data_dir=None):
    """Directories searched for local copies of named corpora, in order."""
    dirs = []
    if data_dir:
        dirs.append(Path(data_dir))
    for entry in os.environ.get("TFL_DATA_DIR", "").split(os.pathsep):
        if entry:
            dirs.append(Path(entry))
    return dirs


def _sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def tiny_shakespeare_path(data_dir=None):
    """A verified local copy of Tiny Shakespeare: from a data directory, else downloaded once."""
    for directory in data_dirs(data_dir):
        for filename in TINY_SHAKESPEARE_FILENAMES:
            candidate = directory / filename
            if candidate.is_file():
                digest = _sha256(candidate)
                if digest != TINY_SHAKESPEARE_SHA256:
                    raise TflError(
                        f"{candidate} has sha256 {digest[:12]}..., not Tiny Shakespeare's "
                        f"{TINY_SHAKESPEARE_SHA256[:12]}...; replace or remove that file"
                    )
                return candidate
    from keras.utils import get_file  # imports TensorFlow: only when a download may be needed

    try:
        return Path(
            get_file(
                fname="tiny_shakespeare.txt",
                origin=TINY_SHAKESPEARE_URL,
                file_hash=TINY_SHAKESPEARE_SHA256,
                cache_subdir="tfl",
                cache_dir=os.environ.get("TFL_CACHE_DIR") or None,
            )
        )
    except Exception as e:  # urllib raises many types; all mean "not available here"
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CorpusUnavailableError(
            f"could not download tiny_shakespeare ({reason[:120]}) and there is no cached copy; "
            "without network, put tiny_shakespeare.txt in a folder and set TFL_DATA_DIR to it "
            "(or pass --data-dir), or use the offline corpus python_docs"
        ) from None


def _load_tiny_shakespeare(data_dir=None):
    path = tiny_shakespeare_path(data_dir)
    return Corpus(
        name="tiny_shakespeare",
        text=path.read_text(encoding="utf-8"),
        split_fractions=NANOGPT_SPLIT,
        source=str(path),
    )


def _load_python_docs(data_dir=None):
    from pydoc_data.topics import topics

    text = "\n\n".join(topics[key].strip("\n") for key in sorted(topics))
    return Corpus(
        name="python_docs", text=text, split_fractions=DEFAULT_SPLIT, source="pydoc_data.topics"
    )


_REGISTRY = {
    "tiny_shakespeare": (
        _load_tiny_shakespeare,
        "Tiny Shakespeare, 1.1M characters; split 90/10 like nanoGPT (downloaded once, cached)",
    ),
    "python_docs": (
        _load_python_docs,
        "Python's pydoc topics, ~465K characters of technical English; always available offline",
    ),
}


def available_corpora():
    """Registered corpus names and a one-line description of each."""
    return {name: description for name, (_, description) in _REGISTRY.items()}


def load_corpus(name_or_path, data_dir=None):
    """Load a registered corpus by name, or a local text file, directory or glob.

    >>> load_corpus("python_docs").name
    'python_docs'
    """
    spec = str(name_or_path)
    if spec in _REGISTRY:
        return _REGISTRY[spec][0](data_dir)
    corpus = _local_corpus(spec)
    if corpus is not None:
        return corpus
    looks_like_a_name = not any(ch in spec for ch in "/\\.*?")
    if looks_like_a_name:
        raise TflError(
            f"unknown corpus {spec!r}: {did_you_mean(spec, list(_REGISTRY))}; "
            "or give the path of a text file, directory or glob"
        )
    raise TflError(f"no such file: {spec}; give the path to a UTF-8 text file, directory or glob")


def load_corpus_or_fallback(name, data_dir=None, log=print):
    """The corpus `name`; or, with a note to `log`, the offline `python_docs` corpus when `name`
    cannot be had here (no local copy and no network). Tutorials use this so they run anywhere.

    >>> load_corpus_or_fallback("python_docs").name
    'python_docs'
    """
    try:
        return load_corpus(name, data_dir=data_dir)
    except CorpusUnavailableError as e:
        log(f"{name} is not available here ({e}).")
        log("Falling back to the offline corpus python_docs.")
        return load_corpus("python_docs")
