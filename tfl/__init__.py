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
    "TflError": "tfl.errors",
    "Corpus": "tfl.data.corpora",
    "load_corpus": "tfl.data.corpora",
    "available_corpora": "tfl.data.corpora",
    "Tokenizer": "tfl.tokenizers.base",
    "build_tokenizer": "tfl.tokenizers",
    "load_tokenizer": "tfl.tokenizers",
    "tokenizer_stats": "tfl.tokenizers.base",
    "make_dataset": "tfl.data.pipeline",
    "encode_splits": "tfl.data.pipeline",
    "TrainConfig": "tfl.train",
    "load_run": "tfl.run",
    "evaluate_run": "tfl.evaluate",
    "generate": "tfl.generation",
    "NGramLM": "tfl.ngram",
    "export_run": "tfl.export",
    "optimize_run": "tfl.compress",
    "LiteRTModel": "tfl.litert",
    "generate_tflite": "tfl.litert",
}

__all__ = sorted(_PUBLIC) + ["__version__"]


def __getattr__(name):
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tfl' has no attribute {name!r}")


def __dir__():
    return __all__
