"""Inference: a trained model as a predictor from RGB face crops to yaw/pitch/roll in degrees.

:class:`Predictor` (:mod:`.interface`) is the one interface every kind of model offers;
:mod:`.predictor` (a checkpoint as one module, its preprocessing), :mod:`.onnx` (any described ONNX
model), :mod:`.profile` (a predictor's latency, parameters and MACs).
"""

from ldlpose.inference.interface import Predictor

__all__ = ["Predictor"]
