"""Execute every notebook (its jupytext source) with tiny settings and check what it shows.

A lesson passes when it runs without an error output AND shows what it is for: the pictures it
draws, the checks it prints, and for the exercises, a "not done yet" verdict from every
unfinished stub (a check that crashes would print something else).
"""

import re
from pathlib import Path

import jupytext
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.py"))
NOT_DONE = "not done yet: replace `raise NotImplementedError` with your answer"


def stdout_of(cells):
    return "".join(o.get("text", "") for cell in cells for o in cell.get("outputs", [])
                   if o.get("output_type") == "stream" and o.get("name") == "stdout")


def code_cells(notebook):
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def printed(pattern):
    def check(notebook):
        assert re.search(pattern, stdout_of(code_cells(notebook))), f"no output matches {pattern!r}"
    return check


def one_and_two_devices_agree(notebook):
    text = stdout_of(code_cells(notebook))
    losses = dict(re.findall(r"(\d) device\(s\): losses (\[.*\])", text))
    assert set(losses) == {"1", "2"} and losses["1"] == losses["2"], text[-500:]
    difference = float(re.search(r"largest weight difference: (\S+)", text).group(1))
    assert difference < 1e-5


def every_stub_reports_not_done(notebook):
    checked = [cell for cell in code_cells(notebook) if "report(CHECKS[" in cell.source]
    assert len(checked) >= 8
    for cell in checked:  # each stub's check ran, caught the NotImplementedError, and said so
        assert stdout_of([cell]) == NOT_DONE + "\n", cell.source


# name -> (the fewest pictures it must show, what its output must contain)
EXPECTED = {
    "00_probability_and_ngrams": (1, printed(r"1-gram: loss")),
    "01_text_to_tensors": (1, printed(r"targets: ")),
    "02_embedding_lstm_lm": (1, printed(r"LSTM \(\d+ steps\) +perplexity")),
    "03_transformer_lm": (1, printed(r"block 0 by hand equals the Keras layer")),
    "04_generation": (1, printed(r"cached +\d+ tokens/s")),
    "05_distributed_training": (0, one_and_two_devices_agree),
    "06_compression_and_tflite": (3, printed(r"achieved sparsity over all pruned matrices")),
    "07_exercises": (0, every_stub_reports_not_done),
}


def test_every_notebook_has_expectations():
    assert len(NOTEBOOKS) >= 2
    assert {path.stem for path in NOTEBOOKS} == set(EXPECTED)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_and_shows_its_results(path, monkeypatch, tmp_path, shakespeare_path):
    monkeypatch.setenv("TFL_NOTEBOOK_SIZE", "tiny")
    monkeypatch.setenv("TFL_DATA_DIR", str(shakespeare_path.parent))
    # The inline backend a notebook uses by default: figures become image outputs, with no
    # display needed. (Agg would draw nothing visible, hiding a lesson whose plots vanish.)
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    notebook = jupytext.read(path)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in code_cells(notebook) for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    min_images, check = EXPECTED[path.stem]
    images = sum("image/png" in o.get("data", {}) for o in outputs)
    assert images >= min_images, f"{path.stem} shows {images} pictures, expected {min_images}+"
    check(notebook)
