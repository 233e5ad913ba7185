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

`RunSettings` is config.json as typed objects; `Run` adds the loaded model and tokenizer.

>>> settings = RunSettings(TransformerConfig.from_preset("nano", vocab_size=20), TrainConfig(),
...                        DataSettings("python_docs", "char"))
>>> RunSettings.from_json(settings.to_json()) == settings
True
>>> run = load_run("saved_models/transformer-char-cpu")  # doctest: +SKIP
>>> run.model_config.seq_len, run.data.corpus, run.train_config.batch_size  # doctest: +SKIP
(64, 'tiny_shakespeare', 12)
"""

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tfl import __version__
from tfl.errors import TflError
from tfl.models import LSTMConfig, TransformerConfig, config_from_dict, config_to_dict
from tfl.tokenizers import load_tokenizer
from tfl.training.config import TrainConfig

CONFIG_FILE = "config.json"
MODEL_FILE = "model.keras"
BEST_FILE = "best.keras"
TOKENIZER_DIR = "tokenizer"
CHECKPOINT_DIR = "checkpoint"


@dataclass(frozen=True)
class DataSettings:
    """Where a run's text came from: the corpus (a name or a path) and the tokenizer learned on it."""

    corpus: str
    tokenizer: str = "char"
    vocab_size: int | None = None


@dataclass(frozen=True)
class RunSettings:
    """config.json of a run, typed: model config, training config, data settings, tfl version."""

    model_config: TransformerConfig | LSTMConfig
    train_config: TrainConfig
    data: DataSettings
    tfl_version: str = field(default_factory=lambda: __version__)

    def to_json(self):
        """The dict written as config.json."""
        return {"model": config_to_dict(self.model_config), "train": asdict(self.train_config),
                "data": asdict(self.data), "tfl_version": self.tfl_version}

    @classmethod
    def from_json(cls, values):
        """Rebuild from config.json's dict; raises TflError (via the configs) on unknown fields."""
        return cls(config_from_dict(values["model"]), TrainConfig.from_dict(values["train"]),
                   DataSettings(**values["data"]), values.get("tfl_version", "unknown"))

    def same_run_as(self, other):
        """True when `other` would train the same run (the version that wrote it aside)."""
        return (self.model_config, self.train_config, self.data) == (
            other.model_config, other.train_config, other.data)


@dataclass
class Run:
    """A loaded run: the Keras model, its tokenizer, its settings and where it lives."""

    model: object
    tokenizer: object
    settings: RunSettings
    path: Path

    @property
    def model_config(self):
        return self.settings.model_config

    @property
    def train_config(self):
        return self.settings.train_config

    @property
    def data(self):
        return self.settings.data


def read_run_settings(run_dir):
    """The `RunSettings` of `run_dir`, with clear errors for a missing or broken run."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise TflError(f"no run directory at {run_dir}; train one with `tfl train --out {run_dir}`")
    path = run_dir / CONFIG_FILE
    if not path.is_file():
        raise TflError(f"{run_dir} is not a tfl run ({CONFIG_FILE} is missing)")
    try:
        return RunSettings.from_json(json.loads(path.read_text(encoding="utf-8")))
    except TflError as e:
        raise TflError(f"{path} does not describe a run this tfl can load ({e})") from None
    except (ValueError, KeyError, TypeError):
        raise TflError(f"{path} is corrupt; train the run again") from None


def is_run_directory(path):
    """True when `path` holds a tfl run (its config.json)."""
    return (Path(path) / CONFIG_FILE).is_file()


def load_keras_model(path, compile=False):
    """Load a `.keras` file with safe_mode on, turning a damaged file into a TflError."""
    import keras

    from tfl.models.registration import register_layers

    register_layers()
    path = Path(path)
    if not path.is_file():
        raise TflError(f"no model file at {path}; the run may not have finished an interval yet")
    try:
        return keras.models.load_model(path, safe_mode=True, compile=compile)
    except Exception as e:  # zip, h5 and deserialisation errors all mean "unreadable"
        raise TflError(f"cannot load {path} ({type(e).__name__}): the file is corrupt or "
                       "incomplete; train again or use another checkpoint") from None


def _why_missing(run_dir, filename):
    """A one-line reason, and the fix, for a run directory without `filename`."""
    started = (run_dir / CHECKPOINT_DIR / "progress.json").is_file()
    if not started:
        return (f"{run_dir} has no {filename}: its training has not finished an evaluation "
                "interval yet; run the same `tfl train` command again to train it")
    best = " (best.keras holds the best model so far)" if (run_dir / BEST_FILE).is_file() else ""
    return (f"{run_dir} has no {filename}: its training was interrupted{best}; run the same "
            "`tfl train` command again to resume and finish it")


def load_run(run_dir, which="model"):
    """Load the model (`which="model"` or `"best"`), tokenizer and settings of a run."""
    run_dir = Path(run_dir)
    settings = read_run_settings(run_dir)
    if which not in ("model", "best"):
        raise TflError(f"which={which!r}: load 'model' (the latest weights) or 'best'")
    path = run_dir / (MODEL_FILE if which == "model" else BEST_FILE)
    if not path.is_file():
        raise TflError(_why_missing(run_dir, path.name))
    model = load_keras_model(path)
    tokenizer = load_tokenizer(run_dir / TOKENIZER_DIR)
    return Run(model, tokenizer, settings, run_dir)
