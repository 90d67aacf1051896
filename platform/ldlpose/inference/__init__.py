"""Inference: a trained model as a predictor from RGB face crops to yaw/pitch/roll in degrees.

:mod:`.predictor` (a checkpoint as one module, its preprocessing), :mod:`.onnx` (any described ONNX
model), :mod:`.profile` (a predictor's latency, parameters and MACs).
"""
