import json

from tfl.cli import main


def test_quickstart_fast_runs_the_whole_path(tmp_path, capsys, shakespeare_path, monkeypatch):
    monkeypatch.setenv("TFL_DATA_DIR", str(shakespeare_path.parent))
    out = tmp_path / "quickstart"
    assert main(["quickstart", "--fast", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["corpus"] == "tiny_shakespeare"
    models = [row["model"] for row in summary["rows"]]
    assert models == ["3-gram Kneser-Ney", "transformer-nano", "lstm-nano"]
    for row in summary["rows"]:
        assert 1.0 < row["perplexity"] < 68  # better than uniform over the vocabulary
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


def test_quickstart_falls_back_to_python_docs_without_network(tmp_path, capsys, monkeypatch):
    from tfl.data import corpora

    monkeypatch.delenv("TFL_DATA_DIR", raising=False)
    monkeypatch.setenv("TFL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(corpora, "TINY_SHAKESPEARE_URL", "http://127.0.0.1:9/shakespeare.txt")
    from tfl.data.corpora import load_corpus_or_fallback

    messages = []
    corpus = load_corpus_or_fallback("tiny_shakespeare", None, messages.append)
    assert corpus.name == "python_docs"
    assert any("Falling back to the offline corpus python_docs" in m for m in messages)
