"""The optimizer every run trains with (`tfl.training.config.make_optimizer`), against the rules
docs/training.md states: AdamW decays weight matrices only, the learning rate warms up linearly
then follows a cosine, and gradients are clipped by their global norm."""

import math

import keras
import numpy as np
import pytest

from tfl.models import build_model, config_class
from tfl.training.config import TrainConfig, make_optimizer


def weight_matrices(model):
    """The weight matrices of `model`, found by layer type rather than by name: the kernels of
    Dense and EinsumDense layers (attention projections included) and an LSTM's input and
    recurrent kernels. Embedding tables, biases and normalisation parameters are not matrices."""
    found = []
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, (keras.layers.Dense, keras.layers.EinsumDense)):
            found.append(layer.kernel)
        elif isinstance(layer, keras.layers.LSTMCell):
            found += [layer.kernel, layer.recurrent_kernel]
    return found


@pytest.mark.parametrize("architecture, overrides", [
    ("transformer", {}), ("transformer", {"position": "rotary"}), ("lstm", {})],
    ids=["transformer", "rotary", "lstm"])
def test_weight_decay_shrinks_the_weight_matrices_only(architecture, overrides):
    model = build_model(config_class(architecture).from_preset("nano", vocab_size=23,
                                                               **overrides))
    learning_rate, weight_decay = 0.1, 0.5
    optimizer = make_optimizer(TrainConfig(learning_rate=learning_rate, weight_decay=weight_decay,
                                           warmup_steps=0))
    variables = model.trainable_variables
    before = [v.numpy() for v in variables]
    # A zero gradient moves nothing through Adam's moments: only the decay acts.
    optimizer.apply_gradients([(np.zeros(v.shape, "float32"), v) for v in variables])
    matrices = {v.path for v in weight_matrices(model)}
    assert 0 < len(matrices) < len(variables)
    for variable, value in zip(variables, before):
        shrink = 1 - learning_rate * weight_decay if variable.path in matrices else 1
        np.testing.assert_allclose(variable.numpy(), value * shrink, rtol=1e-6,
                                   err_msg=variable.path)


@pytest.mark.parametrize("steps", [100, 95], ids=["whole-intervals", "rounded-up"])
def test_learning_rate_warms_up_linearly_then_follows_a_cosine(steps):
    config = TrainConfig(steps=steps, eval_interval=25, warmup_steps=10, learning_rate=1e-3,
                         min_learning_rate=1e-4)
    optimizer = make_optimizer(config)
    # docs/training.md's formula; the run's steps are rounded up to whole intervals.
    r_max, r_min, w = 1e-3, 1e-4, 10
    total = config.num_intervals * config.steps_per_interval

    def rate(t):
        if t < w:
            return r_max * t / w
        return r_min + (r_max - r_min) * (1 + math.cos(math.pi * (t - w) / (total - w))) / 2

    for t in (0, 1, 5, 9, 10, 11, 40, 53, total - 1, total):
        optimizer.iterations.assign(t)
        assert float(optimizer.learning_rate) == pytest.approx(rate(t), rel=1e-5, abs=1e-12), t
    assert rate(total) == pytest.approx(r_min)


def first_moments(optimizer, variables):
    """Adam's first moment of each variable (after one step: (1 - beta_1) times its gradient)."""
    by_name = {v.name: v for v in optimizer.variables}
    return [by_name[f"{v.name}_momentum"].numpy() for v in variables]


@pytest.mark.parametrize("clip_norm, expected", [
    (1.0, [0.6, 0.8]),  # (3e6, 4e6) scaled to global norm 1; each clipped alone would be (1, 1)
    (0.0, [3e6, 4e6])], ids=["clipped", "off"])
def test_gradients_are_clipped_to_their_global_norm(clip_norm, expected):
    a, b = (keras.Variable(np.zeros(1, "float32"), name=name) for name in ("a", "b"))
    optimizer = make_optimizer(TrainConfig(clip_norm=clip_norm, warmup_steps=0, weight_decay=0))
    optimizer.apply_gradients([(np.array([3e6], "float32"), a), (np.array([4e6], "float32"), b)])
    beta_1 = optimizer.beta_1
    np.testing.assert_allclose(np.concatenate(first_moments(optimizer, [a, b])),
                               (1 - beta_1) * np.array(expected), rtol=1e-5)
