"""Parallel text for translation: sentence pairs in two languages, split into named sets.

Named data set:
- `multi30k`: Multi30k English-German (WMT16 multimodal task 1): 29,000 training, 1,014
  validation (`val`) and 1,000 test (`test_2016_flickr`, "test2016") pairs of image
  descriptions, raw and cased, as the `multi30k/dataset` repository publishes them (gzip files
  in `data/task1/raw/`). Looked for in `multi30k/` of a data directory first, else downloaded;
  every file is checked against its published sha256.

Any pair of files is a parallel corpus too (`read_parallel_files`): line i of one is the
translation of line i of the other; both must have the same number of lines and no empty line.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "a.en").write_text("A dog runs.\\nTwo cats sleep.\\n")
>>> _ = (folder / "a.de").write_text("Ein Hund rennt.\\nZwei Katzen schlafen.\\n")
>>> read_parallel_files(folder / "a.en", folder / "a.de")[1]
('Two cats sleep.', 'Zwei Katzen schlafen.')
"""

import gzip
from dataclasses import dataclass, field

from tfl.data.corpora import read_text_file
from tfl.data.fetch import verified_file
from tfl.errors import TflError, did_you_mean

MULTI30K_URL = "https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/raw/"
MULTI30K_SPLITS = {"train": 29_000, "val": 1_014, "test_2016_flickr": 1_000}
MULTI30K_SHA256 = {
    "train.en.gz": "d79cfa999dd4c51d2cb42499b6796d5a882c3a8a961923c25a898c90f8bbd56f",
    "train.de.gz": "726e39b2fa9eb9ffb6dc763fb35a179f80fae06ffc5d28b6ace5faa883de28a6",
    "val.en.gz": "14f7d25ddd868909a9213e361768460edcacdd6ab9d1e77b92560dc10c10dc28",
    "val.de.gz": "f0cba2f995189cf5770f29a8a9a537a3ad3f51657ad873405082ff6863a5e75a",
    "test_2016_flickr.en.gz": "611d361c6334bc7246101d48097c13cf5c4413c5befc793cc629934359d532d9",
    "test_2016_flickr.de.gz": "9204244e408ccb38d2a55cfcd344df15005fc42a07a6e55ca6c52b6ababb8cc8",
}


@dataclass(frozen=True)
class ParallelCorpus:
    """Sentence pairs by split: `splits["train"]` is a list of (source, target) strings."""

    name: str
    source_language: str
    target_language: str
    splits: dict = field(repr=False)

    def pairs(self, split):
        if split not in self.splits:
            raise TflError(f"{self.name} has no split {split!r}; "
                           f"{did_you_mean(split, list(self.splits))}")
        return self.splits[split]


def _lines(path):
    """The lines of a text file (gzip or plain), newline-normalised, without the final newline."""
    if str(path).endswith(".gz"):
        from tfl.data.corpora import normalize_newlines

        text = normalize_newlines(gzip.decompress(path.read_bytes()).decode("utf-8"))
    else:
        text = read_text_file(path)
    return text[:-1].split("\n") if text.endswith("\n") else text.split("\n")


def read_parallel_files(source_path, target_path):
    """Pairs (source line, target line) from two aligned files, refusing files that are not
    aligned (different line counts) or hold an empty line, with the line number."""
    from pathlib import Path

    source_path, target_path = Path(source_path), Path(target_path)
    sources, targets = _lines(source_path), _lines(target_path)
    if len(sources) != len(targets):
        raise TflError(f"{source_path} has {len(sources):,} lines but {target_path} has "
                       f"{len(targets):,}; line i of one must translate line i of the other")
    for number, (source, target) in enumerate(zip(sources, targets), 1):
        if not source.strip() or not target.strip():
            empty = source_path if not source.strip() else target_path
            raise TflError(f"line {number} of {empty} is empty; remove the pair or fill it in")
    return list(zip(sources, targets))


def load_multi30k(data_dir=None, source_language="en", target_language="de"):
    """Multi30k's three splits as a `ParallelCorpus` (English to German by default)."""
    for language in (source_language, target_language):
        if language not in ("en", "de"):
            raise TflError(f"Multi30k (task 1) has English and German, not {language!r}; "
                           "use en or de")
    splits = {}
    for split, expected in MULTI30K_SPLITS.items():
        paths = [verified_file(f"{split}.{language}.gz", MULTI30K_URL + f"{split}.{language}.gz",
                               MULTI30K_SHA256[f"{split}.{language}.gz"], subdir="multi30k",
                               data_dir=data_dir, dataset="multi30k")
                 for language in (source_language, target_language)]
        splits[split] = read_parallel_files(*paths)
        assert len(splits[split]) == expected, (split, len(splits[split]))  # hash-checked data
    return ParallelCorpus("multi30k", source_language, target_language, splits)
