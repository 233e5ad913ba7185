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


def test_devices_option_is_checked(capsys):
    from tfl.cli import main

    assert main(["train", "--preset", "nano", "--data", "python_docs", "--devices", "two",
                 "--out", "/tmp/tfl-never-written"]) == 2
    assert "--devices takes a number" in capsys.readouterr().err
