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
    assert {"tiny_shakespeare", "python_docs"} <= set(corpora)
    assert all(isinstance(text, str) and text for text in corpora.values())


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
        (["data", "inspect", "python_docs", "--tokenizer", "sentencepiece"], "unknown tokenizer"),
        (["data", "inspect", "python_docs", "--vocab-size", "2"], "too small"),
        (["data", "inspect", "python_docs", "--seq-len", "100000"], "fewer than"),
        (["data", "inspect", "python_docs", "--seq-len", "0"], "seq_len"),
        (["data", "inspect", "python_docs", "--batch-size", "-3"], "batch size"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(args, message, capsys):
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("tfl: error:") and message in captured.err
    assert captured.err.count("\n") == 1 and captured.out == ""


# Mistakes in the settings of generate, eval and ngram, on a real run: each must be refused with
# one line before anything runs. Were a check missing, generation or evaluation would go ahead
# (exit 0, text on stdout) or fail deep inside TensorFlow (a traceback, not exit 2).
RUN = "{run}"
GENERATE = ["generate", RUN, "--prompt", "the"]  # the prompt must not be printed either
SETTING_MISTAKES = [
    (GENERATE + ["--sampler", "beam", "--num-beams", "0"], "num_beams"),
    (GENERATE + ["--sampler", "beam", "--num-beams", "-2"], "num_beams"),
    (GENERATE + ["--sampler", "greedy", "--top-p", "1.5"], "top_p"),
    (GENERATE + ["--sampler", "temperature", "--top-k", "0"], "top_k"),
    (GENERATE + ["--sampler", "top_k", "--top-p", "nan"], "top_p"),
    (GENERATE + ["--max-new-tokens", "-1"], "max_new_tokens"),
    (GENERATE + ["--temperature", "0"], "temperature"),
    (GENERATE + ["--temperature", "-1"], "temperature"),
    (GENERATE + ["--sampler", "greedy", "--temperature", "nan"], "temperature"),
    (GENERATE + ["--sampler", "topk"], "did you mean 'top_k'"),
    (["eval", RUN, "--max-chars", "0"], "max_chars"),
    (["eval", RUN, "--max-chars", "-5"], "max_chars"),
    (["eval", RUN, "--ngram", "-1"], "ngram_order"),
    (["eval", RUN, "--split", "dev"], "unknown split"),
    (["ngram", "python_docs", "--order", "0"], "order"),
    (["ngram", "/no/such/corpus.txt", "--order", "0"], "order"),  # checked before reading
    (["ngram", "python_docs", "--order", "3", "-2"], "order"),
    (["ngram", "python_docs", "--split", "dev"], "unknown split"),
]


@pytest.mark.parametrize("args, message", SETTING_MISTAKES, ids=lambda v: " ".join(v)
                         if isinstance(v, list) else None)
def test_setting_mistakes_exit_2_with_one_line_and_nothing_on_stdout(args, message, trained_runs,
                                                                     capsys):
    args = [a.format(run=trained_runs["transformer"]) for a in args]
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("tfl: error:") and message in captured.err
    assert captured.err.count("\n") == 1
    assert captured.out == ""


def test_unigram_baseline_is_meaningful(trained_runs, capsys):
    assert main(["eval", str(trained_runs["transformer"]), "--split", "validation", "--ngram", "1",
                 "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [row["model"] for row in rows][1] == "1-gram Kneser-Ney"
    assert rows[0]["perplexity"] < rows[1]["perplexity"]  # the trained model beats unigrams


def test_mistake_in_a_subprocess_shows_no_traceback(text_file):
    path = text_file(b"\x00\x01binary")
    result = run_cli("data", "inspect", str(path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == f"tfl: error: {path} looks binary (it contains NUL bytes); give a UTF-8 text file"


@pytest.mark.parametrize("args, message", [
    (["train", "--model", "gru"], "argument --model: invalid choice: 'gru'"),
    (["train", "--steps", "many"], "argument --steps: invalid int value: 'many'"),
    ([], "the following arguments are required: COMMAND"),
])
def test_a_wrong_option_is_one_line_not_a_usage_block(args, message, capsys):
    with pytest.raises(SystemExit) as stop:
        main(args)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("tfl: error: ") and message in err and "--help" in err
    assert err.count("\n") == 1


def test_a_run_without_model_keras_says_whether_it_was_interrupted(trained_runs, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_runs["transformer"], run)
    (run / "model.keras").unlink()  # as a SIGKILL before the final save leaves it
    assert main(["generate", str(run), "--max-new-tokens", "3"]) == 2
    err = capsys.readouterr().err
    assert "training was interrupted (best.keras holds the best model so far)" in err
    assert "run the same `tfl train` command again" in err
