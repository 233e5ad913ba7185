"""`tfl export` and `tfl optimize` as a careless user meets them: where `--out` may point, bad
options, a folder without write permission, a killed export, progress lines.

Refusals must come before any work: in those tests loading the run fails the test.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tfl.cli import main
from tfl.io import OUTPUT_MARKER

COMMANDS = ("export", "optimize")


@pytest.fixture
def run_copy(trained_runs, tmp_path):
    """A copy of the trained LSTM run in `tmp_path/work/run` (tests may try to destroy it)."""
    run = tmp_path / "work" / "run"
    shutil.copytree(trained_runs["lstm"], run)
    return run


@pytest.fixture
def no_loading(monkeypatch):
    """Fail the test if the run is loaded: a refusal must come first."""
    def load_run(*args, **kwargs):
        pytest.fail("the run was loaded before the mistake was reported")

    monkeypatch.setattr("tfl.run.load_run", load_run)


def snapshot(root):
    """Every path under `root` (and `root` itself) with its size and modification time."""
    return {str(path.relative_to(root)): (path.stat().st_size if path.is_file() else None,
                                          path.stat().st_mtime_ns)
            for path in [root, *sorted(root.rglob("*"))]}


def one_line_error(capsys):
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tfl: error: "), captured.err
    assert captured.out == ""
    return lines[0]


def refused_out(case, run, tmp_path, monkeypatch, command):
    """The `--out` of each refused case, set up in `tmp_path`."""
    if case == "the run itself":
        return run
    if case == "its parent":
        return run.parent
    if case == "a folder holding another run":
        shutil.copytree(run, tmp_path / "holder" / "other-run")
        return tmp_path / "holder"
    if case == "a folder tfl did not write":
        (tmp_path / "notes").mkdir()
        (tmp_path / "notes" / "todo.txt").write_text("my notes")
        return tmp_path / "notes"
    if case == "the other command's output":
        other = tmp_path / "other-output"
        other.mkdir()
        (other / "report.md").write_text("results")
        (other / OUTPUT_MARKER).write_text(json.dumps(
            {"command": "optimize" if command == "export" else "export"}))
        return other
    if case == "a file":
        (tmp_path / "model.bin").write_bytes(b"weights")
        return tmp_path / "model.bin"
    if case == "the current directory":  # (empty, so only the rule for "." refuses it)
        (tmp_path / "here").mkdir()
        monkeypatch.chdir(tmp_path / "here")
        return Path(".")
    raise ValueError(case)


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", [
    "the run itself", "its parent", "a folder holding another run", "a folder tfl did not write",
    "the other command's output", "a file", "the current directory"])
def test_an_out_that_is_not_ours_to_replace_is_refused_and_left_alone(
        case, command, run_copy, tmp_path, monkeypatch, capsys, no_loading):
    out = refused_out(case, run_copy, tmp_path, monkeypatch, command)
    before = snapshot(tmp_path)
    assert main([command, str(run_copy), "--out", str(out)]) == 2
    assert "--out" in one_line_error(capsys)
    assert snapshot(tmp_path) == before


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder this process cannot write in."""
    folder = tmp_path / "locked"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    # Root ignores permission bits; an immutable folder refuses root too.
    if not shutil.which("chattr") or subprocess.run(["chattr", "+i", str(folder)],
                                                    capture_output=True).returncode:
        pytest.skip("running as root, where only an immutable folder (chattr +i) is read-only")
    yield folder
    subprocess.run(["chattr", "-i", str(folder)], check=True)


@pytest.mark.parametrize("command", COMMANDS)
def test_an_out_in_a_folder_without_write_permission_is_one_line(
        command, read_only_folder, run_copy, tmp_path, capsys, no_loading):
    before = snapshot(tmp_path)
    assert main([command, str(run_copy), "--out", str(read_only_folder / "out")]) == 2
    assert "no permission to write in" in one_line_error(capsys)
    assert snapshot(tmp_path) == before


def test_an_out_below_a_file_is_one_line(run_copy, tmp_path, capsys, no_loading):
    (tmp_path / "notes.txt").write_text("not a folder")
    assert main(["export", str(run_copy), "--out", str(tmp_path / "notes.txt" / "out")]) == 2
    assert "which is a file; choose another --out" in one_line_error(capsys)


@pytest.mark.parametrize("option, value", [
    ("--prune", "1"), ("--prune", "-0.1"), ("--prune", "nan"), ("--cluster", "1"),
    ("--cluster", "-4"), ("--fine-tune-steps", "0"), ("--fine-tune-steps", "1"),
    ("--batch-size", "0"), ("--max-chars", "0"), ("--max-chars", "-5"), ("--quantize", "int4")])
def test_a_bad_optimize_option_is_refused_before_the_run_loads(
        option, value, run_copy, tmp_path, capsys, no_loading):
    out = tmp_path / "optimized"
    before = snapshot(tmp_path)
    started = time.perf_counter()
    assert main(["optimize", str(run_copy), "--out", str(out), option, value]) == 2
    assert time.perf_counter() - started < 5
    assert option in one_line_error(capsys)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("options, message", [
    ({"quantizations": ["int4"]}, "unknown quantization 'int4'"),
    ({"quantizations": [], "saved_model": False}, "nothing to export")])
def test_a_bad_export_option_is_refused_before_the_run_loads(
        options, message, run_copy, tmp_path, no_loading):
    from tfl.edge.export import export_run
    from tfl.errors import TflError

    with pytest.raises(TflError, match=message):
        export_run(run_copy, tmp_path / "exported", **options)
    assert not (tmp_path / "exported").exists()


def test_a_killed_export_leaves_a_temporary_that_the_next_export_removes(
        trained_runs, tmp_path):
    out = tmp_path / "exported"
    leftovers = lambda: list(tmp_path.glob(f".{out.name}.*.tmp"))  # noqa: E731
    process = subprocess.Popen(
        [sys.executable, "-m", "tfl", "export", str(trained_runs["lstm"]), "--out", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    try:
        deadline = time.monotonic() + 120
        while not leftovers() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL, "the export ended before it could be killed"
    assert len(leftovers()) == 1 and not out.exists()

    assert main(["export", str(trained_runs["lstm"]), "--out", str(out), "--no-saved-model",
                 "--json"]) == 0
    assert leftovers() == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exported"]


def test_an_export_replaces_an_earlier_export_and_shows_progress(trained_runs, tmp_path,
                                                                 capsys):
    out = tmp_path / "exported"
    assert main(["export", str(trained_runs["lstm"]), "--out", str(out), "--no-saved-model",
                 "--quantize", "float32"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("[1/1] model-float32.tflite 1/1 stages (100%)")
               and "done in" in line for line in lines)
    assert (out / "model-float32.tflite").is_file()

    assert main(["export", str(trained_runs["lstm"]), "--out", str(out), "--no-saved-model",
                 "--quantize", "dynamic-int8", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["tflite"] == {
        "dynamic-int8": str(out / "model-dynamic-int8.tflite")}
    assert sorted(p.name for p in out.iterdir()) == [
        OUTPUT_MARKER, "config.json", "model-dynamic-int8.tflite", "tokenizer"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exported"]


def test_optimize_without_json_shows_progress(trained_runs, tmp_path, monkeypatch, capsys):
    # One dense variant is enough to see the lines (`--json` is checked in test_export.py).
    monkeypatch.setattr("tfl.edge.export.QUANTIZATIONS", ("float32",))
    assert main(["optimize", str(trained_runs["lstm"]), "--out", str(tmp_path / "optimized"),
                 "--prune", "0", "--cluster", "0", "--quantize", "float32",
                 "--max-chars", "500"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("[1/1] dense-float32: TFLite conversion 1/1 stages")
               for line in lines)
    assert any(line.startswith("[1/1] dense-float32: LiteRT evaluation") and "windows" in line
               and "done in" in line for line in lines)
    assert any(line.startswith("# Compression report") for line in lines)
