"""The tf_keras twin, TF-MOT compression, SavedModel and TFLite export, LiteRT evaluation."""

import json

import numpy as np
import pytest

from tfl.cli import main
from tfl.errors import TflError
from tfl.models import LSTMConfig, TransformerConfig, build_model
from tfl.run import load_run
from tfl.training.config import TrainConfig
from tfl.training.workflow import train

TINY = TrainConfig(steps=20, eval_interval=20, batch_size=8, eval_batches=2, sample_tokens=0,
                   seed=5)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A briefly trained nano Transformer and LSTM (trained weights, not initial ones)."""
    root = tmp_path_factory.mktemp("runs")
    for architecture in ("transformer", "lstm"):
        train(architecture, "nano", "python_docs", root / architecture, train_config=TINY,
              log=None)
    return root


@pytest.fixture(scope="module")
def exported(runs, tmp_path_factory):
    from tfl.edge.export import export_run

    root = tmp_path_factory.mktemp("exports")
    return {a: export_run(runs / a, root / a, quantizations=("float32", "dynamic-int8", "int8"))
            for a in ("transformer", "lstm")}


def random_windows(config, count=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(3, config.vocab_size, (count, config.seq_len)).astype(np.int32)


@pytest.mark.parametrize("config", [
    TransformerConfig.from_preset("nano", vocab_size=23),
    TransformerConfig.from_preset("nano", vocab_size=23, position="sinusoidal"),
    TransformerConfig.from_preset("nano", vocab_size=23, tie_weights=False),
    LSTMConfig.from_preset("nano", vocab_size=23),
    LSTMConfig.from_preset("nano", vocab_size=23, num_layers=2, tie_weights=True,
                           embedding_dim=32),
], ids=["learned", "sinusoidal", "untied", "lstm", "lstm-2-layers-tied"])
def test_twin_gives_the_same_logits(config):
    from tfl.models.twin import make_twin

    model = build_model(config)
    # Random but large weights, so a mis-copied matrix cannot hide behind tiny initial values.
    rng = np.random.default_rng(1)
    model.set_weights([rng.normal(0, 0.3, w.shape).astype("float32")
                       for w in model.get_weights()])
    twin = make_twin(model, config)
    ids = random_windows(config)
    expected = np.asarray(model(ids, training=False))
    np.testing.assert_allclose(twin(ids, training=False).numpy(), expected, atol=2e-5)
    assert np.abs(expected).max() > 0.5  # the comparison is not between near-zero logits


def test_twin_parts_are_found_by_role_inside_tf_mot_wrappers():
    import tensorflow_model_optimization as tfmot

    from tfl.models.twin import MLP_IN, OUTPUT, layer_role, make_twin, twin_parts

    config = TransformerConfig.from_preset("nano", vocab_size=23)

    def wrap(layer):
        if layer_role(layer) in (MLP_IN, OUTPUT):
            return tfmot.sparsity.keras.prune_low_magnitude(layer)
        return layer

    twin = make_twin(build_model(config), config, wrap=wrap)
    wrapped, inner = twin_parts(twin, config, wrapped=True), twin_parts(twin, config)
    assert wrapped.output is not inner.output and wrapped.output.layer is inner.output
    assert layer_role(wrapped.output) == layer_role(inner.output) == OUTPUT
    assert [layer_role(block.mlp_in) for block in wrapped.blocks] == [MLP_IN, MLP_IN]
    assert inner.blocks[1].mlp_in.units == config.ffn_dim
    assert wrapped.token_embedding is inner.token_embedding  # not wrapped
    # Embedding, positions, final norm and output, and five layers per block, have a role.
    assert sum(layer_role(layer) is not None for layer in twin.layers) == 4 + 5 * 2


def test_rotary_models_are_refused_with_the_option_that_works():
    from tfl.models.twin import build_twin

    with pytest.raises(TflError, match="--position learned"):
        build_twin(TransformerConfig.from_preset("nano", vocab_size=20, position="rotary"))


@pytest.mark.parametrize("architecture", ["transformer", "lstm"])
def test_saved_model_reloads_with_the_same_logits(architecture, runs, exported):
    import tensorflow as tf

    run = load_run(runs / architecture)
    loaded = tf.saved_model.load(exported[architecture]["saved_model"])
    ids = random_windows(run.model_config)
    logits = loaded.signatures["serving_default"](tokens=tf.constant(ids))["logits"].numpy()
    np.testing.assert_allclose(logits, np.asarray(run.model(ids)), atol=1e-5)
    assert set(loaded.signatures) == {"serving_default", "step"}


@pytest.mark.parametrize("architecture", ["transformer", "lstm"])
def test_tflite_float32_matches_keras_and_the_step_signature_matches_the_window(
        architecture, runs, exported):
    from tfl.edge.litert import LiteRTModel

    run = load_run(runs / architecture)
    model = LiteRTModel(exported[architecture]["tflite"]["float32"])
    ids = random_windows(run.model_config)
    expected = np.asarray(run.model(ids))
    for window, logits in zip(ids, expected):
        np.testing.assert_allclose(model.logits(window), logits, atol=1e-4)
    # One token at a time through `step` gives the logits of the whole window.
    decoder = model.decoder()
    stepped = [decoder.start(ids[:1, :1])[0]]
    stepped += [decoder.step(ids[0, t:t + 1])[0] for t in range(1, run.model_config.seq_len)]
    np.testing.assert_allclose(np.stack(stepped), expected[0], atol=1e-4)


@pytest.mark.parametrize("architecture", ["transformer", "lstm"])
def test_tflite_perplexity_matches_keras_and_int8_stays_close(architecture, runs, exported):
    from tfl.data import load_corpus
    from tfl.inference.evaluate import evaluate_ids
    from tfl.edge.litert import LiteRTModel, evaluate_tflite

    run = load_run(runs / architecture)
    ids = run.tokenizer.encode(load_corpus("python_docs").validation[:3000])
    keras_loss = evaluate_ids(run.model, ids, run.model_config.seq_len)["loss"]
    losses = {q: evaluate_tflite(LiteRTModel(path), ids)["loss"]
              for q, path in exported[architecture]["tflite"].items()}
    assert losses["float32"] == pytest.approx(keras_loss, rel=1e-5)
    assert losses["dynamic-int8"] == pytest.approx(keras_loss, rel=0.02)
    assert losses["int8"] == pytest.approx(keras_loss, rel=0.05)


@pytest.mark.parametrize("architecture", ["transformer", "lstm"])
def test_generate_from_tflite_equals_keras_generation(architecture, runs, exported, capsys):
    from tfl.inference.generate import generate

    expected = generate(load_run(runs / architecture), "def ", 30, sampler="greedy")
    path = exported[architecture]["tflite"]["float32"]
    assert main(["generate", "--tflite", path, "--prompt", "def ", "--max-new-tokens", "30",
                 "--sampler", "greedy", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["text"] == expected


def test_pruning_reaches_the_target_and_reports_what_it_measured(runs):
    from tfl.edge import compression as optimize
    from tfl.data import load_corpus

    run = load_run(runs / "transformer")
    ids = run.tokenizer.encode(load_corpus("python_docs").train[:50_000])
    pruned, report = optimize.prune(run.model, run.model_config, ids, 0.5, steps=20,
                                    batch_size=4)
    weights = optimize.compressible_weights(pruned, optimize.PRUNABLE["transformer"])
    zeros = sum(int((w == 0).sum()) for w in weights.values())
    assert report["achieved_sparsity"]["overall"] == zeros / sum(w.size for w in weights.values())
    assert report["achieved_sparsity"]["overall"] == pytest.approx(0.5, abs=0.02)
    names = set(report["achieved_sparsity"]["weights"])
    assert {"token_embedding/embeddings", "positions/table", "logits/kernel"} <= names
    assert any("attention" in name and "query" in name for name in names)
    # Stripped: a plain tf_keras model with no TF-MOT wrappers left.
    assert not any(hasattr(layer, "pruning_vars") for layer in pruned.layers)


def test_clustering_and_qat_report_what_they_cover(runs):
    from tfl.edge import compression as optimize
    from tfl.data import load_corpus

    run = load_run(runs / "lstm")
    ids = run.tokenizer.encode(load_corpus("python_docs").train[:50_000])
    _, clustered = optimize.cluster(run.model, run.model_config, ids, clusters=6, steps=4,
                                    batch_size=4)
    assert clustered["max_distinct_values"] <= 6
    assert "lstm_0/lstm_cell/recurrent_kernel" in " ".join(clustered["distinct_values"])
    _, qat = optimize.quantization_aware(run.model, run.model_config, ids, steps=4, batch_size=4)
    assert qat["quantized_layers"] == ["logits"]
    assert set(qat["not_quantized"]) == {"token_embedding", "lstm_0"}


def test_optimize_command_writes_a_report_of_every_variant(runs, tmp_path, capsys):
    out = tmp_path / "optimized"
    assert main(["optimize", str(runs / "transformer"), "--out", str(out), "--prune", "0.8",
                 "--quantize", "dynamic-int8", "--cluster", "8", "--qat",
                 "--fine-tune-steps", "20", "--batch-size", "4", "--max-chars", "2000",
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    variants = [row["variant"] for row in report["rows"]]
    assert variants == ["dense-float32", "dense-float16", "dense-dynamic-int8", "dense-int8",
                        "pruned-float32", "pruned-dynamic-int8", "clustered-float32",
                        "qat-int8"]
    for row in report["rows"]:
        assert (out / row["file"]).stat().st_size == row["bytes"]
        assert np.isfinite(row["perplexity"]) and row["ms_per_token"] > 0
    pruned = next(r for r in report["rows"] if r["variant"] == "pruned-dynamic-int8")
    assert pruned["sparsity"] == pytest.approx(0.8, abs=0.02)
    assert pruned["gzip_ratio"] > next(r for r in report["rows"]
                                       if r["variant"] == "dense-dynamic-int8")["gzip_ratio"]
    assert "MultiHeadAttention is not supported" in (out / "report.md").read_text()
    assert (out / "size_vs_perplexity.png").stat().st_size > 10_000


def test_bad_input_gets_one_line_and_leaves_nothing(runs, tmp_path, capsys):
    out = tmp_path / "never"
    assert main(["optimize", str(tmp_path / "missing"), "--out", str(out)]) == 2
    assert "no run directory" in capsys.readouterr().err
    # An architecture tfl does not know.
    broken = tmp_path / "broken"
    broken.mkdir()
    settings = json.loads((runs / "lstm" / "config.json").read_text())
    settings["model"]["architecture"] = "gru"
    (broken / "config.json").write_text(json.dumps(settings))
    assert main(["export", str(broken), "--out", str(out)]) == 2
    assert "gru" in capsys.readouterr().err
    assert main(["optimize", str(runs / "lstm"), "--out", str(out), "--quantize", "int4"]) == 2
    assert "--quantize takes one of" in capsys.readouterr().err
    assert main(["generate", "--tflite", str(tmp_path / "none.tflite")]) == 2
    assert "no TFLite file" in capsys.readouterr().err
    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(b"not a flatbuffer" * 10)
    (tmp_path / "config.json").write_text((runs / "lstm" / "config.json").read_text())
    assert main(["generate", "--tflite", str(garbage)]) == 2
    assert "not a tfl TFLite model" in capsys.readouterr().err
    assert not out.exists()
    assert not list(tmp_path.glob(".never.*"))  # no half-written temporary directory either


def test_a_rotary_run_is_refused_before_anything_is_written(tmp_path, capsys):
    run = tmp_path / "rotary"
    train("transformer", "nano", "python_docs", run, train_config=TrainConfig(
        steps=2, eval_interval=2, batch_size=2, eval_batches=1, sample_tokens=0),
        model_overrides={"position": "rotary"}, log=None)
    assert main(["export", str(run), "--out", str(tmp_path / "out")]) == 2
    assert "--position learned" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
