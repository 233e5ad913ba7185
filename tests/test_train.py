import json
import math
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from tfl.errors import TflError
from tfl.run import load_run
from tfl.training.config import TrainConfig
from tfl.training.workflow import train

TOY_TEXT = "abcd efgh ijkl mnop\n" * 400  # perfectly predictable after a few characters


def small_config(**changes):
    values = dict(steps=6, eval_interval=2, batch_size=4, eval_batches=2, sample_tokens=0,
                  learning_rate=3e-3, warmup_steps=2)
    values.update(changes)
    return TrainConfig(**values)


@pytest.fixture
def toy_corpus(text_file):
    return str(text_file(TOY_TEXT, name="toy.txt"))


@pytest.mark.parametrize("architecture, overrides", [
    ("transformer", None), ("transformer", {"position": "rotary"}), ("lstm", None)],
    ids=["transformer", "transformer-rotary", "lstm"])
def test_loss_goes_down_on_a_learnable_corpus(architecture, overrides, toy_corpus, tmp_path):
    history = train(architecture, "nano", toy_corpus, tmp_path / "run", model_overrides=overrides,
                    train_config=small_config(steps=120, eval_interval=40, learning_rate=1e-2),
                    log=None)
    first, last = history[0], history[-1]
    assert last["loss"] < 0.5 * first["loss"]
    assert last["val_loss"] < 1.0  # uniform over 20 characters would be 3.0
    for name in ("model.keras", "best.keras", "config.json", "history.csv", "history.json",
                 "loss.png", "tokenizer/tokenizer.json"):
        assert (tmp_path / "run" / name).is_file(), name
    assert (tmp_path / "run" / "logs").is_dir()
    csv_lines = (tmp_path / "run" / "history.csv").read_text().splitlines()
    assert csv_lines[0].startswith("step,tokens,loss,val_loss") and len(csv_lines) == 4


def test_saved_run_gives_identical_logits(toy_corpus, tmp_path):
    train("transformer", "nano", toy_corpus, tmp_path / "run", train_config=small_config(),
          log=None)
    run = load_run(tmp_path / "run")
    again = load_run(tmp_path / "run")
    ids = np.asarray(run.tokenizer.encode(TOY_TEXT[:32]))[None]
    np.testing.assert_array_equal(run.model(ids).numpy(), again.model(ids).numpy())
    assert run.model_config.seq_len == 32
    assert run.train_config.steps == 6


class _InterruptAt(keras.callbacks.Callback):
    def __init__(self, step):
        super().__init__()
        self.step, self.seen = step, 0

    def on_train_batch_end(self, batch, logs=None):
        self.seen += 1
        if self.seen == self.step:
            raise KeyboardInterrupt


@pytest.mark.parametrize("architecture", ["transformer", "lstm"])
def test_resume_after_interrupt_ends_with_the_same_weights(architecture, toy_corpus, tmp_path):
    config = small_config()
    overrides = {"dropout": 0.1}  # dropout RNG state must be restored too
    train(architecture, "nano", toy_corpus, tmp_path / "straight", train_config=config,
          model_overrides=overrides, log=None)
    with pytest.raises(KeyboardInterrupt):
        train(architecture, "nano", toy_corpus, tmp_path / "resumed", train_config=config,
              model_overrides=overrides, log=None, extra_callbacks=[_InterruptAt(3)])
    progress = json.loads((tmp_path / "resumed/checkpoint/progress.json").read_text())
    assert progress["completed_intervals"] == 1
    messages = []
    train(architecture, "nano", toy_corpus, tmp_path / "resumed", train_config=config,
          model_overrides=overrides, log=messages.append)
    assert any("resuming" in m and "step 2" in m for m in messages)
    straight = load_run(tmp_path / "straight").model.get_weights()
    resumed = load_run(tmp_path / "resumed").model.get_weights()
    for a, b in zip(straight, resumed, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def test_a_killed_process_resumes(toy_corpus, tmp_path):
    """The CLI killed with SIGKILL after its first checkpoint resumes to the same weights."""
    args = [sys.executable, "-m", "tfl", "train", "--model", "transformer", "--preset", "nano",
            "--data", toy_corpus, "--steps", "40", "--eval-interval", "10", "--batch-size", "4",
            "--sample-tokens", "0", "--json"]
    subprocess.run(args + ["--out", str(tmp_path / "straight")], check=True, capture_output=True,
                   timeout=300)
    process = subprocess.Popen(args + ["--out", str(tmp_path / "killed")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    progress = tmp_path / "killed/checkpoint/progress.json"
    deadline = time.monotonic() + 240
    while not progress.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    done = json.loads(progress.read_text())["completed_intervals"]
    assert 1 <= done <= 4
    subprocess.run(args + ["--out", str(tmp_path / "killed")], check=True, capture_output=True,
                   timeout=300)
    a = load_run(tmp_path / "straight").model.get_weights()
    b = load_run(tmp_path / "killed").model.get_weights()
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, rtol=0, atol=1e-6)


def test_nan_loss_stops_with_a_clear_message(toy_corpus, tmp_path):
    with pytest.raises(TflError, match="NaN.*--learning-rate"):
        train("transformer", "nano", toy_corpus, tmp_path / "run", log=None,
              train_config=small_config(learning_rate=1e38, clip_norm=0, weight_decay=0))


def test_rerunning_a_finished_run_trains_nothing(toy_corpus, tmp_path):
    first = train("lstm", "nano", toy_corpus, tmp_path / "run", train_config=small_config(),
                  log=None)
    messages = []
    again = train("lstm", "nano", toy_corpus, tmp_path / "run", train_config=small_config(),
                  log=messages.append)
    assert again == first and any("already trained" in m for m in messages)


def test_bad_options_fail_cleanly(toy_corpus, tmp_path):
    with pytest.raises(TflError, match="preset"):
        train("transformer", "huge", toy_corpus, tmp_path / "a", log=None)
    with pytest.raises(TflError, match="architecture"):
        train("gru", "nano", toy_corpus, tmp_path / "b", log=None)
    with pytest.raises(TflError, match="unknown training option 'step'"):
        TrainConfig.from_dict({"step": 3})
    train("lstm", "nano", toy_corpus, tmp_path / "c", train_config=small_config(), log=None)
    with pytest.raises(TflError, match="other settings"):
        train("lstm", "nano", toy_corpus, tmp_path / "c", train_config=small_config(steps=8),
              log=None)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "notes.txt").write_text("mine")
    with pytest.raises(TflError, match="not a tfl run"):
        train("lstm", "nano", toy_corpus, tmp_path / "d", log=None)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_corrupt_model_file_is_reported(toy_corpus, tmp_path):
    train("lstm", "nano", toy_corpus, tmp_path / "run", train_config=small_config(), log=None)
    (tmp_path / "run" / "model.keras").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(TflError, match="corrupt"):
        load_run(tmp_path / "run")
    with pytest.raises(TflError, match="no run directory"):
        load_run(tmp_path / "missing")


def test_cli_train_then_eval(toy_corpus, tmp_path, capsys):
    from tfl.cli import main

    out = tmp_path / "run"
    assert main(["train", "--model", "lstm", "--preset", "nano", "--data", toy_corpus,
                 "--steps", "4", "--eval-interval", "2", "--batch-size", "4",
                 "--sample-tokens", "5", "--out", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["steps"] == 4 and math.isfinite(result["val_loss"])
    assert main(["eval", str(out), "--ngram", "3", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [r["model"].split()[0] for r in rows] == ["lstm", "3-gram", "lstm", "3-gram"]
    assert main(["train", "--model", "lstm", "--preset", "nanoo", "--data", toy_corpus]) == 2
    assert "did you mean 'nano'" in capsys.readouterr().err


def test_mixed_precision_trains_and_keeps_float32_weights(toy_corpus, tmp_path):
    history = train("transformer", "nano", toy_corpus, tmp_path / "run", log=None,
                    train_config=small_config(steps=4, mixed_precision=True))
    assert math.isfinite(history[-1]["loss"])
    run = load_run(tmp_path / "run")
    assert run.model.get_layer("block_0").dtype_policy.name == "mixed_bfloat16"
    assert {w.dtype for w in run.model.get_weights()} == {np.dtype("float32")}
    assert keras.mixed_precision.global_policy().name == "float32"  # restored afterwards
