"""Where a Transformer training step spends its time: a kernel-level profile of the XLA step.

    python bench/step_profile.py [--steps 20] [--repeats 5] [--out DIR]

With XLA on the CPU, one training step runs as a sequence of kernels: matrix products and
fused element-wise loops. XLA's `--xla_cpu_enable_xprof_traceme` makes each kernel a named
event in TensorFlow's profiler trace, and the optimized HLO (dumped in the same run) says what
each kernel computes: its `op_name` names the layer and operation, and for a matrix product the
operand shapes give its FLOPs. The script groups kernel time by what the kernels do and prints,
per group, milliseconds per step, share of the step and, for matrix products, the GFLOP/s they
reach beside the fp32 matmul peak measured in the same run. It writes `profile.json` and
`profile.png` into the output folder (see `common.py`).

Tracing each kernel costs time itself, so the wall time per step is measured twice, without and
with the profiler; shares are of the summed kernel time (kernels may overlap on the two cores).
The model is the char-cpu Transformer compiled exactly as `tfl train` compiles it.
"""

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from common import (add_corpus_arguments, add_out_argument, load_bench_corpus, machine_info,
                    matmul_peak_gflops, print_table, progress, write_result)

def scope(names):
    """A test of an HLO `op_name` path: does it pass through a layer named in `names`? (Tracing a
    layer again adds `_1`, `_2`, ... to its name scope.)"""
    pattern = re.compile(r"(^|/)(" + "|".join(map(re.escape, names)) + r")(_\d+)?/")
    return lambda name: bool(pattern.search(name))


def kernel_groups(model, config):
    """(matmul groups, element-wise groups): lists of (group, test on an HLO `op_name`) in
    order; the first test that passes names the kernel. The op paths name the model's layers,
    which are found by role (`tfl.models.parts`)."""
    from tfl.models.parts import model_parts

    parts = model_parts(model, config)
    block = parts.block(0)  # every block's sub-layers carry the same names
    projections = scope([block.query.name, block.key.name, block.value.name,
                         block.attention_output.name])
    attention = scope([block.attention.name])
    feed_forward = scope([block.mlp_in.name, block.mlp_out.name])
    norms = scope([block.attention_norm.name, block.mlp_norm.name, parts.final_norm.name])
    in_model = re.compile(re.escape(model.name) + r"(_\d+)?/")
    matmul = [
        ("matmul: attention q, k, v, out projections", projections),
        ("matmul: attention scores and weighted values", attention),
        ("matmul: feed-forward", feed_forward),
        ("matmul: output projection (tied embedding)", scope([parts.token_embedding.name])),
        ("matmul: other", lambda name: True),
    ]
    elementwise = [
        # Whatever is outside the model, its gradient and the loss is the optimizer's update.
        ("optimizer: AdamW, clipping, gradient sums",
         lambda name: not (in_model.match(name) or name.startswith(("gradient_tape",
                                                                     "compile_loss")))),
        ("element-wise: layer norms", norms),
        ("element-wise: GELU and feed-forward biases", feed_forward),
        ("element-wise: attention softmax, mask, layout copies", attention),
        ("element-wise: loss", lambda name: "loss" in name),
        ("element-wise: embeddings, residual adds", lambda name: True),
    ]
    return matmul, elementwise


def read_hlo(path):
    """instruction name -> (opcode, shape dims, op_name, operand names) of the optimized HLO."""
    instructions = {}
    for line in path.read_text().splitlines():
        match = re.match(r"\s*(?:ROOT )?%(\S+) = \w+\[([\d,]*)\]\S* ([\w-]+)\(([^)]*)\)", line)
        if not match:
            continue
        name, dims, opcode, operands = match.groups()
        op_name = re.search(r'op_name="([^"]*)"', line)
        contracting = re.search(r"lhs_contracting_dims=\{([\d,]*)\}", line)
        instructions[name] = {
            "opcode": opcode, "dims": [int(d) for d in dims.split(",") if d],
            "op_name": op_name.group(1) if op_name else "",
            "operands": re.findall(r"%([\w.-]+)", operands),
            "contracting": [int(d) for d in contracting.group(1).split(",") if d]
            if contracting else []}
    return instructions


def dot_flops(instruction, instructions):
    """2 x output elements x contracted length, from the HLO shapes."""
    lhs = instructions.get(instruction["operands"][0]) if instruction["operands"] else None
    if not lhs:
        return 0
    contracted = 1
    for axis in instruction["contracting"]:
        contracted *= lhs["dims"][axis]
    out = 1
    for d in instruction["dims"]:
        out *= d
    return 2 * out * contracted


def group_of(instruction, groups):
    """The group of an HLO instruction, given `kernel_groups`; a matrix product in the
    gradient computation is marked backward."""
    name = instruction["op_name"]
    matmul, elementwise = groups
    backward = " (backward)" if name.startswith("gradient_tape") else ""
    for group, test in matmul if instruction["opcode"] == "dot" else elementwise:
        if test(name):
            return group + (backward if instruction["opcode"] == "dot" else "")
    raise AssertionError("the last group matches everything")


def kernel_times(trace_dir, instructions, groups, steps):
    """group -> [ms per step, kernels per step] summed over the traced steps."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    space.ParseFromString(next(Path(trace_dir).rglob("*.xplane.pb")).read_bytes())
    totals, counts = Counter(), Counter()
    for plane in space.planes:
        names = {key: meta.name for key, meta in plane.event_metadata.items()}
        for line in plane.lines:
            for event in line.events:
                instruction = instructions.get(names.get(event.metadata_id, ""))
                if instruction is None:  # executor bookkeeping, Python, TensorFlow ops
                    continue
                group = group_of(instruction, groups)
                totals[group] += event.duration_ps / 1e9 / steps
                counts[group] += 1 / steps
    return totals, counts


def configure_xla(dump):
    """Ask XLA for a named profiler event per kernel and for the optimized HLO in `dump`. XLA
    reads these flags once: this must run before TensorFlow is imported."""
    if "tensorflow" in sys.modules:
        raise RuntimeError("configure_xla must run before TensorFlow is imported")
    os.environ["XLA_FLAGS"] = " ".join([
        os.environ.get("XLA_FLAGS", ""), "--xla_cpu_enable_xprof_traceme=true",
        f"--xla_dump_to={dump / 'hlo'}", "--xla_dump_hlo_as_text",
        "--xla_dump_hlo_module_re=.*one_step_on_data.*"])


def profile(args, dump):
    """Time, trace and group the training step; write `profile.json` and `profile.png`."""
    configure_xla(dump)
    import tensorflow as tf

    from tfl.data import make_dataset
    from tfl.models import TransformerConfig, build_model
    from tfl.tokenizers import build_tokenizer
    from tfl.training.config import TrainConfig, compile_model
    from training import flops_per_token

    corpus = load_bench_corpus(args)
    tokenizer = build_tokenizer("char", corpus.train)
    config = TransformerConfig.from_preset("char-cpu", vocab_size=tokenizer.vocab_size)
    dataset = make_dataset(tokenizer.encode(corpus.train), config.seq_len, args.batch,
                           shuffle=True, repeat=True, seed=0)
    x, y = next(iter(dataset))  # (B, T) inputs and targets
    model = build_model(config)
    compile_model(model, TrainConfig(steps=10 ** 6, batch_size=args.batch))
    started = time.perf_counter()
    for _ in range(10):  # trace and compile, warm up
        model.train_on_batch(x, y)
    progress(f"  compiled and warmed up in {time.perf_counter() - started:.0f} s")

    def seconds_per_step():
        start = time.perf_counter()
        for _ in range(args.steps):
            model.train_on_batch(x, y)
        return (time.perf_counter() - start) / args.steps

    peaks, walls = [], []
    for repeat in range(args.repeats):
        peaks.append(matmul_peak_gflops(repeats=10))
        walls.append(seconds_per_step())
        progress(f"  repetition {repeat + 1}/{args.repeats}: {walls[-1] * 1e3:.1f} ms per step")
    trace_dir = dump / "trace"
    tf.profiler.experimental.start(str(trace_dir))
    traced = seconds_per_step()
    tf.profiler.experimental.stop()
    progress(f"  traced {args.steps} steps")

    hlo = next((dump / "hlo").glob("*one_step_on_data*cpu_after_optimizations.txt"))
    instructions = read_hlo(hlo)
    groups = kernel_groups(model, config)
    totals, counts = kernel_times(trace_dir, instructions, groups, args.steps)
    flops = Counter()
    for instruction in instructions.values():
        if instruction["opcode"] == "dot":
            flops[group_of(instruction, groups)] += dot_flops(instruction, instructions)

    peak = statistics.median(peaks)
    kernel_ms = sum(totals.values())
    model_flops = flops_per_token("transformer", vars(config)) * args.batch * config.seq_len
    rows = [{"group": group, "ms_per_step": ms, "share": ms / kernel_ms,
             "kernels_per_step": round(counts[group]),
             "gflop_per_step": flops[group] / 1e9 if group in flops else None,
             "gflops": flops[group] / (ms / 1e3) / 1e9 if group in flops else None}
            for group, ms in totals.most_common()]
    wall_ms = statistics.median(walls) * 1e3
    payload = {"benchmark": "profile", "matmul_gflops": peak, **machine_info(),
               "corpus": corpus.name, "batch": args.batch, "seq_len": config.seq_len,
               "steps": args.steps,
               "wall_ms_per_step": {"median": wall_ms, "min": min(walls) * 1e3,
                                    "max": max(walls) * 1e3, "repeats": len(walls)},
               "traced_ms_per_step": traced * 1e3, "kernel_ms_per_step": kernel_ms,
               "model_gflop_per_step": model_flops / 1e9,
               "mfu": model_flops / (wall_ms / 1e3) / (peak * 1e9),
               "matmul_share": sum(r["share"] for r in rows if r["group"].startswith("matmul")),
               "groups": rows}
    path = write_result(args.out, "profile", payload)
    plot(rows, args.out / "profile.png", peak)

    print(f"fp32 matmul peak: {peak:.1f} GFLOP/s (median beside each timing)")
    print(f"step: {wall_ms:.1f} ms untraced (min {min(walls) * 1e3:.1f}), "
          f"{traced * 1e3:.1f} ms traced; {model_flops / 1e9:.2f} model GFLOP per step, "
          f"MFU {payload['mfu']:.1%}")
    print_table(["kernels grouped by what they do", "ms/step", "share", "kernels/step",
                 "GFLOP/s"],
                [[r["group"], f"{r['ms_per_step']:.2f}", f"{r['share']:.1%}",
                  f"{r['kernels_per_step']}", f"{r['gflops']:.0f}" if r["gflops"] else "-"]
                 for r in rows])
    print(f"matrix products: {payload['matmul_share']:.1%} of kernel time")
    print(f"wrote {path}")


def plot(rows, path, peak):
    from tfl.plotting import figure

    with figure(path, size=(9, 0.35 * len(rows) + 1.2)) as ax:
        labels = [r["group"] for r in rows][::-1]
        values = [r["ms_per_step"] for r in rows][::-1]
        colors = ["tab:blue" if label.startswith("matmul") else "tab:orange" for label in labels]
        ax.barh(labels, values, color=colors)
        for y, r in enumerate(rows[::-1]):
            if r["gflops"]:
                ax.text(r["ms_per_step"], y, f" {r['gflops']:.0f} GFLOP/s", va="center",
                        fontsize=8)
        ax.margins(x=0.15)  # room for the GFLOP/s labels
        ax.set_xlabel("kernel time per training step (ms)")
        ax.set_title(f"char-cpu Transformer training step by kernel group "
                     f"(matmul peak {peak:.0f} GFLOP/s)", fontsize=10)
        ax.tick_params(axis="y", labelsize=8)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="steps traced and timed")
    parser.add_argument("--repeats", type=int, default=5, help="untraced timings of --steps")
    parser.add_argument("--batch", type=int, default=12)
    add_corpus_arguments(parser)
    add_out_argument(parser)
    args = parser.parse_args()
    dump = Path(tempfile.mkdtemp(prefix="tfl-step-profile-"))
    try:
        profile(args, dump)
    finally:  # the HLO dump and the trace are read by `profile`; nothing of them is kept
        shutil.rmtree(dump, ignore_errors=True)


if __name__ == "__main__":
    main()
