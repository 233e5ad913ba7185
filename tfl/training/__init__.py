"""Training: configs, the trainer and its runners, distribution strategies.

- `config`: `TrainConfig`, the optimizer and the compile step.
- `trainer`: `Trainer`, which owns a run directory while it trains (checkpoints, history, best
  model, progress, samples) and exposes public hooks that a runner calls.
- `workflow`: `train()`, from a corpus name and a preset to a trained run directory.
- `distribute`: choosing a one-device or mirrored strategy; `multi_worker`: the cluster runner.

The public names are re-exported by `tfl` itself (`tfl.train`, `tfl.TrainConfig`, ...).
"""
