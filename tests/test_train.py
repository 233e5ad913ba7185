import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from tfl.data import load_corpus, num_windows
from tfl.errors import TflError
from tfl.models.parts import model_parts
from tfl.run import load_run
from tfl.training.config import TrainConfig
from tfl.training.lock import LOCK_FILE
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


# `tfl train` in a subprocess that pauses once the interval given as its first argument has
# ended (its checkpoint written), until the file named by its second argument exists (or for
# ten minutes), so that a test can kill it there or start a second writer meanwhile. It wraps
# the Trainer's public `interval_done` hook, which both runners call.
PAUSING_TFL = """
import os, sys, time
import tfl.training.trainer as trainer

pause_at, go_file = int(sys.argv[1]), sys.argv[2]
interval_done = trainer.Trainer.interval_done

def pausing_interval_done(self, interval, loss, val_loss):
    interval_done(self, interval, loss, val_loss)
    if interval + 1 == pause_at:
        deadline = time.monotonic() + 600
        while not os.path.exists(go_file) and time.monotonic() < deadline:
            time.sleep(0.05)

trainer.Trainer.interval_done = pausing_interval_done
from tfl.cli import main
sys.exit(main(sys.argv[3:]))
"""
# XLA off: these tests are about checkpoints and locks (test_loss_goes_down_on_a_learnable_corpus
# keeps one XLA run).
CLI_TRAIN = ["train", "--model", "transformer", "--preset", "nano", "--steps", "40",
             "--eval-interval", "10", "--batch-size", "4", "--sample-tokens", "0", "--no-jit"]


def start_paused(pause_at, args, run_dir, go_file=None, env=None):
    """Start `tfl train ARGS` paused after interval `pause_at` until `go_file` exists; return
    the process once its checkpoint holds `pause_at` intervals."""
    errors = run_dir.parent / f"{run_dir.name}.stderr"
    go_file = go_file or run_dir.parent / f"{run_dir.name}.never"
    with open(errors, "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-c", PAUSING_TFL, str(pause_at), str(go_file), *map(str, args)],
            stdout=subprocess.PIPE, stderr=stderr, text=True, env=env)
    wait_for_checkpoint(process, run_dir, pause_at, errors)
    return process


def wait_for_checkpoint(process, run_dir, intervals, errors, timeout=240):
    progress = run_dir / "checkpoint" / "progress.json"
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if progress.exists() and json.loads(
                    progress.read_text())["completed_intervals"] == intervals:
                break
            time.sleep(0.05)
        assert process.poll() is None, errors.read_text()[-3000:]
        assert json.loads(progress.read_text())["completed_intervals"] == intervals
    except BaseException:
        process.kill()
        raise


def kill_after_interval(pause_at, args, run_dir):
    """Run `tfl train ARGS` until its checkpoint holds `pause_at` intervals, then SIGKILL it."""
    process = start_paused(pause_at, args, run_dir)
    process.kill()  # SIGKILL
    process.communicate(timeout=30)
    return process.pid


@pytest.fixture(scope="module")
def straight_cli_run(tmp_path_factory):
    """A `tfl train` run never interrupted: CLI_TRAIN on the toy corpus."""
    root = tmp_path_factory.mktemp("straight")
    corpus = root / "toy.txt"
    corpus.write_text(TOY_TEXT, encoding="utf-8")
    args = [*CLI_TRAIN, "--data", str(corpus)]
    result = subprocess.run([sys.executable, "-m", "tfl", *args, "--out", str(root / "run"),
                             "--json"], check=True, capture_output=True, text=True, timeout=300)
    assert json.loads(result.stdout)["steps"] == 40  # --json: stdout holds the JSON only
    return args, load_run(root / "run").model.get_weights()


def test_a_killed_process_resumes(straight_cli_run, tmp_path):
    """`tfl train` killed with SIGKILL after its first checkpoint resumes from that checkpoint
    (and trains only the intervals after it) to the weights of the uninterrupted run; the lock
    the killed process left is stale and does not block the rerun."""
    args, straight = straight_cli_run
    out = tmp_path / "killed"
    killed_pid = kill_after_interval(1, [*args, "--out", str(out)], out)
    assert not (out / "model.keras").exists()
    assert json.loads((out / LOCK_FILE).read_text())["pid"] == killed_pid  # left behind
    rerun = subprocess.run([sys.executable, "-m", "tfl", *args, "--out", str(out)], check=True,
                           capture_output=True, text=True, timeout=300)
    lines = rerun.stdout.splitlines()
    assert any(line.startswith("resuming") and line.endswith("at step 10") for line in lines)
    assert interval_steps(lines) == [20, 30, 40]  # a fresh run would print 10, 20, 30, 40
    resumed = load_run(out).model.get_weights()
    for x, y in zip(straight, resumed, strict=True):
        np.testing.assert_allclose(x, y, rtol=0, atol=1e-6)
    assert not (out / LOCK_FILE).exists()


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


def test_a_second_writer_stops_at_once_and_the_first_finishes(straight_cli_run, tmp_path):
    """While one `tfl train` writes a run, the same command, or one with another seed or
    model, on the same --out exits 2 with one line naming the writer, and writes nothing: the
    first run then ends with the uninterrupted run's weights and settings, and unlocks. (Its
    output also shows the progress lines of a run whose output is not a terminal.)"""
    args, straight = straight_cli_run
    out = tmp_path / "run"
    go = tmp_path / "go"
    first = start_paused(1, [*args, "--out", str(out)], out, go_file=go)
    try:
        config_before = (out / "config.json").read_text()
        seconds = [[*args, "--out", str(out)],
                   [*args, "--seed", "2", "--out", str(out)],
                   [*[a if a != "transformer" else "lstm" for a in args], "--out", str(out)]]
        second = [subprocess.Popen([sys.executable, "-m", "tfl", *command], text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                  for command in seconds]
        results = [p.communicate(timeout=120) for p in second]
        for p, (stdout, stderr) in zip(second, results):
            assert p.returncode == 2 and stdout == "", stderr
            assert stderr.count("\n") == 1 and stderr.startswith(
                f"tfl: error: {out} is being trained by another `tfl train` "
                f"(process {first.pid} on "), stderr
        assert (out / "config.json").read_text() == config_before
    finally:
        go.touch()
        stdout, _ = first.communicate(timeout=300)
    lines = stdout.splitlines()
    assert first.returncode == 0 and interval_steps(lines) == [10, 20, 30, 40]
    # Output to a pipe: plain progress lines (every tenth of the run, once it has lasted a few
    # seconds, as the pause made it) among the interval lines, not one line updated in place.
    progress = [line for line in lines if line.startswith("training ")]
    assert len(progress) >= 5 and not any("\r" in line for line in lines)
    assert re.fullmatch(r"training \d+/40 steps \(\d+%\) [\d.,]+ steps/s, \d+:\d\d left  "
                        r"loss \d\.\d{4}", progress[0]), progress[0]
    for x, y in zip(straight, load_run(out).model.get_weights(), strict=True):
        np.testing.assert_allclose(x, y, rtol=0, atol=1e-6)
    assert json.loads((out / "config.json").read_text())["train"]["seed"] == 1337
    assert not (out / LOCK_FILE).exists()


def dead_pid():
    """The process id of a process that has ended (and been reaped)."""
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    return ended.pid


def test_a_run_killed_before_its_first_checkpoint_does_not_block_another(toy_corpus, tmp_path):
    out = tmp_path / "run"
    train("lstm", "nano", toy_corpus, out, train_config=small_config(steps=2), log=None)
    # What a SIGKILL in the first interval leaves: settings, tokenizer, logs, a stale lock.
    for name in ("checkpoint", "model.keras", "best.keras", "history.json", "history.csv",
                 "loss.png"):
        if (out / name).is_dir():
            shutil.rmtree(out / name)
        else:
            (out / name).unlink()
    (out / LOCK_FILE).write_text(json.dumps({"pid": dead_pid(), "host": socket.gethostname()}))
    messages = []
    train("transformer", "nano", toy_corpus, out, train_config=small_config(steps=2, seed=2),
          log=messages.append)
    assert messages[0] == f"starting {out} over: its last run was stopped before its first " \
                          "checkpoint"
    run = load_run(out)
    assert run.model_config.architecture == "transformer" and run.train_config.seed == 2


def test_the_lock_names_its_holder_and_takes_over_stale_ones(tmp_path, monkeypatch):
    from tfl.training import lock

    with lock.run_lock(tmp_path / "run"):
        holder = json.loads((tmp_path / "run" / LOCK_FILE).read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        with pytest.raises(TflError, match=f"being trained by another .*process {os.getpid()}"):
            lock.check_unlocked(tmp_path / "run")
    lock.check_unlocked(tmp_path / "run")  # released
    assert list((tmp_path / "run").iterdir()) == []
    # A filesystem without flock: the recorded holder decides.
    monkeypatch.setattr(lock, "_try_flock", lambda fd: None)
    dead = {"pid": dead_pid(), "host": socket.gethostname()}
    for holder, held in ((dead, False), ({**dead, "pid": os.getpid()}, True),
                         ({**dead, "host": "another-host"}, True)):
        (tmp_path / "run" / LOCK_FILE).write_text(json.dumps(holder))
        if held:
            with pytest.raises(TflError, match="being trained by another"):
                with lock.run_lock(tmp_path / "run"):
                    pass
        else:
            with lock.run_lock(tmp_path / "run"):
                assert json.loads((tmp_path / "run" / LOCK_FILE).read_text())["pid"] == \
                    os.getpid()


def test_nan_loss_stops_with_a_clear_message(toy_corpus, tmp_path):
    with pytest.raises(TflError, match="NaN.*--learning-rate"):
        train("transformer", "nano", toy_corpus, tmp_path / "run", log=None,
              train_config=small_config(learning_rate=1e38, clip_norm=0, weight_decay=0))
    # It diverged in its first interval: no checkpoint, so nothing of it stays to block the
    # corrected command.
    assert not (tmp_path / "run").exists()


def test_a_new_run_interrupted_before_its_first_checkpoint_leaves_nothing(toy_corpus, tmp_path):
    (tmp_path / "empty").mkdir()
    for out in (tmp_path / "run", tmp_path / "empty"):
        messages = []
        with pytest.raises(KeyboardInterrupt):
            train("lstm", "nano", toy_corpus, out, train_config=small_config(),
                  log=messages.append, extra_callbacks=[_InterruptAt(1)])
        assert "nothing was kept" in messages[-1]
    assert not (tmp_path / "run").exists() and list((tmp_path / "empty").iterdir()) == []


TINY_TEXT = "a corpus too short.\n"


@pytest.mark.parametrize("options, message", [
    (["--learning-rate", "nan"], "learning_rate is nan; it must be a positive number"),
    (["--learning-rate", "0"], "learning_rate is 0.0; it must be a positive number"),
    (["--clip-norm", "-1"], "clip_norm is -1.0; it must be 0 or a positive number"),
    (["--dropout", "1"], "dropout 1.0 must be in [0, 1)"),
    (["--epochs", "0"], "--epochs must be at least 1, got 0"),
    (["--data", "TINY"], "the train split has 18 tokens, 0 window(s) of 33: fewer than one "
                         "batch of 4;"),
    (["--batch-size", "16"], "the validation split has 400 tokens, 12 window(s) of 33: fewer "
                             "than one batch of 16;"),
    (["--devices", "5", "--batch-size", "12"], "--batch-size 12 does not split evenly over 5 "
                                               "replicas; use a multiple of 5"),
    (["--multi-worker", "--cluster-timeout", "-1"], "--cluster-timeout must be a positive"),
], ids=["lr-nan", "lr-0", "clip-norm", "dropout", "epochs-0", "tiny-corpus", "big-batch",
        "devices-5", "cluster-timeout"])
def test_a_mistake_is_one_line_and_writes_nothing(options, message, toy_corpus, text_file,
                                                  tmp_path, capsys):
    from tfl.cli import main

    tiny = str(text_file(TINY_TEXT, name="tiny.txt"))
    options = [tiny if o == "TINY" else o for o in options]
    base = ["train", "--model", "transformer", "--preset", "nano", "--data", toy_corpus,
            "--batch-size", "4", "--no-jit"]
    (tmp_path / "empty").mkdir()
    for out in (tmp_path / "run", tmp_path / "empty"):
        assert main([*base, *options, "--out", str(out)]) == 2
        captured = capsys.readouterr()
        assert captured.err.startswith("tfl: error: ") and captured.err.count("\n") == 1
        assert message in captured.err and captured.out == ""
    assert not (tmp_path / "run").exists() and list((tmp_path / "empty").iterdir()) == []


def test_an_out_that_cannot_be_a_run_directory_is_refused_before_any_work(toy_corpus, tmp_path,
                                                                          capsys):
    from tfl.cli import main

    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    if os.geteuid() == 0:  # root may write anywhere permissions allow; /proc/sys is refused
        locked = Path("/proc/sys")
        if not (locked.is_dir() and not os.access(locked, os.W_OK)):
            pytest.skip("needs a folder this user may not write (not root, or Linux)")
    else:
        locked = tmp_path / "read-only"
        locked.mkdir(mode=0o555)
    cases = [(a_file, f"--out {a_file} is a file, not a directory"),
             (a_file / "run", f"--out {a_file / 'run'} is inside {a_file}, which is a file"),
             (locked / "run", f"--out {locked / 'run'}: no permission to write in {locked}")]
    for out, message in cases:
        started = time.monotonic()
        assert main(["train", "--preset", "nano", "--data", toy_corpus, "--out", str(out)]) == 2
        assert time.monotonic() - started < 1  # refused before the corpus or a model
        error = capsys.readouterr().err
        assert error == f"tfl: error: {message}; choose another --out\n", error
    assert a_file.read_text() == "mine" and not (locked / "run").exists()


@pytest.mark.parametrize("field, value", [
    ("learning_rate", float("nan")), ("learning_rate", float("inf")), ("learning_rate", -1e-3),
    ("min_learning_rate", 1.0), ("clip_norm", -1.0), ("clip_norm", float("nan")),
    ("warmup_steps", -1), ("weight_decay", -0.1), ("eval_batches", -1), ("steps", 0),
    ("batch_size", 0), ("eval_interval", 0), ("stride", -1), ("sample_tokens", -1),
    ("beta_2", 1.0), ("seed", -1)])
def test_train_config_refuses_every_bad_value(field, value):
    with pytest.raises(TflError, match=f"^training option {field} is "):
        TrainConfig(**{field: value})
    assert TrainConfig(warmup_steps=0, weight_decay=0, clip_norm=0, eval_batches=0,
                       learning_rate=1e-5, min_learning_rate=0)


def test_cli_caps_the_final_learning_rate_at_the_peak(toy_corpus, tmp_path, capsys):
    from tfl.cli import main

    assert main(["train", "--model", "lstm", "--preset", "nano", "--data", toy_corpus,
                 "--steps", "2", "--eval-interval", "2", "--batch-size", "4", "--no-jit",
                 "--sample-tokens", "0", "--learning-rate", "5e-5",
                 "--out", str(tmp_path / "run"), "--json"]) == 0
    train_config = load_run(tmp_path / "run").train_config
    assert train_config.learning_rate == train_config.min_learning_rate == 5e-5


class _SpoilWeightsAt(keras.callbacks.Callback):
    """Adds large noise to every weight as interval `epoch` begins: that interval ends with a
    validation loss far above the best one before it."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            rng = np.random.default_rng(0)
            for w in self.model.trainable_weights:
                w.assign(w + rng.normal(0, 2, w.shape).astype("float32"))


def test_best_keras_holds_the_model_of_the_lowest_validation_loss(toy_corpus, tmp_path):
    from tfl.data.pipeline import encode_splits, make_dataset

    config = small_config(steps=9, eval_interval=3)
    history = train("transformer", "nano", toy_corpus, tmp_path / "run", log=None,
                    train_config=config, extra_callbacks=[_SpoilWeightsAt(2)])
    val_losses = [r["val_loss"] for r in history]
    assert np.argmin(val_losses) == 1 and val_losses[2] > val_losses[1] + 1.0

    def validation_loss(run):
        # The Trainer's validation batches, scored independently of Keras's evaluation.
        ids = encode_splits(load_corpus(toy_corpus), run.tokenizer)["validation"]
        batches = make_dataset(ids, run.model_config.seq_len, config.batch_size)
        losses = [keras.losses.sparse_categorical_crossentropy(y, run.model(x), from_logits=True)
                  for x, y in batches.take(config.eval_batches)]
        return float(np.mean([np.mean(loss) for loss in losses]))

    best, last = (load_run(tmp_path / "run", which=w) for w in ("best", "model"))
    assert validation_loss(best) == pytest.approx(val_losses[1], abs=1e-4)
    assert validation_loss(last) == pytest.approx(val_losses[2], abs=1e-4)


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
