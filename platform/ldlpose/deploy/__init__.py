"""Deployment: exported model files (:mod:`.export`, :mod:`.onnx`) and head pose in whole photos
(:mod:`.detect` finds the faces, :mod:`.photos` crops and predicts them)."""
