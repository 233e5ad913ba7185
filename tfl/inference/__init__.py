"""Inference: sampling, decoders, text generation and evaluation of a trained model.

- `sampling`: keras-hub samplers, one sample step, special tokens never generated.
- `decoders`: how a model yields next-token logits step by step (cached, stateful, recomputing).
- `generate`: the decoding loop with its context rules, beam search, streamed text.
- `evaluate`: loss, perplexity and bits per character on a split.

The public names are re-exported by `tfl` itself (`tfl.generate`, `tfl.evaluate_run`, ...).
"""
