"""Export a trained model: a SavedModel for servers, TFLite files for phones and boards.

Both are written from the model's tf_keras twin (`tfl.models.twin`), so that an LSTM converts to
TFLite's fused `UNIDIRECTIONAL_SEQUENCE_LSTM` op and a pruned or clustered twin exports the
same way as a dense one. Every file has two signatures:

- `serving_default`: `tokens` int32 `(batch, seq_len)` -> `logits` float32 `(batch, seq_len,
  vocab)`; the whole window at once (what perplexity is measured with).
- `step`, for generating one token at a time on the device:
  - LSTM: `token` `(1,)`, `h` and `c` `(layers, 1, hidden)` -> `logits` `(1, vocab)` and the
    new `h`, `c`. The state carries the whole history; each token costs the same.
  - Transformer: `tokens` `(1, seq_len)`, a fixed window padded on the right, and `length`
    `(1,)` -> `next_logits` `(1, vocab)` at position `length - 1`, and the whole window's
    `logits`. (A causal model ignores the padding; there is no key/value cache in the file,
    so each token re-reads the window.)

A Transformer's `.tflite` file holds only `step`: its `logits` output is the serving
signature's, and a second signature would store the graph and every quantization parameter
again.

TFLite variants (`QUANTIZATIONS`), builtin ops only:
- float32: the reference; its logits match the Keras model's up to float32 rounding.
- float16: weights stored as float16, computed in float32.
- dynamic-int8: weights stored as int8 with one scale per weight matrix (per-channel scales
  are turned off, since each would add a scale and a 64-bit zero point to the file for no
  measurable gain in perplexity); activations float.
- int8: weights and activations int8 ("full integer"), calibrated on windows drawn from the
  training split; inputs and outputs stay int32 tokens and float32 logits.

>>> QUANTIZATIONS
('float32', 'float16', 'dynamic-int8', 'int8')
"""

import contextlib
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfl.errors import TflError
from tfl.io import (atomic_directory, check_replaceable_output, check_writable_path, mark_output,
                    write_json_atomic)
from tfl.models.twin import make_twin, twin_parts, unwrapped
from tfl.progress import Progress
from tfl.runtime import captured_stderr

QUANTIZATIONS = ("float32", "float16", "dynamic-int8", "int8")


class LanguageModelSignatures(tf.Module):
    """The exported functions of a twin. `batch` is None for SavedModel, 1 for TFLite."""

    def __init__(self, twin, config, batch=None):
        super().__init__()
        self.twin, self.config = twin, config
        seq_len = config.seq_len
        self.serving = tf.function(
            self._logits,
            input_signature=[tf.TensorSpec([batch, seq_len], tf.int32, name="tokens")])
        if config.architecture == "lstm":
            state = tf.TensorSpec([config.num_layers, 1, config.hidden_dim], tf.float32)
            self.step = tf.function(self._lstm_step, input_signature=[
                tf.TensorSpec([1], tf.int32, name="token"),
                tf.TensorSpec(state.shape, tf.float32, name="h"),
                tf.TensorSpec(state.shape, tf.float32, name="c")])
        else:
            self.step = tf.function(self._window_step, input_signature=[
                tf.TensorSpec([1, seq_len], tf.int32, name="tokens"),
                tf.TensorSpec([1], tf.int32, name="length")])

    def _logits(self, tokens):
        return {"logits": self.twin(tokens, training=False)}

    def _window_step(self, tokens, length):
        logits = self.twin(tokens, training=False)  # (1, T, vocab)
        return {"logits": logits, "next_logits": tf.gather(logits, length - 1, axis=1)[:, 0]}

    def _lstm_step(self, token, h, c):
        # The layers as the twin calls them: a quantization-aware twin's wrappers fake-quantize.
        parts = twin_parts(self.twin, self.config, wrapped=True)
        x = parts.token_embedding(token)  # (1, e)
        new_h, new_c = [], []
        for i, lstm in enumerate(parts.lstm_layers):
            x, (h_i, c_i) = unwrapped(lstm).cell(x, [h[i], c[i]], training=False)  # (1, h)
            new_h.append(h_i)
            new_c.append(c_i)
        logits = parts.output(x)  # (1, vocab)
        return {"logits": logits, "h": tf.stack(new_h), "c": tf.stack(new_c)}

    def signatures(self, for_tflite=False):
        if for_tflite and self.config.architecture == "transformer":
            return {"step": self.step.get_concrete_function()}
        return {"serving_default": self.serving.get_concrete_function(),
                "step": self.step.get_concrete_function()}


def save_signatures(twin, config, directory):
    """Write `twin` as a SavedModel with the `serving_default` and `step` signatures."""
    module = LanguageModelSignatures(twin, config)
    tf.saved_model.save(module, str(directory), signatures=module.signatures())


def representative_windows(train_ids, seq_len, count=64, seed=0):
    """`count` windows of `seq_len` ids from random places in the training split."""
    ids = np.asarray(train_ids, dtype=np.int32)
    if len(ids) <= seq_len:
        raise TflError(f"the training split has {len(ids)} tokens, fewer than one window of "
                       f"{seq_len}; full int8 needs a longer corpus to calibrate on")
    starts = np.random.default_rng(seed).integers(0, len(ids) - seq_len, count)
    return np.stack([ids[s:s + seq_len] for s in starts])


def _representative_dataset(signatures, windows, progress=None):
    """Calibration examples for both signatures; the LSTM step sees the states it meets when
    reading real text. `progress`, if given, advances once per window."""
    config = signatures.config

    def examples():
        for window in windows:
            if progress:
                progress.advance()
            if config.architecture == "lstm":
                yield "serving_default", {"tokens": window[None]}
                shape = (config.num_layers, 1, config.hidden_dim)
                h, c = np.zeros(shape, np.float32), np.zeros(shape, np.float32)
                for t in range(0, len(window), max(1, len(window) // 8)):
                    yield "step", {"token": window[t:t + 1], "h": h, "c": c}
                    out = signatures.step(tf.constant(window[t:t + 1]), h, c)
                    h, c = out["h"].numpy(), out["c"].numpy()
            else:
                length = np.array([np.random.default_rng(int(window[0])).integers(
                    1, len(window) + 1)], np.int32)
                yield "step", {"tokens": window[None], "length": length}
    return examples


def convert_to_tflite(twin, config, quantization="float32", calibration_windows=None,
                      progress_label=None):
    """The bytes of a TFLite model of `twin` with the given quantization (see module doc).
    For several variants of one twin, `tflite_converter` traces the twin only once.

    >>> data = convert_to_tflite(twin, config, "dynamic-int8")  # doctest: +SKIP
    """
    with tflite_converter(twin, config) as convert:
        return convert(quantization, calibration_windows, progress_label)


@contextlib.contextmanager
def tflite_converter(twin, config):
    """Yield `convert(quantization, calibration_windows=None, progress_label=None)`, which
    returns the bytes of a TFLite model of `twin`. The twin's signatures are traced and saved
    once, in a scratch folder removed at the end, for every variant converted.

    With `progress_label`, a progress line counts the conversion and each calibration window
    (full int8 only), with the time taken.

    >>> with tflite_converter(twin, config) as convert:  # doctest: +SKIP
    ...     files = {q: convert(q) for q in ("float32", "dynamic-int8")}
    """
    signatures = LanguageModelSignatures(twin, config, batch=1)
    scratch = Path(tempfile.mkdtemp(prefix="tfl-tflite-"))
    try:
        functions = signatures.signatures(for_tflite=True)
        tf.saved_model.save(signatures, str(scratch), signatures=functions)

        def convert(quantization, calibration_windows=None, progress_label=None):
            check_quantizations([quantization])
            calibrating = quantization == "int8"
            if calibrating and calibration_windows is None:
                raise TflError("full int8 quantization needs calibration windows from the "
                               "training split")
            progress = None
            if progress_label:
                stages = 1 + (len(calibration_windows) if calibrating else 0)
                progress = Progress(stages, progress_label, unit="stages")
            with progress or contextlib.nullcontext():
                data = _convert(signatures, scratch, list(functions), quantization,
                                calibration_windows, progress)
                if progress:
                    progress.advance()
            return data

        yield convert
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _convert(signatures, saved_model_dir, signature_keys, quantization, calibration_windows,
             progress):
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir),
                                                         signature_keys=signature_keys)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "dynamic-int8":
        # One scale per weight matrix rather than per output channel: each channel's scale
        # and 64-bit zero point are stored per tensor use, a visible share of a small
        # model's file, while perplexity barely moves either way.
        converter._experimental_disable_per_channel = True
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantization == "int8":
        converter.representative_dataset = _representative_dataset(
            signatures, calibration_windows, progress)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    try:
        # The converter logs a dozen C++ lines per file (SavedModel reading, op counts);
        # in a notebook they would bury the results. A failure is still explained below.
        with warnings.catch_warnings(), captured_stderr():
            # Calibration runs TensorFlow's own deprecated interpreter internally; that
            # warning is about the converter, not about anything a user can change.
            warnings.filterwarnings("ignore", message=".*Interpreter is deprecated")
            return converter.convert()
    except Exception as error:  # the converter raises many types; all mean "cannot convert"
        message = str(error).strip().splitlines()
        raise TflError(
            f"this model cannot be converted to TFLite as {quantization} with builtin ops "
            f"({message[-1][:200] if message else type(error).__name__}); "
            "try --quantize dynamic-int8 or float32") from None


def save_export_metadata(run, directory):
    """The tokenizer and config beside the exported files, so they generate on their own."""
    from tfl.run import CONFIG_FILE, TOKENIZER_DIR

    run.tokenizer.save(Path(directory) / TOKENIZER_DIR)
    write_json_atomic(Path(directory) / CONFIG_FILE, run.settings.to_json())


def check_quantizations(quantizations):
    """Refuse an unknown TFLite variant name (one line, listing the known ones)."""
    for quantization in quantizations:
        if quantization not in QUANTIZATIONS:
            raise TflError(f"unknown quantization {quantization!r}; choose from "
                           f"{', '.join(QUANTIZATIONS)}")


def check_output_folder(out, command, run_dir):
    """Refuse, before any work, an `--out` that `command` must not replace or cannot write.

    The replacement rule is `tfl.io.check_replaceable_output` (never the run read, a folder
    holding it, or anything but an earlier output of the same command); on top of it, the
    nearest existing folder on the way to `out` must be a folder this user may write in.

    >>> check_output_folder("exports/new", "export", "saved_models/tx")  # doctest: +SKIP
    """
    check_replaceable_output(out, command, inputs=[run_dir])
    check_writable_path(out, replaces=True)


def export_run(run_dir, out, quantizations=("float32",), saved_model=True, data_dir=None,
               log=None):
    """Export a run directory: SavedModel and/or TFLite files, with tokenizer and config.

    `out` is a new folder, or one an earlier `export_run` wrote, which is replaced as a whole
    (`check_output_folder`); nothing is written if any step fails. With `log` (e.g. `print`),
    each file's progress is shown.

    >>> export_run("saved_models/tx", "exports/tx", ["float32", "int8"])  # doctest: +SKIP
    {'out': 'exports/tx', 'saved_model': 'exports/tx/saved_model', 'tflite': {...}}
    """
    from tfl.run import load_run

    quantizations = list(dict.fromkeys(quantizations))  # (a repeated name is one file)
    check_quantizations(quantizations)
    if not quantizations and not saved_model:
        raise TflError("nothing to export: give at least one --quantize variant or keep the "
                       "SavedModel")
    check_output_folder(out, "export", run_dir)
    run = load_run(run_dir)
    twin = make_twin(run.model, run.model_config)
    calibration = None
    if "int8" in quantizations:
        calibration = calibration_windows_for_run(run, data_dir=data_dir)
    out = Path(out).expanduser()
    result = {"out": str(out), "saved_model": None, "tflite": {}}
    with atomic_directory(out) as tmp:
        mark_output(tmp, "export")
        save_export_metadata(run, tmp)
        if saved_model:
            if log:
                log("writing the SavedModel ...")
            save_signatures(twin, run.model_config, tmp / "saved_model")
            result["saved_model"] = str(out / "saved_model")
        with tflite_converter(twin, run.model_config) as convert:
            for index, quantization in enumerate(quantizations, 1):
                name = f"model-{quantization}.tflite"
                label = f"[{index}/{len(quantizations)}] {name}" if log else None
                (tmp / name).write_bytes(convert(quantization, calibration, label))
                result["tflite"][quantization] = str(out / name)
    return result


def calibration_windows_for_run(run, count=64, data_dir=None):
    from tfl.data import load_corpus

    corpus = load_corpus(run.data.corpus, data_dir=data_dir)
    # A slice of the training text is enough to draw `count` windows from.
    text = corpus.train[: 200 * count * run.model_config.seq_len]
    return representative_windows(run.tokenizer.encode(text), run.model_config.seq_len, count)
