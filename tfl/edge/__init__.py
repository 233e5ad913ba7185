"""The road to a device: compression with TF-MOT, SavedModel and TFLite export, LiteRT.

- `compression`: pruning, clustering and quantization-aware training of the tf_keras twin
  (the twin itself, the same architecture built with tf_keras, is `tfl.models.twin`).
- `export`: SavedModel and TFLite files with serving and step signatures.
- `litert`: running an exported file with the LiteRT interpreter.
- `report`: `optimize_run`, which compresses a run and measures every variant.

The public names are re-exported by `tfl` itself (`tfl.export_run`, `tfl.optimize_run`, ...).
"""
