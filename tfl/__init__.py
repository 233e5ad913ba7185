"""tfl: language models from theory to practice, in Keras and TensorFlow.

The public API is listed here. Importing `tfl` is cheap: TensorFlow is imported only when
something that needs it is first used, so `tfl --help` and `import tfl` stay fast.

>>> import tfl
>>> corpus = tfl.load_corpus("python_docs")
>>> tokenizer = tfl.build_tokenizer("char", corpus.train)
>>> tokenizer.decode(tokenizer.encode("def f(x):")) == "def f(x):"
True
"""

import importlib

__version__ = "0.1.0"

# Public name -> module that defines it. Resolved on first access (PEP 562).
_PUBLIC = {
    # errors
    "TflError": "tfl.errors",
    # data and tokenizers
    "Corpus": "tfl.data.corpora",
    "load_corpus": "tfl.data.corpora",
    "load_corpus_or_fallback": "tfl.data.corpora",
    "available_corpora": "tfl.data.corpora",
    "make_dataset": "tfl.data.pipeline",
    "encode_splits": "tfl.data.pipeline",
    "Tokenizer": "tfl.tokenizers.base",
    "build_tokenizer": "tfl.tokenizers",
    "load_tokenizer": "tfl.tokenizers",
    "tokenizer_stats": "tfl.tokenizers.base",
    # models
    "TransformerConfig": "tfl.models.config",
    "LSTMConfig": "tfl.models.config",
    "build_model": "tfl.models",
    "model_parts": "tfl.models.parts",
    "attention_weights": "tfl.models.attention",
    "NGramLM": "tfl.models.ngram",
    # runs
    "Run": "tfl.run",
    "load_run": "tfl.run",
    # training
    "TrainConfig": "tfl.training.config",
    "train": "tfl.training.workflow",
    "split_cpu": "tfl.training.distribute",
    "get_strategy": "tfl.training.distribute",
    # inference
    "make_sampler": "tfl.inference.sampling",
    "make_decoder": "tfl.inference.decoders",
    "generate": "tfl.inference.generate",
    "generate_ids": "tfl.inference.generate",
    "generate_text": "tfl.inference.generate",
    "evaluate_run": "tfl.inference.evaluate",
    "evaluate_split": "tfl.inference.evaluate",
    # edge
    "make_twin": "tfl.models.twin",
    "twin_parts": "tfl.models.twin",
    "twin_max_logit_difference": "tfl.models.twin",
    "export_run": "tfl.edge.export",
    "optimize_run": "tfl.edge.report",
    "LiteRTModel": "tfl.edge.litert",
    "generate_tflite": "tfl.edge.litert",
}

__all__ = sorted(_PUBLIC) + ["__version__"]

# tfl's Keras layers are registered as soon as Keras is imported, so that a tfl `.keras` file
# loads with `keras.saving.load_model(path, safe_mode=True)` (see tfl.models.registration).
from tfl.models.registration import register_layers_with_keras  # noqa: E402

register_layers_with_keras()


def __getattr__(name):
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tfl' has no attribute {name!r}")


def __dir__():
    return __all__
