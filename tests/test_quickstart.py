import json
import math

import pytest

from tfl.cli import main


def test_quickstart_fast_runs_the_whole_path(tmp_path, capsys, shakespeare_path, monkeypatch):
    monkeypatch.setenv("TFL_DATA_DIR", str(shakespeare_path.parent))
    out = tmp_path / "quickstart"
    assert main(["quickstart", "--fast", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["corpus"] == "tiny_shakespeare"
    models = [row["model"] for row in summary["rows"]]
    assert models == ["3-gram Kneser-Ney", "transformer-nano", "lstm-nano"]
    # Uniform over Tiny Shakespeare's 65 characters has perplexity 65; knowing only how often
    # each character occurs (a unigram model) gives about 28. The fast settings train the nano
    # models well past that, and a 3-gram is far better still.
    uniform = summary["tokenizer"]["vocab_size"] - 3  # the ids that are characters
    assert uniform == 65
    ngram, transformer, lstm = summary["rows"]
    assert 1.0 < ngram["perplexity"] < uniform / 5
    for row in (transformer, lstm):
        assert 1.0 < row["perplexity"] < 22, row["model"]  # a unigram-level model fails
    for row in summary["rows"]:  # one character per token: bits per character = loss / ln 2
        assert row["perplexity"] == pytest.approx(math.exp(row["val_loss"]), rel=1e-3)
        assert row["bits_per_char"] == pytest.approx(row["val_loss"] / math.log(2), rel=1e-3)
    assert all(row["sample"] for row in summary["rows"][1:])
    for name in summary["files"]:
        assert (out / name).stat().st_size > 0
    table = (out / "summary.md").read_text()
    assert "| transformer-nano |" in table and "| 3-gram Kneser-Ney |" in table
    # The compressed model generates text on the LiteRT interpreter.
    compression = summary["compression"]
    files = [row["file"] for row in compression["rows"]]
    assert "pruned-dynamic-int8.tflite" in files and "dense-float32.tflite" in files
    assert len(compression["edge_sample"]) > 0
    assert "| pruned-dynamic-int8.tflite |" in table


def test_quickstart_falls_back_to_python_docs_without_network(tmp_path, monkeypatch):
    from tfl.data import corpora
    from tfl.data.corpora import load_corpus_or_fallback

    # No local copy, an empty cache, and a download that fails: an origin that does not exist
    # (a file:// URL, so the test never depends on the network or on a port being closed).
    monkeypatch.delenv("TFL_DATA_DIR", raising=False)
    monkeypatch.setenv("TFL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(corpora, "TINY_SHAKESPEARE_URL", (tmp_path / "missing.txt").as_uri())

    messages = []
    corpus = load_corpus_or_fallback("tiny_shakespeare", None, messages.append)
    assert corpus.name == "python_docs"
    assert any("Falling back to the offline corpus python_docs" in m for m in messages)
