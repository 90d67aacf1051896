"""Evaluation: any model (checkpoint, registry, ONNX) under a benchmark's protocol (:mod:`.harness`)."""
