"""A run directory: everything needed to use a trained model again, and nothing else.

    RUN_DIR/
      config.json        model config, training config, data settings, tfl version
      tokenizer/         the tokenizer (tokenizer.json)
      model.keras        the latest weights (loads with safe_mode=True)
      best.keras         the weights with the best validation loss
      history.csv/json   one row per evaluation interval
      loss.png           training and validation loss curves
      logs/              TensorBoard logs
      checkpoint/        resume state: weights, optimizer slots, RNG state, completed intervals

>>> run = load_run("saved_models/transformer-char-cpu")  # doctest: +SKIP
>>> run.model_config.seq_len, run.tokenizer.vocab_size  # doctest: +SKIP
(64, 68)
"""

import json
from dataclasses import dataclass
from pathlib import Path

from tfl.errors import TflError
from tfl.models import config_from_dict, config_to_dict
from tfl.tokenizers import load_tokenizer

CONFIG_FILE = "config.json"
MODEL_FILE = "model.keras"
BEST_FILE = "best.keras"
TOKENIZER_DIR = "tokenizer"


@dataclass
class Run:
    """A loaded run: the Keras model, its tokenizer, its configs and where it lives."""

    model: object
    tokenizer: object
    model_config: object
    settings: dict
    path: Path


def read_run_settings(run_dir):
    """The parsed config.json of `run_dir`, with clear errors for a missing or broken run."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise TflError(f"no run directory at {run_dir}; train one with `tfl train --out {run_dir}`")
    path = run_dir / CONFIG_FILE
    if not path.is_file():
        raise TflError(f"{run_dir} is not a tfl run ({CONFIG_FILE} is missing)")
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
        settings["model_config"] = config_from_dict(settings["model"])
    except (ValueError, KeyError, TypeError):
        raise TflError(f"{path} is corrupt; train the run again") from None
    return settings


def load_keras_model(path, compile=False):
    """Load a `.keras` file with safe_mode on, turning a damaged file into a TflError."""
    import keras
    import keras_hub  # noqa: F401  (registers keras-hub layers for deserialisation)

    from tfl.models import fast_lstm, rotary_block  # noqa: F401  (registers tfl's own layers)

    path = Path(path)
    if not path.is_file():
        raise TflError(f"no model file at {path}; the run may not have finished an interval yet")
    try:
        return keras.models.load_model(path, safe_mode=True, compile=compile)
    except Exception as e:  # zip, h5 and deserialisation errors all mean "unreadable"
        raise TflError(f"cannot load {path} ({type(e).__name__}): the file is corrupt or "
                       "incomplete; train again or use another checkpoint") from None


def load_run(run_dir, which="model"):
    """Load the model (`which="model"` or `"best"`), tokenizer and configs of a run."""
    run_dir = Path(run_dir)
    settings = read_run_settings(run_dir)
    model = load_keras_model(run_dir / (MODEL_FILE if which == "model" else BEST_FILE))
    tokenizer = load_tokenizer(run_dir / TOKENIZER_DIR)
    return Run(model, tokenizer, settings["model_config"], settings, run_dir)


def run_settings(model_config, train_config, data):
    """The dict written as config.json."""
    from dataclasses import asdict

    from tfl import __version__

    return {
        "model": config_to_dict(model_config),
        "train": asdict(train_config),
        "data": data,
        "tfl_version": __version__,
    }
