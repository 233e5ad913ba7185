"""Labelled sentences for classification: (text, label) pairs, split into named sets.

Named data set:
- `sst2`: the Stanford Sentiment Treebank in its GLUE binary form (`sentence<TAB>label`, a
  header line, lower-cased, tokenized with spaces; label 1 is positive): `train` (67,349
  phrases and sentences), `dev` (872 sentences) and `test` (1,821 sentences with the labels of
  the original SST binary split; GLUE's own test file has no labels). Looked for in `sst2/` of
  a data directory first; `train` and `dev` are otherwise downloaded in GLUE's `SST-2.zip`.
  Every file is checked against its published sha256.

Any TSV in that layout is a labelled data set too (`read_labelled_tsv`): a header naming the
`sentence` and `label` columns, then one row per example with a label of 0 or 1.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "tiny.tsv"
>>> _ = path.write_text("sentence\\tlabel\\na joy to watch\\t1\\ndull and long\\t0\\n")
>>> read_labelled_tsv(path)
[('a joy to watch', 1), ('dull and long', 0)]
"""

from dataclasses import dataclass, field
from pathlib import Path

from tfl.data.corpora import read_text_file
from tfl.data.fetch import local_copy, verified_file
from tfl.errors import CorpusUnavailableError, TflError, did_you_mean

GLUE_SST2_URL = "https://dl.fbaipublicfiles.com/glue/data/SST-2.zip"
GLUE_SST2_ZIP_SHA256 = "d67e16fb55739c1b32cdce9877596db1c127dc322d93c082281f64057c16deaa"
SST2_SHA256 = {
    "train.tsv": "c75796b01672b41c38cd4b35f4ff1ade88ca79b7577f3926e01ff69739d85ec9",
    "dev.tsv": "f7271f7a919ea884ca8563e13ed03028aa44296d1f738c003af3142b9a2188f8",
    "test_labeled.tsv": "1da6e04ccd65c1ade32864afa62129b3b3d5df0f1b314961ec345af304274093",
}
SST2_SPLITS = {"train": "train.tsv", "dev": "dev.tsv", "test": "test_labeled.tsv"}
LABELS = (0, 1)


@dataclass(frozen=True)
class LabelledTexts:
    """Examples by split: `splits["train"]` is a list of (text, label) with label 0 or 1."""

    name: str
    splits: dict = field(repr=False)
    label_names: tuple = ("negative", "positive")

    def examples(self, split):
        if split not in self.splits:
            raise TflError(f"{self.name} has no split {split!r}; "
                           f"{did_you_mean(split, list(self.splits))}")
        return self.splits[split]


def read_labelled_tsv(path):
    """(sentence, label) rows of a GLUE-style TSV, refusing a row without a label, with a label
    other than 0 or 1, or with an empty sentence, by its line number."""
    path = Path(path)
    lines = read_text_file(path).rstrip("\n").split("\n")
    header = lines[0].split("\t")
    if "sentence" not in header or "label" not in header:
        raise TflError(f"{path} must start with a header naming the columns `sentence` and "
                       f"`label` (tab-separated); it starts with {lines[0][:60]!r}")
    text_column, label_column = header.index("sentence"), header.index("label")
    rows = []
    for number, line in enumerate(lines[1:], 2):
        fields = line.split("\t")
        if len(fields) != len(header):
            raise TflError(f"line {number} of {path} has {len(fields)} tab-separated fields, "
                           f"not {len(header)}; every row needs a sentence and a label")
        text, label = fields[text_column].strip(), fields[label_column].strip()
        if label not in ("0", "1"):
            raise TflError(f"line {number} of {path} has the label {label!r}; labels are 0 "
                           "(negative) or 1 (positive)")
        if not text:
            raise TflError(f"line {number} of {path} has an empty sentence; remove the row")
        rows.append((text, int(label)))
    if not rows:
        raise TflError(f"{path} has a header but no examples")
    return rows


def _sst2_file(filename, data_dir):
    found = local_copy((filename,), SST2_SHA256[filename], subdir="sst2", data_dir=data_dir)
    if found:
        return found
    if filename == "test_labeled.tsv":
        raise CorpusUnavailableError(
            "the labelled SST-2 test set (sst2/test_labeled.tsv) is not published for download "
            "with GLUE; put it in a directory and set TFL_DATA_DIR to it, or use train and dev")
    import zipfile

    archive = verified_file("SST-2.zip", GLUE_SST2_URL, GLUE_SST2_ZIP_SHA256, subdir="sst2",
                            data_dir=data_dir, dataset="sst2")
    target = archive.parent / filename
    if not target.is_file():
        with zipfile.ZipFile(archive) as zipped:
            target.write_bytes(zipped.read(f"SST-2/{filename}"))
    return local_copy((filename,), SST2_SHA256[filename], data_dir=archive.parent)


def load_sst2(data_dir=None, splits=("train", "dev", "test")):
    """SST-2 as `LabelledTexts` with the requested splits (all three by default)."""
    for split in splits:
        if split not in SST2_SPLITS:
            raise TflError(f"SST-2 has no split {split!r}; {did_you_mean(split, list(SST2_SPLITS))}")
    return LabelledTexts("sst2", {split: read_labelled_tsv(_sst2_file(SST2_SPLITS[split], data_dir))
                                  for split in splits})
