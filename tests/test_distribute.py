"""Multi-device training, each run in its own process: logical devices must be configured
before TensorFlow starts."""

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest

from tfl.run import load_run

TIMEOUT = 300


def tfl_cli(*args, env=None):
    result = subprocess.run([sys.executable, "-m", "tfl", *map(str, args)], capture_output=True,
                            text=True, timeout=TIMEOUT, env={**os.environ, **(env or {})})
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def train_args(model, out, *extra):
    return ["train", "--model", model, "--preset", "nano", "--data", "python_docs",
            "--steps", "6", "--eval-interval", "2", "--batch-size", "8", "--sample-tokens", "0",
            "--seed", "3", "--out", out, "--json", *extra]


# Both kinds of run compared with one device skip XLA (a mirrored run must) and gradient
# clipping: Keras 3 clips each replica's gradient before the all-reduce, which is not the global
# clip of one device. Then only the order of float additions in the all-reduce differs.
SAME_ARITHMETIC = ["--no-jit", "--clip-norm", "0"]


@pytest.fixture(scope="module")
def one_device_run(tmp_path_factory):
    """`one_device_run(model)`: (run directory, `tfl train --json` result) of the one-device
    baseline, trained once per model for every test of this module."""
    runs = {}

    def run(model):
        if model not in runs:
            out = tmp_path_factory.mktemp(f"one-{model}") / "run"
            runs[model] = out, json.loads(tfl_cli(*train_args(model, out, *SAME_ARITHMETIC)))
        return runs[model]

    return run


@pytest.mark.parametrize("model", ["transformer", "lstm"])
def test_two_replicas_match_one_device(model, one_device_run, tmp_path):
    from tfl.edge.litert import generate_tflite
    from tfl.inference.generate import generate

    one_dir, one = one_device_run(model)
    two_dir = tmp_path / "two"
    # Without --json: the run says how many replicas it trained on (none falls back to one).
    printed = tfl_cli(*[a for a in train_args(model, two_dir, "--devices", "2", *SAME_ARITHMETIC)
                        if a != "--json"])
    assert "2 replicas ->" in printed
    two_history = json.loads((two_dir / "history.json").read_text())
    np.testing.assert_allclose(one["history_loss"], [r["loss"] for r in two_history], rtol=1e-6)
    a = load_run(one_dir).model.get_weights()
    b = load_run(two_dir).model.get_weights()
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, rtol=0, atol=1e-6)
    # The mirrored model loads on one device and generates exactly like the one-device model.
    text_one, text_two = (generate(run_dir, "def ", 40, sampler="greedy")
                          for run_dir in (one_dir, two_dir))
    assert text_one == text_two and len(text_one) == 40
    # ... and its TFLite export generates that text too (the one-device run's export path is
    # test_export's business).
    tfl_cli("export", two_dir, "--out", tmp_path / "export", "--no-saved-model")
    assert generate_tflite(tmp_path / "export" / "model-float32.tflite", "def ", 40,
                           sampler="greedy") == text_one


def test_devices_option_is_checked(capsys, tmp_path):
    from tfl.cli import main

    assert main(["train", "--preset", "nano", "--data", "python_docs", "--devices", "two",
                 "--out", str(tmp_path / "run")]) == 2
    assert "--devices takes a number" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def run_workers(commands, timeout=TIMEOUT, wait=None):
    """Run `commands[i](tf_config)` as worker i of a cluster on free 127.0.0.1 ports, each with
    its TF_CONFIG; returns `[(returncode, stdout, stderr)]`, one per worker.

    Free ports are found by binding and releasing them, so another program may take one before
    its worker listens there. That worker then stops at once, saying "cannot listen on port"
    (a worker claims its port before anything else), and the whole cluster is started once
    more on new ports. `wait(workers, timeout)` waits for the workers (default
    `stop_together`) and must leave none running.
    """
    from tfl.training.multi_worker import local_tf_configs

    for attempt in range(2):
        # (Output goes to files: a pipe nobody reads while the workers run could fill up.)
        files = [(tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")) for _ in commands]
        workers = [subprocess.Popen(command(tf_config), stdout=out, stderr=err, text=True,
                                    env={**os.environ, "TF_CONFIG": tf_config})
                   for command, tf_config, (out, err)
                   in zip(commands, local_tf_configs(len(commands)), files)]
        (wait or stop_together)(workers, timeout)
        results = []
        for worker, (out, err) in zip(workers, files):
            out.seek(0)
            err.seek(0)
            results.append((worker.returncode, out.read(), err.read()))
        if not (attempt == 0 and any("cannot listen on port" in err for _, _, err in results)):
            return results


def stop_together(workers, timeout=TIMEOUT):
    """Wait for all `workers` (Popen objects), at most `timeout` seconds; once one fails, or
    time is up, kill the rest (a worker whose peer died would wait for it)."""
    deadline = time.monotonic() + timeout
    while any(w.poll() is None for w in workers) and time.monotonic() < deadline:
        if any(w.poll() not in (None, 0) for w in workers):
            break
        time.sleep(0.1)
    for w in workers:
        if w.poll() is None:
            w.kill()
        w.wait()


def tfl_command(*args):
    return lambda tf_config: [sys.executable, "-m", "tfl", *map(str, args)]


def test_two_worker_processes_train_in_sync(one_device_run, tmp_path):
    """Two LSTM workers end with the same weights as one process on one device. (The LSTM's
    embedding gradient is IndexedSlices: the collective gathers it across workers. The
    Transformer's two-worker run is checked, resumed, by test_a_hung_worker_...)"""
    from tfl.inference.evaluate import evaluate_run

    results = run_workers([tfl_command(*train_args("lstm", tmp_path / f"worker{index}",
                                                   "--multi-worker", *SAME_ARITHMETIC))
                           for index in range(2)])
    for returncode, _, err in results:
        assert returncode == 0, err[-3000:]
    chief, other = (json.loads(out) for _, out, _ in results)
    assert chief["weights_sha256"] == other["weights_sha256"]
    assert chief["history_loss"] == other["history_loss"]
    # Only the chief writes its run directory ...
    assert (tmp_path / "worker0" / "model.keras").is_file()
    assert not (tmp_path / "worker1").exists()
    # ... and the run is the same as one process training on one device with the same batches.
    _, one = one_device_run("lstm")
    np.testing.assert_allclose(chief["history_loss"], one["history_loss"], rtol=1e-6)
    # The chief's run loads and evaluates on one device.
    evaluation = evaluate_run(tmp_path / "worker0", splits=["validation"], max_chars=2000)
    assert np.isfinite(evaluation["rows"][0]["loss"])


HUNG_TIMEOUT = 10  # long enough for the workers' unequal start, short for the test


def test_a_hung_worker_stops_the_other_and_both_resume(one_device_run, tmp_path):
    """Worker 1 hangs after the first checkpoint: worker 0 gives up after --cluster-timeout
    with one line. Both started again with the same command resume from that checkpoint, and
    end where a run on one device ends."""
    from test_train import PAUSING_TFL, interval_steps

    out = tmp_path / "run"
    args = [a for a in train_args("transformer", out, "--multi-worker", *SAME_ARITHMETIC,
                                  "--cluster-timeout", HUNG_TIMEOUT) if a != "--json"]
    progress = out / "checkpoint" / "progress.json"

    def hangs_after_interval_1(tf_config):
        return [sys.executable, "-c", PAUSING_TFL, "1", str(tmp_path / "never"), *map(str, args)]

    def wait_noting_the_checkpoint(workers, timeout):
        first, hung = workers
        while not progress.exists() and first.poll() is None and hung.poll() is None:
            time.sleep(0.05)
        hung_since = time.monotonic()  # worker 1 stops answering after the first checkpoint
        try:
            first.wait(timeout)
            waited.append(time.monotonic() - hung_since)
            # Its cluster is up, yet SIGTERM still ends the hung worker, as any tfl train.
            hung.terminate()
            hung.wait(30)
        except subprocess.TimeoutExpired:
            pass  # (stopped below; the asserts say what went wrong)
        stop_together(workers, 0)

    waited = []
    (status, _, error), (hung_status, _, _) = run_workers(
        [tfl_command(*args), hangs_after_interval_1], timeout=HUNG_TIMEOUT + 150,
        wait=wait_noting_the_checkpoint)
    assert status == 2, error[-3000:]
    # (TensorFlow's own log lines about the aborted collective may come first.)
    assert [line for line in error.splitlines() if "tfl: error:" in line] == [
        f"tfl: error: another worker of the cluster did not answer in time (it crashed, was "
        f"killed, or hung for --cluster-timeout seconds); the checkpoint at step 2 is kept: "
        f"start every worker again with the same command to resume"]
    assert HUNG_TIMEOUT - 2 < waited[0] < HUNG_TIMEOUT + 30, waited
    assert hung_status == -signal.SIGTERM
    assert json.loads(progress.read_text())["completed_intervals"] == 1

    for status, stdout, error in run_workers([tfl_command(*args)] * 2):
        assert status == 0, error[-3000:]
        lines = stdout.splitlines()
        assert any(line.startswith("resuming") and line.endswith("at step 2") for line in lines)
        assert interval_steps(lines) == [4, 6]  # not 2: the first interval was not trained again
    one_dir, one = one_device_run("transformer")
    history = json.loads((out / "history.json").read_text())
    np.testing.assert_allclose([r["loss"] for r in history], one["history_loss"], rtol=1e-6)
    for x, y in zip(load_run(one_dir).model.get_weights(), load_run(out).model.get_weights(),
                    strict=True):
        np.testing.assert_allclose(x, y, rtol=0, atol=1e-6)


def first_line(process, timeout=120):
    """The first line `process` prints on stdout (a pipe); fails after `timeout` seconds."""
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    assert ready, f"no output in {timeout} s"
    return process.stdout.readline()


def test_a_worker_says_whom_it_waits_for_and_gives_up_or_stops_in_one_line(tmp_path):
    """Worker 0 of two, whose peer never starts (nothing listens on its port): it names the
    peer, and exits 2 with one line after --cluster-timeout; Ctrl-C and SIGTERM stop it while
    it waits. Nothing is written."""
    from tfl.training.multi_worker import free_ports

    def alone(name, timeout):
        ports = free_ports(2)
        tf_config = json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                                "task": {"type": "worker", "index": 0}})
        args = [a for a in train_args("transformer", tmp_path / name, "--multi-worker",
                                      "--cluster-timeout", timeout) if a != "--json"]
        process = subprocess.Popen([sys.executable, "-m", "tfl", *map(str, args)], text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   env={**os.environ, "TF_CONFIG": tf_config})
        return ports[1], process

    # (Started together: three TensorFlow imports overlap.)
    (peer, gives_up), (_, interrupted), (_, terminated) = (
        alone("timeout", 3), alone("interrupted", 300), alone("terminated", 300))
    try:
        assert first_line(gives_up) == (f"waiting for worker 1 (127.0.0.1:{peer}) of "
                                              "TF_CONFIG to start (at most 3 s, "
                                              "--cluster-timeout)\n")
        announced = time.monotonic()  # (after 2 s of waiting)
        _, error = gives_up.communicate(timeout=60)
        assert gives_up.returncode == 2
        assert error == (f"tfl: error: worker 1 (127.0.0.1:{peer}) of TF_CONFIG did not start "
                         "within 3 s; start `tfl train --multi-worker` with its own TF_CONFIG "
                         "on every worker, or raise --cluster-timeout\n")
        assert time.monotonic() - announced < 5
        for process, signal_number, status, message in (
                (interrupted, signal.SIGINT, 130, "tfl: interrupted\n"),
                (terminated, signal.SIGTERM, -signal.SIGTERM, "")):
            assert first_line(process).startswith("waiting for worker 1")
            process.send_signal(signal_number)
            sent = time.monotonic()
            _, error = process.communicate(timeout=60)
            assert (process.returncode, error) == (status, message)
            assert time.monotonic() - sent < 10
    finally:
        for process in (gives_up, interrupted, terminated):
            process.kill()
            process.communicate()
    assert list(tmp_path.iterdir()) == []


def test_multi_worker_needs_tf_config(capsys, monkeypatch, tmp_path):
    from tfl.cli import main

    command = ["train", "--preset", "nano", "--data", "python_docs", "--multi-worker",
               "--out", str(tmp_path / "run")]
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert main(command) == 2
    assert "needs the TF_CONFIG environment variable" in capsys.readouterr().err
    monkeypatch.setenv("TF_CONFIG", "{not json")
    assert main(command) == 2
    assert "not a valid cluster description" in capsys.readouterr().err
    assert main([*command, "--devices", "2"]) == 2
    assert "--multi-worker and --devices do not combine" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_tf_config_command_prints_one_config_per_worker():
    configs = json.loads(tfl_cli("tf-config", "--workers", "3", "--json"))["tf_configs"]
    tasks = [json.loads(c)["task"]["index"] for c in configs]
    ports = {tuple(json.loads(c)["cluster"]["worker"]) for c in configs}
    assert tasks == [0, 1, 2] and len(ports) == 1
