"""The one predictor interface: what every kind of head-pose model offers the code that runs it.

A checkpoint (:class:`~ldlpose.inference.predictor.PosePredictor`), an exported or registered model
loaded back (:class:`~ldlpose.inference.predictor.LoadedPredictor`), a described ONNX model
(:class:`~ldlpose.inference.onnx.OnnxPredictor`) and the evaluation harness's ``Model`` over any of
them all are :class:`Predictor`: ``ldlpose evaluate`` feeds each one a benchmark's rows through the
same input path (:mod:`ldlpose.data.inputs`) and reads the same output.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["Predictor"]


@runtime_checkable
class Predictor(Protocol):
    """``predict``: (N, S, S, 3) uint8 RGB face crops at S = ``input_size`` -> (N, 3) float64 yaw,
    pitch, roll in degrees (:mod:`ldlpose.geometry`); the model scales and normalises them itself.
    ``info``: what the model is (``method``, ``backbone``, ``image_size``, ...), JSON-safe."""

    @property
    def input_size(self) -> int: ...

    @property
    def info(self) -> dict: ...

    def predict(self, images: np.ndarray) -> np.ndarray: ...
