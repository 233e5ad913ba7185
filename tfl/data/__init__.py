"""Corpora and the tf.data pipeline.

`tfl.data.corpora` needs no TensorFlow; the pipeline functions import it on first use.

>>> from tfl.data import load_corpus
>>> load_corpus("python_docs").split_fractions
(0.9, 0.05, 0.05)
"""

import importlib

from tfl.data.corpora import SPLITS, Corpus, available_corpora, load_corpus, read_text_file

_PIPELINE = ("make_dataset", "encode_splits", "num_windows", "split_inputs_targets")

__all__ = ["SPLITS", "Corpus", "available_corpora", "load_corpus", "read_text_file", *_PIPELINE]


def __getattr__(name):
    if name in _PIPELINE:
        return getattr(importlib.import_module("tfl.data.pipeline"), name)
    raise AttributeError(f"module 'tfl.data' has no attribute {name!r}")
