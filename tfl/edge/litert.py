"""Running exported `.tflite` files with the LiteRT interpreter, as a phone would.

`LiteRTModel` wraps one file from `tfl.edge.export` (signatures `serving_default` and `step`).
It measures what matters on a device: validation perplexity, file size and gzip size, and the
median latency of one generated token; and it generates text with the same samplers and context
rules as the Keras model (`tfl.inference.generate.generate_text`).

    tfl generate --tflite exports/model-int8.tflite --prompt "ROMEO:"
"""

import contextlib
import gzip
import json
import math
import statistics
import time
from pathlib import Path

import numpy as np

from tfl.errors import TflError
from tfl.metrics import perplexity
from tfl.progress import Progress
from tfl.tokenizers.base import PAD_ID


class LiteRTModel:
    """A `.tflite` language model with its config (read from `config.json` beside it)."""

    def __init__(self, path, config=None, num_threads=None):
        from ai_edge_litert.interpreter import Interpreter

        self.path = Path(path)
        if not self.path.is_file():
            raise TflError(f"no TFLite file at {self.path}; write one with `tfl export` or "
                           "`tfl optimize`")
        self.config = config or _config_beside(self.path)
        try:
            self.interpreter = Interpreter(model_path=str(self.path), num_threads=num_threads)
            self.interpreter.allocate_tensors()  # (resetting variables needs them allocated)
            signatures = self.interpreter.get_signature_list()
            self._step = self.interpreter.get_signature_runner("step")
            # A Transformer file has only `step`, whose `logits` output is the whole window's.
            self._window = self.interpreter.get_signature_runner(
                "serving_default" if "serving_default" in signatures else "step")
        except (ValueError, RuntimeError) as error:
            raise TflError(f"{self.path} is not a tfl TFLite model ({error}); export it again "
                           "with `tfl export`") from None

    @property
    def seq_len(self):
        return self.config.seq_len

    def logits(self, window):
        """Logits `(seq_len, vocab)` of one window of `seq_len` token ids."""
        tokens = np.asarray(window, np.int32).reshape(1, self.seq_len)
        if self.config.architecture == "lstm":
            # The fused LSTM op keeps its state in variable tensors that persist between
            # calls: without a reset each window would start from the previous one's state.
            self.interpreter.reset_all_variables()
            return self._window(tokens=tokens)["logits"][0]
        return self._window(tokens=tokens, length=np.array([self.seq_len], np.int32))["logits"][0]

    def decoder(self):
        if self.config.architecture == "lstm":
            return _LSTMStepDecoder(self)
        return _WindowDecoder(self)

    def file_sizes(self):
        data = self.path.read_bytes()
        return {"bytes": len(data), "gzip_bytes": len(gzip.compress(data, 9))}


def _config_beside(path):
    from tfl.models import config_from_dict

    config_file = Path(path).parent / "config.json"
    try:
        return config_from_dict(json.loads(config_file.read_text())["model"])
    except (OSError, ValueError, KeyError):
        raise TflError(f"{config_file} is missing or broken: a .tflite file needs the "
                       "config.json and tokenizer/ that `tfl export` writes beside it") from None


class _WindowDecoder:
    """Transformer: every token re-reads the fixed window (padded on the right)."""

    def __init__(self, model):
        self.model = model
        self.max_context = model.seq_len

    def start(self, context):
        self.context = list(np.asarray(context, np.int32)[0])
        return self._next()

    def step(self, tokens):
        self.context.append(int(np.asarray(tokens)[0]))
        return self._next()

    def _next(self):
        n = len(self.context)
        if n > self.max_context:
            raise TflError(f"context of {n} tokens exceeds the model's {self.max_context}")
        window = np.full((1, self.max_context), PAD_ID, np.int32)
        window[0, :n] = self.context
        out = self.model._step(tokens=window, length=np.array([n], np.int32))
        return out["next_logits"]


class _LSTMStepDecoder:
    """LSTM: one token and the carried (h, c) state per call."""

    max_context = None

    def __init__(self, model):
        self.model = model
        shape = (model.config.num_layers, 1, model.config.hidden_dim)
        self.empty = np.zeros(shape, np.float32)

    def start(self, context):
        self.h, self.c = self.empty, self.empty
        for token in np.asarray(context, np.int32)[0]:
            logits = self.step([token])
        return logits

    def step(self, tokens):
        out = self.model._step(token=np.asarray(tokens, np.int32)[:1], h=self.h, c=self.c)
        self.h, self.c = out["h"], out["c"]
        return out["logits"]


def evaluate_tflite(model, token_ids, progress_label=None):
    """Mean loss and perplexity of a `LiteRTModel` on `token_ids`, with the same windows as
    `tfl.inference.evaluate.evaluate_ids` (so the numbers compare directly with the Keras
    model's). With `progress_label`, a progress line counts the windows.

    >>> evaluate_tflite(LiteRTModel("exports/model-int8.tflite"), val_ids)  # doctest: +SKIP
    {'loss': ..., 'perplexity': ..., 'tokens': ...}
    """
    from tfl.inference.evaluate import eval_windows

    inputs, targets, weights = eval_windows(token_ids, model.seq_len)
    total = 0.0
    progress = (Progress(len(inputs), progress_label, unit="windows") if progress_label
                else None)
    with progress or contextlib.nullcontext():
        for window, target, weight in zip(inputs, targets, weights):
            logits = model.logits(window).astype(np.float64)  # (T, vocab)
            log_norm = np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1))
            log_probs = logits[np.arange(len(target)), target] - logits.max(-1) - log_norm
            total -= float((log_probs * weight).sum())
            if progress:
                progress.advance()
    count = int(weights.sum())
    loss = total / count
    return {"loss": loss, "perplexity": perplexity(loss), "tokens": count}


def token_latency(model, prompt_ids, new_tokens=32, repeats=3):
    """Median seconds per generated token (greedy, after one warm-up), with min and max."""
    from tfl.inference.generate import decode_loop
    from tfl.inference.sampling import make_sampler

    sampler = make_sampler("greedy")
    times = []
    for repeat in range(repeats + 1):
        start = time.perf_counter()
        decode_loop(model.decoder(), prompt_ids, new_tokens, sampler, model.seq_len)
        if repeat:  # the first pass is the warm-up
            times.append((time.perf_counter() - start) / new_tokens)
    return {"median": statistics.median(times), "min": min(times), "max": max(times)}


def generate_tflite(path, prompt="", max_new_tokens=200, sampler="top_k", temperature=1.0,
                    top_k=10, top_p=0.9, seed=None, on_text=None):
    """Generate text from a `.tflite` file exported by tfl (its tokenizer beside it).

    >>> generate_tflite("exports/model-int8.tflite", "ROMEO:", 50)  # doctest: +SKIP
    """
    from tfl.inference.generate import generate_text
    from tfl.tokenizers import load_tokenizer

    if sampler == "beam":
        raise TflError("beam search is not available for .tflite files; use greedy, "
                       "temperature, top_k or top_p")
    model = LiteRTModel(path)
    tokenizer_dir = Path(path).parent / "tokenizer"
    if not tokenizer_dir.is_dir():
        raise TflError(f"no tokenizer beside {path}; `tfl export` writes it to {tokenizer_dir}")
    return generate_text(model.decoder(), load_tokenizer(tokenizer_dir), model.seq_len, prompt,
                         max_new_tokens, sampler=sampler, temperature=temperature, top_k=top_k,
                         top_p=top_p, seed=seed, on_text=on_text)


def measure_tflite(model, token_ids, prompt_ids, latency_tokens=32, progress_label=None):
    """Measure one `LiteRTModel`: file size and gzip size, loss and perplexity on `token_ids`,
    and the median (min, max) milliseconds per greedy token generated after `prompt_ids`.
    With `progress_label`, a progress line counts the evaluation windows.

    >>> model = LiteRTModel("exports/model-int8.tflite")  # doctest: +SKIP
    >>> measure_tflite(model, val_ids, prompt_ids)["ms_per_token"]  # doctest: +SKIP
    """
    result = {**model.file_sizes(), **evaluate_tflite(model, token_ids, progress_label)}
    latency = token_latency(model, prompt_ids, new_tokens=latency_tokens)
    result["ms_per_token"] = latency["median"] * 1000
    result["ms_per_token_min"] = latency["min"] * 1000
    result["ms_per_token_max"] = latency["max"] * 1000
    if not math.isfinite(result["loss"]):
        raise TflError(f"{model.path} gives non-finite logits; the conversion failed silently")
    return result
