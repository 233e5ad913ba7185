"""Training: configs, the trainer and its runners, distribution strategies.

- `config`: `TrainConfig`, the optimizer and the compile step.
- `trainer`: `Trainer`, which owns a run directory while it trains (checkpoints, history, best
  model, progress, samples, the final save) and exposes the public hooks a runner calls.
- `fit_runner`: the `model.fit` runner (one device or mirrored), a Keras callback forwarding to
  those hooks.
- `multi_worker`: the cluster's `TF_CONFIG`, and the custom-loop runner for
  `MultiWorkerMirroredStrategy`.
- `distribute`: choosing the strategy (once per run, before anything else runs).
- `workflow`: `train()`, from a corpus name and a preset to a trained run directory.

The public names are re-exported by `tfl` itself (`tfl.train`, `tfl.TrainConfig`, ...).
"""
