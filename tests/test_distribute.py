"""Multi-device training, each run in its own process: logical devices must be configured
before TensorFlow starts."""

import json
import os
import subprocess
import sys

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
    # ... and exports to the same TFLite model, which generates the same text.
    for run_dir in (one_dir, two_dir):
        tfl_cli("export", run_dir, "--out", run_dir.parent / "export", "--no-saved-model")
    tflite = [generate_tflite(run_dir.parent / "export" / "model-float32.tflite", "def ", 40,
                              sampler="greedy") for run_dir in (one_dir, two_dir)]
    assert tflite[0] == tflite[1] == text_one


def test_devices_option_is_checked(capsys, tmp_path):
    from tfl.cli import main

    assert main(["train", "--preset", "nano", "--data", "python_docs", "--devices", "two",
                 "--out", str(tmp_path / "run")]) == 2
    assert "--devices takes a number" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("model", ["transformer", "lstm"])
def test_two_worker_processes_train_in_sync(model, one_device_run, tmp_path):
    # Two workers on 127.0.0.1 (free ports chosen now), each its own process with TF_CONFIG.
    # The LSTM's embedding gradient is IndexedSlices: the collective gathers it across workers.
    from tfl.training.multi_worker import local_tf_configs

    from tfl.inference.evaluate import evaluate_run

    args = [sys.executable, "-m", "tfl", *map(str, train_args(
        model, "OUT", "--multi-worker", *SAME_ARITHMETIC))]
    workers = []
    for index, tf_config in enumerate(local_tf_configs(2)):
        out = tmp_path / f"worker{index}"
        command = [str(out) if a == "OUT" else a for a in args]
        workers.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True, env={**os.environ, "TF_CONFIG": tf_config}))
    try:
        outputs = [w.communicate(timeout=TIMEOUT) for w in workers]
    finally:
        for w in workers:  # a worker whose peer died would wait for it: never leave one behind
            w.kill()
    for w, (_, err) in zip(workers, outputs):
        assert w.returncode == 0, err[-3000:]
    chief, other = (json.loads(out) for out, _ in outputs)
    assert chief["weights_sha256"] == other["weights_sha256"]
    assert chief["history_loss"] == other["history_loss"]
    # Only the chief writes its run directory ...
    assert (tmp_path / "worker0" / "model.keras").is_file()
    assert not (tmp_path / "worker1").exists()
    # ... and the run is the same as one process training on one device with the same batches.
    _, one = one_device_run(model)
    np.testing.assert_allclose(chief["history_loss"], one["history_loss"], rtol=1e-6)
    # The chief's run loads and evaluates on one device.
    evaluation = evaluate_run(tmp_path / "worker0", splits=["validation"], max_chars=2000)
    assert np.isfinite(evaluation["rows"][0]["loss"])


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
