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


@pytest.mark.parametrize("model", ["transformer", "lstm"])
def test_two_replicas_match_one_device(model, tmp_path):
    # Both runs skip XLA (a mirrored run must) and gradient clipping: Keras 3 clips each
    # replica's gradient before the all-reduce, which is not the global clip of one device.
    # Then only the order of float additions in the all-reduce differs.
    same = ["--no-jit", "--clip-norm", "0"]
    one = json.loads(tfl_cli(*train_args(model, tmp_path / "one", *same)))
    two = json.loads(tfl_cli(*train_args(model, tmp_path / "two", "--devices", "2", *same)))
    np.testing.assert_allclose(one["history_loss"], two["history_loss"], rtol=1e-6)
    a = load_run(tmp_path / "one").model.get_weights()
    b = load_run(tmp_path / "two").model.get_weights()
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, rtol=0, atol=1e-6)
    # The mirrored model loads on one device and generates exactly like the one-device model.
    gen = ["--prompt", "def ", "--max-new-tokens", "40", "--sampler", "greedy", "--json"]
    text_one = json.loads(tfl_cli("generate", tmp_path / "one", *gen))["text"]
    text_two = json.loads(tfl_cli("generate", tmp_path / "two", *gen))["text"]
    assert text_one == text_two and len(text_one) == 40
    # ... and exports to the same TFLite model, which generates the same text.
    for name in ("one", "two"):
        tfl_cli("export", tmp_path / name, "--out", tmp_path / f"{name}-export",
                "--no-saved-model")
    tflite = [json.loads(tfl_cli("generate", "--tflite",
                                 tmp_path / f"{name}-export" / "model-float32.tflite", *gen))
              for name in ("one", "two")]
    assert tflite[0]["text"] == tflite[1]["text"] == text_one


def test_devices_option_is_checked(capsys):
    from tfl.cli import main

    assert main(["train", "--preset", "nano", "--data", "python_docs", "--devices", "two",
                 "--out", "/tmp/tfl-never-written"]) == 2
    assert "--devices takes a number" in capsys.readouterr().err


@pytest.mark.parametrize("model", ["transformer", "lstm"])
def test_two_worker_processes_train_in_sync(model, tmp_path):
    # Two workers on 127.0.0.1 (free ports chosen now), each its own process with TF_CONFIG.
    # The LSTM's embedding gradient is IndexedSlices: the collective gathers it across workers.
    from tfl.training.multi_worker import local_tf_configs

    args = [sys.executable, "-m", "tfl", *map(str, train_args(
        model, "OUT", "--multi-worker", "--no-jit", "--clip-norm", "0"))]
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
    one = json.loads(tfl_cli(*train_args(model, tmp_path / "one", "--no-jit",
                                         "--clip-norm", "0")))
    np.testing.assert_allclose(chief["history_loss"], one["history_loss"], rtol=1e-6)
    # The chief's checkpoint loads and evaluates on one device.
    evaluation = json.loads(tfl_cli("eval", tmp_path / "worker0", "--split", "validation",
                                    "--max-chars", "2000", "--json"))
    assert np.isfinite(evaluation["rows"][0]["loss"])


def test_multi_worker_needs_tf_config(capsys, monkeypatch):
    from tfl.cli import main

    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert main(["train", "--preset", "nano", "--data", "python_docs", "--multi-worker",
                 "--out", "/tmp/tfl-never-written"]) == 2
    assert "needs the TF_CONFIG environment variable" in capsys.readouterr().err
    monkeypatch.setenv("TF_CONFIG", "{not json")
    assert main(["train", "--preset", "nano", "--data", "python_docs", "--multi-worker",
                 "--out", "/tmp/tfl-never-written"]) == 2
    assert "not a valid cluster description" in capsys.readouterr().err


def test_tf_config_command_prints_one_config_per_worker():
    configs = json.loads(tfl_cli("tf-config", "--workers", "3", "--json"))["tf_configs"]
    tasks = [json.loads(c)["task"]["index"] for c in configs]
    ports = {tuple(json.loads(c)["cluster"]["worker"]) for c in configs}
    assert tasks == [0, 1, 2] and len(ports) == 1
