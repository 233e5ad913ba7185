"""Inference: sampling, decoders, text generation and evaluation of a trained model.

- `sampling`: keras-hub samplers, one sample step, special tokens never generated.
- `decoders`: how a model yields next-token logits step by step (cached, stateful, recomputing).
- `generate`: the decoding loop with its context rules, beam search, streamed text, for any
  decoder (the LiteRT ones of `tfl.edge.litert` too).
- `evaluate`: loss, perplexity and bits per character on a split.
- `caching`: the small bounded cache that keeps decoders, samplers and compiled steps between
  calls.

Dependencies inside the package point one way: sampling <- decoders <- generate; evaluate
stands alone.

The public names are re-exported by `tfl` itself (`tfl.generate`, `tfl.evaluate_run`, ...).
"""
