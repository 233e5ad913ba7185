"""The tf_keras twin, SavedModel and TFLite export, LiteRT evaluation, TF-MOT compression.

Exports and the `tfl optimize` report are made once per module from the session's trained runs
(`trained_runs` in conftest: nano models that learned a toy grammar, far better than uniform),
and asserted on by several tests. The command-line rules (`--out`, bad options, progress) are
in `test_edge_cli.py`.
"""

import contextlib
import io
import json
import math

import numpy as np
import pytest

from tfl.cli import main
from tfl.errors import TflError
from tfl.models import LSTMConfig, TransformerConfig, build_model
from tfl.run import load_run

ARCHITECTURES = ("transformer", "lstm")


def run_cli(argv):
    """Exit status and stdout of `tfl ARGV`, in this process (for module-scoped fixtures,
    which cannot use capsys)."""
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        status = main([str(arg) for arg in argv])
    return status, stdout.getvalue()


# The TFLite variants `tfl export` writes for each architecture here; the Transformer's int8
# files come from `optimized`, whose dense variants are the same conversion of the same twin.
EXPORTED = {"transformer": ["float32"], "lstm": ["float32", "dynamic-int8", "int8"]}


@pytest.fixture(scope="module")
def exported(trained_runs, tmp_path_factory):
    """`tfl export --json` of the trained Transformer and LSTM: a SavedModel and the `EXPORTED`
    TFLite files. {architecture: (stdout, the parsed JSON)}."""
    root = tmp_path_factory.mktemp("exports")
    result = {}
    for architecture in ARCHITECTURES:
        status, stdout = run_cli(["export", trained_runs[architecture], "--out",
                                  root / architecture, "--quantize", *EXPORTED[architecture],
                                  "--json"])
        assert status == 0
        result[architecture] = (stdout, json.loads(stdout))
    return result


@pytest.fixture(scope="module")
def optimized(trained_runs, tmp_path_factory):
    """One `tfl optimize --json` of the trained Transformer with every technique:
    (output folder, stdout)."""
    out = tmp_path_factory.mktemp("optimized") / "transformer"
    status, stdout = run_cli([
        "optimize", trained_runs["transformer"], "--out", out, "--prune", "0.8", "--quantize",
        "dynamic-int8", "--cluster", "8", "--qat", "--fine-tune-steps", "20", "--batch-size",
        "4", "--max-chars", "2000", "--json"])
    assert status == 0
    return out, stdout


@pytest.fixture(scope="module")
def tflite_files(exported, optimized):
    """{architecture: {quantization: path}} of float32, dynamic-int8 and int8 files."""
    out, _ = optimized
    files = {architecture: dict(exported[architecture][1]["tflite"])
             for architecture in ARCHITECTURES}
    files["transformer"].update({q: out / f"dense-{q}.tflite" for q in ("dynamic-int8", "int8")})
    return files


def validation_ids(run, chars=3000):
    from tfl.data import load_corpus

    return run.tokenizer.encode(load_corpus(run.data.corpus).validation[:chars])


def validation_windows(run, count=4):
    """`count` windows of `seq_len` real validation tokens (what the model learned to read)."""
    ids = np.asarray(validation_ids(run), np.int32)
    seq_len = run.model_config.seq_len
    return np.stack([ids[i * seq_len:(i + 1) * seq_len] for i in range(count)])


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


def test_export_json_is_one_object_naming_the_files(exported):
    from pathlib import Path

    for architecture in ARCHITECTURES:
        stdout, result = exported[architecture]
        assert stdout.lstrip().startswith("{") and stdout.rstrip().endswith("}")
        out = Path(result["out"])
        assert Path(result["saved_model"]) == out / "saved_model"
        assert (out / "saved_model" / "saved_model.pb").is_file()
        assert list(result["tflite"]) == EXPORTED[architecture]
        for quantization, path in result["tflite"].items():
            assert Path(path) == out / f"model-{quantization}.tflite"
            assert Path(path).stat().st_size > 1000
        assert (out / "config.json").is_file() and (out / "tokenizer").is_dir()


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_saved_model_reloads_with_the_same_logits(architecture, trained_runs, exported):
    import tensorflow as tf

    run = load_run(trained_runs[architecture])
    loaded = tf.saved_model.load(exported[architecture][1]["saved_model"])
    assert set(loaded.signatures) == {"serving_default", "step"}
    ids = np.concatenate([validation_windows(run), random_windows(run.model_config)])
    logits = loaded.signatures["serving_default"](tokens=tf.constant(ids))["logits"].numpy()
    np.testing.assert_allclose(logits, np.asarray(run.model(ids)), atol=1e-5)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_saved_model_step_signature_gives_the_keras_next_token_logits(
        architecture, trained_runs, exported):
    """The `step` signature, called as a device would: the Transformer with a right-padded
    window and its length, the LSTM one token at a time carrying (h, c)."""
    import tensorflow as tf

    from tfl.tokenizers.base import PAD_ID

    run = load_run(trained_runs[architecture])
    config = run.model_config
    step = tf.saved_model.load(exported[architecture][1]["saved_model"]).signatures["step"]
    window = validation_windows(run, count=1)[0]
    expected = np.asarray(run.model(window[None]))[0]  # (T, vocab), the unpadded window
    if architecture == "transformer":
        for length in (1, 7, config.seq_len):
            padded = np.full((1, config.seq_len), PAD_ID, np.int32)
            padded[0, :length] = window[:length]
            out = step(tokens=tf.constant(padded), length=tf.constant([length]))
            np.testing.assert_allclose(out["next_logits"].numpy()[0], expected[length - 1],
                                       atol=1e-5)
    else:
        h = c = tf.zeros((config.num_layers, 1, config.hidden_dim))
        for t, token in enumerate(window):
            out = step(token=tf.constant([token]), h=h, c=c)
            h, c = out["h"], out["c"]
            np.testing.assert_allclose(out["logits"].numpy()[0], expected[t], atol=1e-5)
    assert expected.std(-1).min() > 0.5  # a trained model's logits, not a flat row


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_tflite_float32_matches_keras_and_the_step_signature_matches_the_window(
        architecture, trained_runs, exported):
    from tfl.edge.litert import LiteRTModel

    run = load_run(trained_runs[architecture])
    model = LiteRTModel(exported[architecture][1]["tflite"]["float32"])
    ids = validation_windows(run)
    expected = np.asarray(run.model(ids))
    for window, logits in zip(ids, expected):
        np.testing.assert_allclose(model.logits(window), logits, atol=1e-4)
    # One token at a time through `step` gives the logits of the whole window.
    decoder = model.decoder()
    stepped = [decoder.start(ids[:1, :1])[0]]
    stepped += [decoder.step(ids[0, t:t + 1])[0] for t in range(1, run.model_config.seq_len)]
    np.testing.assert_allclose(np.stack(stepped), expected[0], atol=1e-4)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_int8_files_keep_the_keras_perplexity_far_below_uniform(
        architecture, trained_runs, tflite_files):
    """Every file is within a few percent of the Keras model's validation perplexity, and that
    perplexity is far below a uniform guess's (the vocabulary size): a file whose logits are
    flat, or full int8 with a billion-wide attention mask range, fails."""
    from tfl.edge.litert import LiteRTModel, evaluate_tflite
    from tfl.inference.evaluate import evaluate_ids

    run = load_run(trained_runs[architecture])
    ids = validation_ids(run)
    keras_loss = evaluate_ids(run.model, ids, run.model_config.seq_len)["loss"]
    uniform_loss = math.log(run.model_config.vocab_size)
    assert keras_loss < uniform_loss - 1  # the model learned: at least e times better
    losses = {q: evaluate_tflite(LiteRTModel(path), ids)["loss"]
              for q, path in tflite_files[architecture].items()}
    assert losses["float32"] == pytest.approx(keras_loss, rel=1e-5)
    # (a perplexity ratio of 1 + x is a loss difference of about x)
    assert abs(losses["dynamic-int8"] - keras_loss) < 0.02
    assert abs(losses["int8"] - keras_loss) < 0.03
    assert max(losses.values()) < uniform_loss - 1


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_int8_files_choose_the_keras_greedy_tokens(architecture, trained_runs, tflite_files):
    """Keras generates 32 tokens greedily; at each of them, the exported file, given the same
    context, picks the same token (teacher-forced, so one near-tie does not make every later
    token differ)."""
    from tfl.edge.litert import LiteRTModel
    from tfl.inference.generate import generate

    run = load_run(trained_runs[architecture])
    seq_len = run.model_config.seq_len
    prompt = "t"  # one token: the prompt and the 32 new tokens fit in one window
    text = generate(run, prompt, seq_len, sampler="greedy")
    tokens = np.asarray(run.tokenizer.encode(prompt + text), np.int32)  # (1 + T,)
    assert len(tokens) == seq_len + 1
    for quantization, least in (("float32", 1.0), ("dynamic-int8", 0.9), ("int8", 0.8)):
        model = LiteRTModel(tflite_files[architecture][quantization])
        chosen = model.logits(tokens[:seq_len]).argmax(-1)  # at position t, token t + 1
        agreement = float(np.mean(chosen == tokens[1:]))
        assert agreement >= least, (quantization, agreement, text)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_generate_from_tflite_equals_keras_generation(architecture, trained_runs, exported,
                                                      capsys):
    from tfl.inference.generate import generate

    expected = generate(load_run(trained_runs[architecture]), "the ", 30, sampler="greedy")
    path = exported[architecture][1]["tflite"]["float32"]
    assert main(["generate", "--tflite", path, "--prompt", "the ", "--max-new-tokens", "30",
                 "--sampler", "greedy", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["text"] == expected


def weight_matrices(path):
    """The float32 weight matrices stored in a `.tflite` file (2-D constants of at least 256
    values), read back with the interpreter: what a device gets, not what tfl reported."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    matrices = []
    for detail in interpreter.get_tensor_details():
        if len(detail["shape"]) != 2 or detail["dtype"] != np.float32:
            continue
        try:
            values = interpreter.get_tensor(detail["index"])
        except ValueError:  # (an intermediate result, not a stored constant)
            continue
        if values.size >= 256:
            matrices.append(values)
    return matrices


def test_optimize_json_is_one_object_with_every_variant_measured(optimized):
    out, stdout = optimized
    report = json.loads(stdout)  # the whole stdout: no progress line got in
    assert report == {**json.loads((out / "report.json").read_text()), "out": str(out)}
    variants = [row["variant"] for row in report["rows"]]
    assert variants == ["dense-float32", "dense-float16", "dense-dynamic-int8", "dense-int8",
                        "pruned-float32", "pruned-dynamic-int8", "clustered-float32",
                        "qat-int8"]
    for row in report["rows"]:
        assert (out / row["file"]).stat().st_size == row["bytes"]
        assert np.isfinite(row["perplexity"]) and row["ms_per_token"] > 0
    uniform = json.loads((out / "config.json").read_text())["model"]["vocab_size"]
    for row in report["rows"][:4]:  # the dense variants: close to Keras, far from uniform
        assert abs(row["perplexity_change"]) < 0.03 and row["perplexity"] < uniform / math.e
    assert "MultiHeadAttention is not supported" in (out / "report.md").read_text()
    assert (out / "size_vs_perplexity.png").stat().st_size > 10_000


def test_optimize_pruned_file_holds_the_sparsity_it_reports(optimized):
    out, _ = optimized
    report = json.loads((out / "report.json").read_text())
    pruned = next(r for r in report["rows"] if r["variant"] == "pruned-float32")
    assert pruned["sparsity"] == pytest.approx(0.8, abs=0.02)
    names = set(report["compression"]["pruned"]["achieved_sparsity"]["weights"])
    assert {"token_embedding/embeddings", "positions/table", "logits/kernel"} <= names
    assert any("attention" in name and "query" in name for name in names)
    # Counted again in the file itself: every stored matrix is 80% zeros, the dense file's are
    # not, and zeros compress, so gzip gains more than on the dense file.
    matrices = weight_matrices(out / "pruned-float32.tflite")
    assert len(matrices) >= 12
    assert all(np.mean(m == 0) == pytest.approx(0.8, abs=0.02) for m in matrices)
    assert max(np.mean(m == 0) for m in weight_matrices(out / "dense-float32.tflite")) < 0.05
    dense = next(r for r in report["rows"] if r["variant"] == "dense-dynamic-int8")
    quantized = next(r for r in report["rows"] if r["variant"] == "pruned-dynamic-int8")
    assert quantized["gzip_ratio"] > dense["gzip_ratio"]


def test_optimize_clustered_file_holds_as_many_values_as_clusters(optimized):
    out, _ = optimized
    report = json.loads((out / "report.json").read_text())
    assert report["compression"]["clustered"]["max_distinct_values"] <= 8
    distinct = sorted(np.unique(m).size for m in weight_matrices(out / "clustered-float32.tflite"))
    # Every matrix but the position table (a custom layer, not clusterable) has at most 8.
    assert len(distinct) >= 12 and distinct[-2] <= 8 < distinct[-1]
    qat = report["compression"]["qat"]
    assert qat["quantized_layers"] == ["block_0_ffn_in", "block_0_ffn_out", "block_1_ffn_in",
                                       "block_1_ffn_out", "logits"]


def test_clustering_and_qat_of_an_lstm_show_progress_and_report_what_they_cover(
        trained_runs, capsys):
    from tfl.edge import compression

    run = load_run(trained_runs["lstm"])
    ids = validation_ids(run, chars=20_000)
    _, clustered = compression.cluster(run.model, run.model_config, ids, clusters=6, steps=4,
                                       batch_size=4, show_progress=True)
    assert clustered["max_distinct_values"] <= 6
    assert "lstm_0/lstm_cell/recurrent_kernel" in " ".join(clustered["distinct_values"])
    _, qat = compression.quantization_aware(run.model, run.model_config, ids, steps=4,
                                            batch_size=4)
    assert qat["quantized_layers"] == ["logits"]
    assert set(qat["not_quantized"]) == {"token_embedding", "lstm_0"}
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("clustering fine-tune 4/4 steps") and "loss" in line
               for line in lines)
    assert not any("quantization-aware" in line for line in lines)  # (not asked to show)


def test_bad_input_gets_one_line_and_leaves_nothing(trained_runs, tmp_path, capsys):
    out = tmp_path / "never"
    assert main(["optimize", str(tmp_path / "missing"), "--out", str(out)]) == 2
    assert "no run directory" in capsys.readouterr().err
    # An architecture tfl does not know.
    broken = tmp_path / "broken"
    broken.mkdir()
    settings = json.loads((trained_runs["lstm"] / "config.json").read_text())
    settings["model"]["architecture"] = "gru"
    (broken / "config.json").write_text(json.dumps(settings))
    assert main(["export", str(broken), "--out", str(out)]) == 2
    assert "gru" in capsys.readouterr().err
    assert main(["generate", "--tflite", str(tmp_path / "none.tflite")]) == 2
    assert "no TFLite file" in capsys.readouterr().err
    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(b"not a flatbuffer" * 10)
    (tmp_path / "config.json").write_text((trained_runs["lstm"] / "config.json").read_text())
    assert main(["generate", "--tflite", str(garbage)]) == 2
    assert "not a tfl TFLite model" in capsys.readouterr().err
    assert not out.exists()
    assert not list(tmp_path.glob(".never.*"))  # no half-written temporary directory either


def test_a_rotary_run_is_refused_before_anything_is_written(trained_runs, tmp_path, capsys):
    assert main(["export", str(trained_runs["rotary"]), "--out", str(tmp_path / "out")]) == 2
    assert "--position learned" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
