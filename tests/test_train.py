import json
import math
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from tfl.data import load_corpus, num_windows
from tfl.errors import TflError
from tfl.models.parts import model_parts
from tfl.run import load_run
from tfl.training.config import TrainConfig
from tfl.training.trainer import weights_digest
from tfl.training.workflow import train

TOY_TEXT = "abcd efgh ijkl mnop\n" * 400  # perfectly predictable after a few characters


def small_config(**changes):
    # XLA off: compiling dominates these few-step runs. The Transformer of
    # test_loss_goes_down_on_a_learnable_corpus and the killed `tfl train` runs keep it on.
    values = dict(steps=6, eval_interval=2, batch_size=4, eval_batches=2, sample_tokens=0,
                  learning_rate=3e-3, warmup_steps=2, jit_compile=False)
    values.update(changes)
    return TrainConfig(**values)


@pytest.fixture
def toy_corpus(text_file):
    return str(text_file(TOY_TEXT, name="toy.txt"))


@pytest.mark.parametrize("architecture, overrides, jit_compile", [
    ("transformer", None, True), ("transformer", {"position": "rotary"}, False),
    ("lstm", None, False)], ids=["transformer-xla", "transformer-rotary", "lstm"])
def test_loss_goes_down_on_a_learnable_corpus(architecture, overrides, jit_compile, toy_corpus,
                                              tmp_path):
    history = train(architecture, "nano", toy_corpus, tmp_path / "run", model_overrides=overrides,
                    train_config=small_config(steps=120, eval_interval=40, learning_rate=1e-2,
                                              jit_compile=jit_compile),
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


def test_the_saved_run_holds_the_trained_weights(toy_corpus, tmp_path):
    history = train("transformer", "nano", toy_corpus, tmp_path / "run",
                    train_config=small_config(), log=None)
    run = load_run(tmp_path / "run")
    # The digest was taken from the weights in memory when training ended.
    assert weights_digest(run.model) == history.weights_sha256
    ids = np.asarray(run.tokenizer.encode(TOY_TEXT[:32]))[None]
    assert np.isfinite(run.model(ids).numpy()).all()
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
    assert interval_steps(messages) == [4, 6]  # the first interval was not trained again
    straight = load_run(tmp_path / "straight").model.get_weights()
    resumed = load_run(tmp_path / "resumed").model.get_weights()
    for a, b in zip(straight, resumed, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def interval_steps(lines):
    """The steps of the interval lines a run printed ("step      4/6  loss ...")."""
    return [int(line.split()[1].split("/")[0]) for line in lines if line.startswith("step ")]


# `tfl train` in a subprocess that stops for good once the interval given as its first argument
# has ended (its checkpoint written: extra callbacks run after the Trainer's), so the test can
# kill it exactly there.
PAUSING_TFL = """
import functools, sys, time
import keras
import tfl.training.workflow as workflow

class PauseAfterInterval(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == int(sys.argv[1]):
            time.sleep(600)

workflow.train = functools.partial(workflow.train, extra_callbacks=[PauseAfterInterval()])
from tfl.cli import main
sys.exit(main(sys.argv[2:]))
"""
CLI_TRAIN = ["train", "--model", "transformer", "--preset", "nano", "--steps", "40",
             "--eval-interval", "10", "--batch-size", "4", "--sample-tokens", "0"]


def kill_after_interval(pause_at, args, run_dir):
    """Run `tfl train ARGS` until its checkpoint holds `pause_at` intervals, then SIGKILL it."""
    errors = run_dir.parent / f"{run_dir.name}.stderr"
    with open(errors, "w") as stderr:
        process = subprocess.Popen([sys.executable, "-c", PAUSING_TFL, str(pause_at), *args],
                                   stdout=subprocess.DEVNULL, stderr=stderr)
    progress = run_dir / "checkpoint" / "progress.json"
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if progress.exists() and json.loads(
                    progress.read_text())["completed_intervals"] == pause_at:
                break
            time.sleep(0.05)
        assert process.poll() is None, errors.read_text()[-3000:]
        assert json.loads(progress.read_text())["completed_intervals"] == pause_at
    finally:
        process.kill()  # SIGKILL
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def straight_cli_run(tmp_path_factory):
    """A `tfl train` run never interrupted: CLI_TRAIN on the toy corpus."""
    root = tmp_path_factory.mktemp("straight")
    corpus = root / "toy.txt"
    corpus.write_text(TOY_TEXT, encoding="utf-8")
    args = [*CLI_TRAIN, "--data", str(corpus)]
    subprocess.run([sys.executable, "-m", "tfl", *args, "--out", str(root / "run"), "--json"],
                   check=True, capture_output=True, timeout=300)
    return args, load_run(root / "run").model.get_weights()


def test_a_killed_process_resumes(straight_cli_run, tmp_path):
    """`tfl train` killed with SIGKILL after its first checkpoint resumes from that checkpoint
    (and trains only the intervals after it) to the weights of the uninterrupted run."""
    args, straight = straight_cli_run
    out = tmp_path / "killed"
    kill_after_interval(1, [*args, "--out", str(out)], out)
    assert not (out / "model.keras").exists()
    rerun = subprocess.run([sys.executable, "-m", "tfl", *args, "--out", str(out)], check=True,
                           capture_output=True, text=True, timeout=300)
    lines = rerun.stdout.splitlines()
    assert any(line.startswith("resuming") and line.endswith("at step 10") for line in lines)
    assert interval_steps(lines) == [20, 30, 40]  # a fresh run would print 10, 20, 30, 40
    resumed = load_run(out).model.get_weights()
    for x, y in zip(straight, resumed, strict=True):
        np.testing.assert_allclose(x, y, rtol=0, atol=1e-6)


def test_a_process_killed_after_its_last_checkpoint_is_finished_by_the_rerun(straight_cli_run,
                                                                              tmp_path):
    """Killed after the final interval's checkpoint, before model.keras: the rerun trains
    nothing, writes model.keras and loss.png, and the run loads with the final weights."""
    args, straight = straight_cli_run
    out = tmp_path / "killed"
    kill_after_interval(4, [*args, "--out", str(out)], out)
    assert not (out / "model.keras").exists() and not (out / "loss.png").exists()
    rerun = subprocess.run([sys.executable, "-m", "tfl", *args, "--out", str(out)], check=True,
                           capture_output=True, text=True, timeout=300)
    assert "already trained" in rerun.stdout and interval_steps(rerun.stdout.splitlines()) == []
    finished = load_run(out).model.get_weights()
    assert (out / "loss.png").is_file()
    for x, y in zip(straight, finished, strict=True):
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
    assert interval_steps(messages) == []


def test_rerunning_a_run_killed_before_its_final_save_finishes_it(toy_corpus, tmp_path):
    first = train("transformer", "nano", toy_corpus, tmp_path / "run", log=None,
                  train_config=small_config())
    (tmp_path / "run" / "model.keras").unlink()  # as a kill after the last checkpoint leaves it
    (tmp_path / "run" / "loss.png").unlink()
    messages = []
    again = train("transformer", "nano", toy_corpus, tmp_path / "run", log=messages.append,
                  train_config=small_config())
    assert any("already trained" in m for m in messages) and interval_steps(messages) == []
    assert again == first and again.weights_sha256 == first.weights_sha256
    assert weights_digest(load_run(tmp_path / "run").model) == first.weights_sha256
    assert (tmp_path / "run" / "loss.png").is_file()


def test_epochs_set_the_steps_from_the_training_windows(toy_corpus, tmp_path):
    config = TrainConfig(batch_size=10, eval_interval=1000, eval_batches=2, sample_tokens=0,
                         jit_compile=False)
    history = train("lstm", "nano", toy_corpus, tmp_path / "run", train_config=config, epochs=2,
                    log=None)
    windows = num_windows(len(load_corpus(toy_corpus).train), 32)  # characters = tokens
    assert history[-1]["step"] == 2 * windows // 10
    assert load_run(tmp_path / "run").train_config.steps == 2 * windows // 10
    messages = []
    train("lstm", "nano", toy_corpus, tmp_path / "run", train_config=config, epochs=2,
          log=messages.append)
    assert any("already trained" in m for m in messages)
    with pytest.raises(TflError, match="--epochs must be at least 1"):
        train("lstm", "nano", toy_corpus, tmp_path / "zero", epochs=0, log=None)
    with pytest.raises(TflError, match="either steps or epochs, not both"):
        train("lstm", "nano", toy_corpus, tmp_path / "both", train_config=small_config(),
              epochs=1, log=None)
    assert not (tmp_path / "zero").exists() and not (tmp_path / "both").exists()


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
                 "--sample-tokens", "5", "--no-jit", "--out", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["steps"] == 4 and math.isfinite(result["val_loss"])
    assert main(["eval", str(out), "--ngram", "3", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [r["model"].split()[0] for r in rows] == ["lstm", "3-gram", "lstm", "3-gram"]
    assert main(["train", "--model", "lstm", "--preset", "nanoo", "--data", toy_corpus]) == 2
    assert "did you mean 'nano'" in capsys.readouterr().err


def test_mixed_precision_trains_and_keeps_float32_weights(toy_corpus, tmp_path):
    keras.mixed_precision.set_global_policy("float16")  # a caller's own policy ...
    try:
        history = train("transformer", "nano", toy_corpus, tmp_path / "run", log=None,
                        train_config=small_config(steps=4, mixed_precision=True))
        assert keras.mixed_precision.global_policy().name == "float16"  # ... is restored
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert math.isfinite(history[-1]["loss"])
    run = load_run(tmp_path / "run")
    block = model_parts(run.model, run.model_config).blocks[0]
    assert block.dtype_policy.name == "mixed_bfloat16"
    assert {w.dtype for w in run.model.get_weights()} == {np.dtype("float32")}


def test_a_run_without_mixed_precision_ignores_the_global_policy(toy_corpus, tmp_path):
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        train("lstm", "nano", toy_corpus, tmp_path / "run", log=None,
              train_config=small_config(steps=2))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    run = load_run(tmp_path / "run")
    assert {layer.dtype_policy.name for layer in run.model.layers if layer.weights} == {"float32"}
