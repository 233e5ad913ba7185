"""Compression with TensorFlow Model Optimization: pruning, weight clustering and
quantization-aware training, applied to a run's tf_keras twin (`tfl.models.twin`).

Each function fine-tunes the twin on the run's training split while TF-MOT compresses it, then
strips the TF-MOT wrappers so the result is an ordinary tf_keras model that `tfl.edge.export`
converts like the dense one. What was achieved is measured on the stripped weights.

Which layers each technique covers (TF-MOT 0.8.1 with tf_keras), chosen by their role in the
twin (`tfl.models.twin.layer_role`):

| layer | pruning | clustering | QAT |
|---|---|---|---|
| token embedding | yes | yes | no (TF-MOT has no quantized Embedding) |
| learned position table | yes (opts in as a `PrunableLayer`) | no (custom layer) | no |
| attention projections | yes (MultiHeadAttention) | yes | no (MultiHeadAttention unsupported) |
| MLP and output Dense | yes | yes | yes |
| LSTM kernels | yes | yes | no (RNN cells unsupported) |
| LayerNorm | no (tiny) | no | no |

>>> PRUNABLE["transformer"]
('token_embedding', 'position', 'attention', 'mlp_in', 'mlp_out', 'output')
"""

import contextlib
import math
import numbers

import numpy as np
import tensorflow_model_optimization as tfmot

from tfl.errors import TflError
from tfl.models.twin import (ATTENTION, LSTM, MLP_IN, MLP_OUT, OUTPUT, POSITION, TOKEN_EMBEDDING,
                             custom_objects, keras2, layer_role, make_twin,
                             twin_max_logit_difference, unwrapped, use_bounded_masks)
from tfl.progress import Progress
from tfl.training.config import DEFAULT_BATCH_SIZE

# The twin layer roles each technique wraps, per architecture.
PRUNABLE = {
    "transformer": (TOKEN_EMBEDDING, POSITION, ATTENTION, MLP_IN, MLP_OUT, OUTPUT),
    "lstm": (TOKEN_EMBEDDING, LSTM, OUTPUT),
}
CLUSTERABLE = {
    "transformer": (TOKEN_EMBEDDING, ATTENTION, MLP_IN, MLP_OUT, OUTPUT),
    "lstm": (TOKEN_EMBEDDING, LSTM, OUTPUT),
}
QUANTIZABLE = {"transformer": (MLP_IN, MLP_OUT, OUTPUT), "lstm": (OUTPUT,)}
NOT_QUANTIZABLE_REASON = {
    TOKEN_EMBEDDING: "Embedding", ATTENTION: "MultiHeadAttention", LSTM: "LSTM",
    POSITION: "custom layer",
}


def _selective(roles, make_wrapper):
    def wrap(layer):
        return make_wrapper(layer) if layer_role(layer) in roles else layer
    return wrap


def fine_tune_dataset(train_ids, config, batch_size, seed=0):
    from tfl.data.pipeline import make_dataset

    return make_dataset(train_ids, config.seq_len, batch_size, shuffle=True, seed=seed,
                        repeat=True, split_name="train")


def _compile(model, learning_rate):
    model.compile(optimizer=keras2.optimizers.Adam(learning_rate),
                  loss=keras2.losses.SparseCategoricalCrossentropy(from_logits=True))


class _ProgressLine(keras2.callbacks.Callback):
    """A `tfl.progress.Progress` line over the fine-tuning steps, with the latest loss."""

    def __init__(self, steps, label):
        super().__init__()
        self.loss = None
        self.progress = Progress(steps, label, extra=lambda: (
            "" if self.loss is None else f"loss {self.loss:.4f}"))

    def on_train_batch_end(self, batch, logs=None):
        self.loss = (logs or {}).get("loss", self.loss)
        self.progress.advance()


def _fit(model, dataset, steps, callbacks=(), progress_label=None):
    line = _ProgressLine(steps, progress_label) if progress_label else None
    with line.progress if line else contextlib.nullcontext():
        history = model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0,
                            callbacks=[*callbacks, *([line] if line else [])])
    loss = history.history["loss"][-1]
    if not math.isfinite(loss):
        raise TflError("the loss became NaN while fine-tuning; lower --learning-rate")
    return loss


def check_options(prune=0.8, clusters=16, steps=1000, batch_size=None):
    """Refuse, with one line each, compression options that could only fail later.

    >>> check_options(prune=1.0)
    Traceback (most recent call last):
    ...
    tfl.errors.TflError: --prune takes a sparsity in [0, 1) (0: no pruning), got 1.0
    """
    if not (isinstance(prune, numbers.Real) and 0 <= prune < 1):
        raise TflError(f"--prune takes a sparsity in [0, 1) (0: no pruning), got {prune}")
    if not _is_int(clusters) or clusters == 1 or clusters < 0:
        raise TflError(f"--cluster takes 0 (no clustering) or at least 2 clusters, got "
                       f"{clusters}")
    if not _is_int(steps) or steps < 1:
        raise TflError(f"--fine-tune-steps takes a whole number of at least 1, got {steps}")
    if prune and steps < 2:
        # (step 0 only sets up the masks: one step would leave every weight in place)
        raise TflError(f"pruning needs at least 2 fine-tuning steps, got {steps}; raise "
                       "--fine-tune-steps")
    if batch_size is not None and (not _is_int(batch_size) or batch_size < 1):
        raise TflError(f"--batch-size takes a whole number of at least 1, got {batch_size}")


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def prune(model, config, train_ids, target_sparsity=0.8, steps=1000,
          batch_size=DEFAULT_BATCH_SIZE, learning_rate=1e-3, seed=0, show_progress=False):
    """Magnitude-prune the twin of `model` to `target_sparsity` while fine-tuning.

    Sparsity rises from 0 along a cubic `PolynomialDecay` over the first 70% of `steps`, masks
    updating every `steps // 20`; the rest fine-tunes at the final sparsity. Returns the
    stripped tf_keras model and the achieved sparsity per layer (`achieved_sparsity`).
    `show_progress` shows the fine-tune's progress line.

    >>> pruned, report = prune(run.model, run.model_config, ids, 0.8)  # doctest: +SKIP
    """
    if not target_sparsity:
        raise TflError("--prune takes a sparsity in (0, 1) to prune at all")
    check_options(prune=target_sparsity, steps=steps, batch_size=batch_size)
    frequency = max(1, steps // 20)
    end_step = max(frequency, int(0.7 * steps) // frequency * frequency)
    schedule = tfmot.sparsity.keras.PolynomialDecay(
        initial_sparsity=0.0, final_sparsity=target_sparsity, begin_step=0, end_step=end_step,
        frequency=frequency)
    wrap = _selective(PRUNABLE[config.architecture], lambda layer: (
        tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule)))
    keras2.utils.set_random_seed(seed)
    twin = make_twin(model, config, wrap=wrap)
    _compile(twin, learning_rate)
    loss = _fit(twin, fine_tune_dataset(train_ids, config, batch_size, seed), steps,
                [tfmot.sparsity.keras.UpdatePruningStep()],
                progress_label="pruning fine-tune" if show_progress else None)
    with keras2.utils.custom_object_scope(custom_objects()):
        stripped = tfmot.sparsity.keras.strip_pruning(twin)
    return stripped, {"fine_tune_loss": loss, "steps": steps,
                      "achieved_sparsity": achieved_sparsity(stripped, config)}


# The weights TF-MOT compresses in the layers above (biases and norms are left alone).
MATRIX_NAMES = ("kernel", "recurrent_kernel", "embeddings", "table")


def compressible_weights(twin, roles):
    """{"layer/sub/kernel": array} for the matrices of the layers whose role is in `roles`."""
    weights = {}
    for layer in twin.layers:
        layer = unwrapped(layer)
        if layer_role(layer) not in roles:
            continue
        for weight in layer.weights:
            name = weight.name.split(":")[0]
            if not name.startswith(layer.name + "/"):  # (cloned layers name weights alone)
                name = f"{layer.name}/{name}"
            if name.split("/")[-1] in MATRIX_NAMES:
                weights[name] = weight.numpy()
    return weights


def achieved_sparsity(twin, config):
    """Fraction of exact zeros in every prunable matrix of `twin`, and over all of them."""
    weights = compressible_weights(twin, PRUNABLE[config.architecture])
    zeros = sum(int(np.sum(w == 0)) for w in weights.values())
    total = sum(w.size for w in weights.values())
    return {"overall": zeros / max(total, 1),
            "weights": {name: float(np.mean(w == 0)) for name, w in weights.items()}}


def left_dense(config):
    """Twin layers with weights that pruning does not touch, and why."""
    reasons = {"norm": "LayerNormalization (not supported by TF-MOT pruning; tiny)"}
    if config.architecture == "transformer" and config.position == "sinusoidal":
        reasons["positions"] = "fixed sinusoid table (nothing to learn or prune)"
    return reasons


def cluster(model, config, train_ids, clusters=16, steps=100, batch_size=DEFAULT_BATCH_SIZE,
            learning_rate=1e-4, seed=0, show_progress=False):
    """Weight clustering: every clusterable kernel keeps only `clusters` distinct values
    (k-means++ centroids, fine-tuned). Returns the stripped model and the distinct-value count
    per weight, measured. `show_progress` shows the fine-tune's progress line.

    >>> clustered, report = cluster(run.model, run.model_config, ids, 16)  # doctest: +SKIP
    """
    if not clusters:
        raise TflError("--cluster takes at least 2 clusters to cluster at all")
    check_options(prune=0, clusters=clusters, steps=steps, batch_size=batch_size)
    cluster_api = tfmot.clustering.keras
    wrap = _selective(CLUSTERABLE[config.architecture], lambda layer: cluster_api.cluster_weights(
        layer, number_of_clusters=clusters,
        cluster_centroids_init=cluster_api.CentroidInitialization.KMEANS_PLUS_PLUS))
    keras2.utils.set_random_seed(seed)
    twin = make_twin(model, config, wrap=wrap)
    _compile(twin, learning_rate)
    loss = _fit(twin, fine_tune_dataset(train_ids, config, batch_size, seed), steps,
                progress_label="clustering fine-tune" if show_progress else None)
    with keras2.utils.custom_object_scope(custom_objects()):
        stripped = cluster_api.strip_clustering(twin)
    distinct = {name: int(np.unique(w).size) for name, w in
                compressible_weights(stripped, CLUSTERABLE[config.architecture]).items()}
    return stripped, {"fine_tune_loss": loss, "steps": steps, "clusters": clusters,
                      "max_distinct_values": max(distinct.values()), "distinct_values": distinct}


def quantization_aware(model, config, train_ids, steps=100, batch_size=DEFAULT_BATCH_SIZE,
                       learning_rate=1e-4, seed=0, show_progress=False):
    """Quantization-aware training of the layers TF-MOT can quantize (Dense); the report lists
    the others. Returns the QAT model (convert it with dynamic or full int8) and the report.
    `show_progress` shows the fine-tune's progress line.

    >>> qat, report = quantization_aware(run.model, run.model_config, ids)  # doctest: +SKIP
    """
    check_options(prune=0, steps=steps, batch_size=batch_size)
    quantize = tfmot.quantization.keras
    roles = QUANTIZABLE[config.architecture]
    twin = make_twin(model, config)
    covered, skipped = [], {}

    def annotate(layer):
        role = layer_role(layer)
        if role in roles:
            covered.append(layer.name)
            return quantize.quantize_annotate_layer(layer)
        if role in NOT_QUANTIZABLE_REASON and layer.weights:
            skipped[layer.name] = f"{NOT_QUANTIZABLE_REASON[role]} is not supported by TF-MOT QAT"
        return layer

    with quantize.quantize_scope(custom_objects()):
        annotated = keras2.models.clone_model(twin, clone_function=annotate)
        annotated.set_weights(twin.get_weights())
        # (quantize_apply rebuilds the attention layers from their configs.)
        qat = use_bounded_masks(quantize.quantize_apply(annotated))
    keras2.utils.set_random_seed(seed)
    _compile(qat, learning_rate)
    loss = _fit(qat, fine_tune_dataset(train_ids, config, batch_size, seed), steps,
                progress_label="quantization-aware fine-tune" if show_progress else None)
    return qat, {"fine_tune_loss": loss, "steps": steps, "quantized_layers": covered,
                 "not_quantized": skipped}


def twin_check(model, twin, config, tolerance=1e-3):
    """Refuse to go on if the twin does not reproduce the model (a bug, never the user's)."""
    difference = twin_max_logit_difference(model, twin, config)
    if difference > tolerance:
        raise TflError(f"the tf_keras twin's logits differ from the model's by {difference:.2g}; "
                       "please report this as a tfl bug")
    return difference

