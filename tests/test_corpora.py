import hashlib

import pytest

from tfl.data import corpora
from tfl.data.corpora import Corpus, load_corpus
from tfl.errors import CorpusUnavailableError, TflError


def test_tiny_shakespeare_from_data_dir_has_the_nanogpt_split(shakespeare_path, monkeypatch):
    monkeypatch.setenv("TFL_DATA_DIR", str(shakespeare_path.parent))
    corpus = load_corpus("tiny_shakespeare")
    assert hashlib.sha256(corpus.text.encode()).hexdigest() == corpora.TINY_SHAKESPEARE_SHA256
    assert corpus.split_sizes() == {"train": 1_003_854, "validation": 111_540, "test": 0}
    assert corpus.train + corpus.validation == corpus.text
    assert len(set(corpus.text)) == 65


def test_tiny_shakespeare_download_goes_through_keras_get_file_and_caches(
    shakespeare_path, monkeypatch, tmp_path
):
    # A file:// origin exercises the real download-and-verify code without a network.
    monkeypatch.delenv("TFL_DATA_DIR", raising=False)
    monkeypatch.setenv("TFL_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(corpora, "TINY_SHAKESPEARE_URL", shakespeare_path.as_uri())
    corpus = load_corpus("tiny_shakespeare")
    assert len(corpus.text) == 1_115_394
    cached = tmp_path / "tfl" / "tiny_shakespeare.txt"
    assert cached.is_file()
    # Second load: the origin is gone, the cached copy is used.
    monkeypatch.setattr(corpora, "TINY_SHAKESPEARE_URL", (tmp_path / "gone.txt").as_uri())
    assert load_corpus("tiny_shakespeare").text == corpus.text


def test_download_failure_names_the_local_directory_option(monkeypatch, tmp_path):
    monkeypatch.delenv("TFL_DATA_DIR", raising=False)
    monkeypatch.setenv("TFL_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(corpora, "TINY_SHAKESPEARE_URL", "http://127.0.0.1:9/shakespeare.txt")
    with pytest.raises(CorpusUnavailableError, match="TFL_DATA_DIR.*python_docs"):
        load_corpus("tiny_shakespeare")
    assert not [p for p in tmp_path.rglob("*") if p.is_file()], "a partial download was left"


def test_a_wrong_local_copy_is_rejected_by_its_hash(tmp_path, monkeypatch):
    (tmp_path / "tiny_shakespeare.txt").write_text("not shakespeare")
    monkeypatch.setenv("TFL_DATA_DIR", str(tmp_path))
    with pytest.raises(TflError, match="sha256"):
        load_corpus("tiny_shakespeare")


def test_python_docs_is_offline_and_deterministic():
    a, b = load_corpus("python_docs"), load_corpus("python_docs")
    assert a.text == b.text
    assert len(a.text) > 400_000
    sizes = a.split_sizes()
    assert sizes["train"] == int(len(a.text) * 0.9)
    assert sum(sizes.values()) == len(a.text)
    assert a.train + a.validation + a.test == a.text


def test_local_file_directory_and_glob(tmp_path):
    (tmp_path / "b.txt").write_text("second file")
    (tmp_path / "a.txt").write_text("first file")
    (tmp_path / ".hidden").write_text("never read")
    assert load_corpus(tmp_path / "a.txt").text == "first file"
    assert load_corpus(tmp_path).text == "first file\n\nsecond file"
    assert load_corpus(str(tmp_path / "*.txt")).text == "first file\n\nsecond file"


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "empty"),
        ("  \n\n ", "empty"),
        (b"\x7fELF\x00\x01\x02", "binary"),
        ("caf\xe9".encode("latin-1"), "not UTF-8.*0xe9.*offset 3"),
    ],
)
def test_bad_files_are_refused_with_a_reason(text_file, content, message):
    with pytest.raises(TflError, match=message):
        load_corpus(text_file(content))


def test_missing_path_and_unknown_name(tmp_path):
    with pytest.raises(TflError, match="no such file"):
        load_corpus(tmp_path / "missing.txt")
    with pytest.raises(TflError, match="did you mean 'tiny_shakespeare'"):
        load_corpus("tiny_shakespear")


def test_split_fractions_must_sum_to_one():
    with pytest.raises(TflError, match="sum to 1"):
        Corpus("x", "abc", split_fractions=(0.5, 0.1, 0.1))
    with pytest.raises(TflError, match="unknown split"):
        Corpus("x", "abcdef").split("valid")


def test_tang_poetry_reads_every_file_in_numeric_order_as_plain_text():
    # TFL_DATA_DIR points at ../shared/data (conftest), whose tang_poetry/ holds the published
    # files; each is checked against its sha256 before it is read.
    corpus = load_corpus("tang_poetry")
    assert len(corpus.text) == 4_491_692
    first_poem = corpus.text.split("\n\n", 1)[0].split("\n")
    assert first_poem == ["帝京篇十首 一", "秦川雄帝宅，函谷壯皇居。", "綺殿千尋起，離宮百雉餘。",
                          "連甍遙接漢，飛觀迥凌虛。", "雲日隱層闕，風煙出綺疎。"]
    assert corpus.text.count("\n\n") == 57_607 - 1  # a blank line between poems
    assert "tang_poetry" in corpora.available_corpora()


def test_a_missing_tang_poetry_file_names_the_folder_to_provide(monkeypatch, tmp_path):
    monkeypatch.setenv("TFL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TFL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(corpora, "TANG_POETRY_URL", (tmp_path / "nowhere").as_uri() + "/")
    with pytest.raises(CorpusUnavailableError, match="tang_poetry/ in a directory and set "
                                                    "TFL_DATA_DIR"):
        load_corpus("tang_poetry")
