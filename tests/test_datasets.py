"""Translation pairs (Multi30k) and labelled sentences (SST-2): loading and bad input."""

import gzip

import pytest

from tfl.data.labelled import load_sst2, read_labelled_tsv
from tfl.data.parallel import load_multi30k, read_parallel_files
from tfl.errors import CorpusUnavailableError, TflError


def test_multi30k_has_its_published_splits_aligned():
    corpus = load_multi30k()  # from TFL_DATA_DIR (../shared/data), every file hash-checked
    assert {split: len(pairs) for split, pairs in corpus.splits.items()} == {
        "train": 29_000, "val": 1_014, "test_2016_flickr": 1_000}
    assert corpus.pairs("train")[0] == (
        "Two young, White males are outside near many bushes.",
        "Zwei junge weiße Männer sind im Freien in der Nähe vieler Büsche.")
    reverse = load_multi30k(source_language="de", target_language="en")
    assert reverse.pairs("val")[0] == corpus.pairs("val")[0][::-1]
    with pytest.raises(TflError, match="did you mean 'val'"):
        corpus.pairs("valid")


def test_sst2_has_its_published_splits_and_binary_labels():
    data = load_sst2()
    sizes = {split: len(rows) for split, rows in data.splits.items()}
    assert sizes == {"train": 67_349, "dev": 872, "test": 1_821}
    assert data.examples("dev")[0][1] in (0, 1)
    positive = sum(label for _, label in data.examples("dev")) / sizes["dev"]
    assert 0.45 < positive < 0.56  # dev is nearly balanced


def test_a_missing_labelled_test_set_says_where_to_put_it(monkeypatch, tmp_path):
    monkeypatch.setenv("TFL_DATA_DIR", str(tmp_path))
    with pytest.raises(CorpusUnavailableError, match="sst2/test_labeled.tsv"):
        load_sst2(splits=("test",))


def write(path, text, compress=False):
    data = text.encode("utf-8")
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


@pytest.mark.parametrize("source, target, message", [
    ("a\nb\nc\n", "x\ny\n", r"has 3 lines but .* has 2"),
    ("a\n\nc\n", "x\ny\nz\n", "line 2 of .*src.txt is empty"),
    ("a\nb\n", "x\n \n", "line 2 of .*tgt.txt is empty"),
])
def test_misaligned_parallel_files_are_refused_with_the_line(tmp_path, source, target, message):
    with pytest.raises(TflError, match=message):
        read_parallel_files(write(tmp_path / "src.txt", source), write(tmp_path / "tgt.txt", target))


def test_gzip_parallel_files_read_like_plain_ones(tmp_path):
    pairs = read_parallel_files(write(tmp_path / "s.gz", "a dog\r\n", compress=True),
                                write(tmp_path / "t.gz", "ein Hund\n", compress=True))
    assert pairs == [("a dog", "ein Hund")]


@pytest.mark.parametrize("text, message", [
    ("sentence\tlabel\ngood film\n", "line 2 .* has 1 tab-separated fields, not 2"),
    ("sentence\tlabel\ngood film\t2\n", "line 2 .* has the label '2'"),
    ("sentence\tlabel\ngood film\t\n", "line 2 .* has the label ''"),
    ("sentence\tlabel\n\t1\n", "line 2 .* has an empty sentence"),
    ("text\tstars\ngood film\t1\n", "header naming the columns `sentence` and `label`"),
    ("sentence\tlabel\n", "a header but no examples"),
])
def test_bad_labelled_rows_are_refused_with_the_line(tmp_path, text, message):
    with pytest.raises(TflError, match=message):
        read_labelled_tsv(write(tmp_path / "data.tsv", text))
