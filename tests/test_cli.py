import json
import subprocess
import sys

import pytest

from tfl.cli import main


def run_cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "tfl", *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_help_does_not_import_tensorflow():
    probe = (
        "import sys\n"
        "from tfl.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "main(['data', 'list'])\n"
        "print('TF-LOADED' if 'tensorflow' in sys.modules else 'TF-NOT-LOADED')\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout
    assert "usage: tfl" in out and "tiny_shakespeare" in out
    assert out.strip().endswith("TF-NOT-LOADED")


def test_data_list_json(capsys):
    assert main(["data", "list", "--json"]) == 0
    corpora = json.loads(capsys.readouterr().out)["corpora"]
    assert set(corpora) == {"tiny_shakespeare", "python_docs"}


def test_data_inspect_json_on_tiny_shakespeare(shakespeare_path, capsys, monkeypatch):
    monkeypatch.setenv("TFL_DATA_DIR", str(shakespeare_path.parent))
    assert main(["data", "inspect", "tiny_shakespeare", "--tokenizer", "char", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["vocab_size"] == 65 + 3
    assert result["splits"]["train"]["characters"] == 1_003_854
    assert result["splits"]["validation"]["tokens"] == 111_540
    assert result["batch_shape"] == [4, 64]
    assert all(len(text) == 64 for text in result["example_inputs"])


def test_data_inspect_text_output(capsys):
    assert main(["data", "inspect", "python_docs", "--tokenizer", "word", "--seq-len", "16"]) == 0
    out = capsys.readouterr().out
    assert "tokenizer     word" in out and "example batch [4, 16]" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["data", "inspect", "no_such_corpus"], "unknown corpus"),
        (["data", "inspect", "/no/such/file.txt"], "no such file"),
        (["data", "inspect", "python_docs", "--tokenizer", "bpe"], "unknown tokenizer"),
        (["data", "inspect", "python_docs", "--vocab-size", "2"], "too small"),
        (["data", "inspect", "python_docs", "--seq-len", "100000"], "fewer than"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("tfl: error:") and message in err
    assert err.count("\n") == 1


def test_mistake_in_a_subprocess_shows_no_traceback(text_file):
    path = text_file(b"\x00\x01binary")
    result = run_cli("data", "inspect", str(path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == f"tfl: error: {path} looks binary (it contains NUL bytes); give a UTF-8 text file"
