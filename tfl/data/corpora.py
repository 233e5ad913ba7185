"""Corpora: named text collections and local files, each with a fixed train/validation/test split.

Named corpora:
- `tiny_shakespeare`: 1,115,394 characters of Shakespeare (the char-rnn / nanoGPT corpus).
  Looked for first in a local data directory (`data_dir=` or the `TFL_DATA_DIR` environment
  variable, `os.pathsep`-separated), then downloaded once with `keras.utils.get_file` and cached.
  Its sha256 is checked either way.
- `tang_poetry`: the Complete Tang Poems (全唐诗) in classical Chinese, traditional
  characters, from the `chinese-poetry/chinese-poetry` repository: 58 JSON files, each checked
  against its published sha256, read in numeric order as plain text (title, one line per
  paragraph, a blank line between poems). Looked for in `tang_poetry/` of a data directory.
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
from dataclasses import dataclass, field
from pathlib import Path

from tfl.data.fetch import verified_file
from tfl.errors import CorpusUnavailableError, TflError, did_you_mean

SPLITS = ("train", "validation", "test")

TINY_SHAKESPEARE_URL = "https://storage.googleapis.com/download.tensorflow.org/data/shakespeare.txt"
TINY_SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
TINY_SHAKESPEARE_FILENAMES = ("tiny_shakespeare.txt", "shakespeare.txt")
# The chinese-poetry repository's raw files, folder 全唐诗 (percent-encoded).
TANG_POETRY_URL = ("https://raw.githubusercontent.com/chinese-poetry/chinese-poetry/master/"
                   "%E5%85%A8%E5%94%90%E8%AF%97/")

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


def tiny_shakespeare_path(data_dir=None):
    """A verified local copy of Tiny Shakespeare: from a data directory, else downloaded once."""
    try:
        return verified_file("tiny_shakespeare.txt", TINY_SHAKESPEARE_URL, TINY_SHAKESPEARE_SHA256,
                             data_dir=data_dir, dataset="tiny_shakespeare",
                             other_names=TINY_SHAKESPEARE_FILENAMES[1:])
    except CorpusUnavailableError as e:
        raise CorpusUnavailableError(f"{e}, or use the offline corpus python_docs") from None


def _load_tiny_shakespeare(data_dir=None):
    path = tiny_shakespeare_path(data_dir)
    return Corpus(
        name="tiny_shakespeare",
        text=read_text_file(path),
        split_fractions=NANOGPT_SPLIT,
        source=str(path),
    )


def tang_poetry_files(data_dir=None):
    """The verified files of the Complete Tang Poems, in numeric order (0, 1000, ..., 57000)."""
    from tfl.data.tang_poetry_hashes import SHA256

    names = sorted(SHA256, key=lambda name: int(name.split(".")[2]))
    return [verified_file(name, TANG_POETRY_URL + name, SHA256[name], subdir="tang_poetry",
                          data_dir=data_dir, dataset="tang_poetry") for name in names]


def poems_as_text(poems):
    """Poems (dicts with `title` and `paragraphs`) as plain text: the title, one line per
    paragraph, a blank line between poems.

    >>> print(poems_as_text([{"title": "靜夜思", "paragraphs": ["床前明月光，疑是地上霜。"]},
    ...                      {"title": "春曉", "paragraphs": ["春眠不覺曉，處處聞啼鳥。"]}]))
    靜夜思
    床前明月光，疑是地上霜。
    <BLANKLINE>
    春曉
    春眠不覺曉，處處聞啼鳥。
    """
    return "\n\n".join("\n".join([poem["title"], *poem["paragraphs"]]) for poem in poems)


def _load_tang_poetry(data_dir=None):
    import json

    files = tang_poetry_files(data_dir)
    poems = [poem for path in files for poem in json.loads(path.read_text(encoding="utf-8"))]
    return Corpus(name="tang_poetry", text=poems_as_text(poems) + "\n",
                  split_fractions=DEFAULT_SPLIT, source=str(files[0].parent))


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
    "tang_poetry": (
        _load_tang_poetry,
        "the Complete Tang Poems (全唐诗), 57,607 classical Chinese poems, ~4.5M characters "
        "(downloaded once, cached)",
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
