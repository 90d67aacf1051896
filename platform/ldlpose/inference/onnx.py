"""ONNX models: running any head-pose ONNX model by its description (exporting one: :mod:`ldlpose.deploy.onnx`).

An ONNX model travels with a **preprocessing description**, a small JSON file next to it
(``model.onnx`` -> ``model.json``), so that ``ldlpose evaluate`` can feed it what it expects::

    {"format": "ldlpose-onnx-preprocessing/1",
     "input":  {"name": "images", "size": 64, "layout": "NCHW", "colour": "RGB",
                "scale": 255.0, "mean": [0, 0, 0], "std": [1, 1, 1]},
     "output": {"name": "angles_deg", "order": ["yaw", "pitch", "roll"], "units": "degrees",
                "signs": [1, 1, 1]},
     "about": {"method": "gldl", "backbone": "resnet18"},
     "crop": {"name": "hopenet-300w-lp-train", "k": 0.4, ...}}

The input is ``(pixel / scale - mean) / std`` per channel, in the given channel order (``colour``)
and layout (``NCHW`` or ``NHWC``), at ``size`` x ``size``; which part of a face crop is resized to
that size is the benchmark protocol's business. The output's angles are reordered to yaw, pitch,
roll, converted to degrees and multiplied by ``signs`` to reach ldlpose's convention
(:mod:`ldlpose.geometry`). ``name`` may be left out when the model has one input (one output).
``about`` (optional, free-form strings) says what the model is; the leaderboard shows its
``method`` and ``backbone``. ``crop`` (optional) is the crop recipe of the model's training faces as
their manifest records it (:mod:`ldlpose.data.crops`); ``ldlpose predict`` crops detected faces with it.
The same description goes beside a ``.pt2`` export (:mod:`ldlpose.deploy.export`), whose program takes
the same input and gives the same output.

:func:`ldlpose.deploy.onnx.export_onnx` writes an ldlpose predictor (normalisation and decoding inside
the graph) with its description; :class:`OnnxPredictor` runs a described model with onnxruntime.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ldlpose.errors import ConfigError, LdlposeError

__all__ = ["DESCRIPTION_FORMAT", "OnnxPredictor", "Preprocessing", "description_path", "read_description"]

DESCRIPTION_FORMAT = "ldlpose-onnx-preprocessing/1"
ANGLE_NAMES = ("yaw", "pitch", "roll")


@dataclass(frozen=True)
class Preprocessing:
    """A validated description (see the module docstring)."""

    size: int
    layout: str = "NCHW"
    colour: str = "RGB"
    scale: float = 255.0
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    input_name: str | None = None
    output_name: str | None = None
    order: tuple[str, str, str] = ANGLE_NAMES
    units: str = "degrees"
    signs: tuple[float, float, float] = (1.0, 1.0, 1.0)
    about: tuple[tuple[str, str], ...] = ()
    crop: dict | None = field(default=None, compare=False)  # the training crop recipe, JSON-safe

    def as_dict(self) -> dict:
        return {"format": DESCRIPTION_FORMAT, "about": dict(self.about), **({"crop": self.crop} if self.crop else {}),
                "input": {"name": self.input_name, "size": self.size, "layout": self.layout,
                          "colour": self.colour, "scale": self.scale, "mean": list(self.mean), "std": list(self.std)},
                "output": {"name": self.output_name, "order": list(self.order), "units": self.units,
                           "signs": list(self.signs)}}

    def inputs(self, images: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 RGB -> the float32 array the model takes."""
        x = images[..., ::-1] if self.colour == "BGR" else images
        mean, std = np.asarray(self.mean, dtype=np.float32), np.asarray(self.std, dtype=np.float32)
        x = (x.astype(np.float32) / np.float32(self.scale) - mean) / std
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2) if self.layout == "NCHW" else x, dtype=np.float32)

    def angles(self, outputs: np.ndarray) -> np.ndarray:
        """The model's (N, 3) output -> (N, 3) yaw, pitch, roll in degrees, ldlpose convention."""
        out = np.asarray(outputs, dtype=np.float64).reshape(len(outputs), -1)
        if out.shape[1] != 3:
            raise LdlposeError(f"the ONNX model's output has {out.shape[1]} values per image; the description "
                               "expects 3 angles (order given by output.order)")
        ordered = out[:, [self.order.index(name) for name in ANGLE_NAMES]]
        degrees = np.rad2deg(ordered) if self.units == "radians" else ordered
        return degrees * np.asarray(self.signs, dtype=np.float64)


def description_path(onnx_path) -> Path:
    """``model.onnx`` -> ``model.json``."""
    return Path(onnx_path).with_suffix(".json")


def read_description(path) -> Preprocessing:
    """A preprocessing description from JSON; ConfigError naming the file and the key when wrong."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no preprocessing description; an ONNX model needs one next to it "
                          f"(see ldlpose.inference.onnx for the format)")
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"{path}: cannot read: {err}") from None
    unknown_top = sorted(set(data) - {"format", "input", "output", "about", "crop"})
    if unknown_top or not isinstance(data.get("input"), dict):
        raise ConfigError(f"{path}: expected keys 'input' and 'output' (and 'format', 'about', 'crop'), "
                          f"got {sorted(data)}")
    if data.get("format", DESCRIPTION_FORMAT) != DESCRIPTION_FORMAT:
        raise ConfigError(f"{path}: format: this ldlpose reads {DESCRIPTION_FORMAT!r}, got {data['format']!r}")
    about = data.get("about") or {}
    if not isinstance(about, dict):
        raise ConfigError(f"{path}: about: must be a mapping of names to strings, got {about!r}")
    crop = data.get("crop")
    if crop is not None and not (isinstance(crop, dict) and isinstance(crop.get("name"), str)):
        raise ConfigError(f"{path}: crop: must be a mapping with a 'name' (a recipe of ldlpose.data.crops), "
                          f"got {crop!r}")
    pre = _parse(path, data["input"], data.get("output") or {})
    return dataclasses.replace(pre, about=tuple((str(k), str(v)) for k, v in about.items()), crop=crop)


_INPUT_KEYS = {"name", "size", "layout", "colour", "scale", "mean", "std"}
_OUTPUT_KEYS = {"name", "order", "units", "signs"}


def _parse(path: Path, inp: dict, out: dict) -> Preprocessing:
    for section, values, known in (("input", inp, _INPUT_KEYS), ("output", out, _OUTPUT_KEYS)):
        extra = sorted(set(values) - known)
        if extra:
            raise ConfigError(f"{path}: {section}.{extra[0]}: unknown key; known: {sorted(known)}")
    if not isinstance(inp.get("size"), int) or inp["size"] < 8:
        raise ConfigError(f"{path}: input.size: must be an integer >= 8 pixels, got {inp.get('size')!r}")
    checks = (("input.layout", inp.get("layout", "NCHW"), ("NCHW", "NHWC")),
              ("input.colour", inp.get("colour", "RGB"), ("RGB", "BGR")),
              ("output.units", out.get("units", "degrees"), ("degrees", "radians")))
    for key, value, allowed in checks:
        if value not in allowed:
            raise ConfigError(f"{path}: {key}: must be one of {list(allowed)}, got {value!r}")
    order = tuple(out.get("order", ANGLE_NAMES))
    if sorted(order) != sorted(ANGLE_NAMES):
        raise ConfigError(f"{path}: output.order: must name yaw, pitch and roll once each, got {list(order)}")
    triples = {key: tuple(float(v) for v in section.get(key, default))
               for key, section, default in (("mean", inp, (0, 0, 0)), ("std", inp, (1, 1, 1)),
                                             ("signs", out, (1, 1, 1)))}
    for key, value in triples.items():
        if len(value) != 3 or (key == "std" and min(value) <= 0):
            raise ConfigError(f"{path}: {key}: must be 3 numbers{' > 0' if key == 'std' else ''}, got {list(value)}")
    scale = float(inp.get("scale", 255.0))
    if scale <= 0:
        raise ConfigError(f"{path}: input.scale: must be > 0 (255 maps pixels to [0, 1]), got {scale}")
    return Preprocessing(size=inp["size"], layout=inp.get("layout", "NCHW"), colour=inp.get("colour", "RGB"),
                         scale=scale, mean=_three(triples["mean"]), std=_three(triples["std"]),
                         input_name=inp.get("name"), output_name=out.get("name"), order=order,
                         units=out.get("units", "degrees"), signs=_three(triples["signs"]))


def _three(values: tuple[float, ...]) -> tuple[float, float, float]:
    """A tuple already checked to hold three numbers, typed as such."""
    first, second, third = values
    return first, second, third


class OnnxPredictor:
    """An ONNX head-pose model run with onnxruntime on the CPU; a :class:`ldlpose.inference.Predictor`."""

    def __init__(self, onnx_path, description: Preprocessing | None = None, batch_size: int = 64):
        import onnxruntime

        self.path = Path(onnx_path)
        self.pre = description or read_description(description_path(self.path))
        self.input_size = self.pre.size
        self.batch_size = batch_size
        try:
            self.session = onnxruntime.InferenceSession(str(self.path), providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own Fail/InvalidGraph/... types
            raise LdlposeError(f"cannot load ONNX model {self.path}: {type(err).__name__}: {err}") from None
        self.input_name = self.pre.input_name or self._only("input", self.session.get_inputs())
        self.output_name = self.pre.output_name or self._only("output", self.session.get_outputs())
        # Published models often have a fixed batch (input 1x3x64x64): feed them batches of that size.
        self.fixed_batch = self._fixed_batch()
        if self.fixed_batch:
            self.batch_size = self.fixed_batch

    def _only(self, kind: str, items) -> str:
        if len(items) != 1:
            raise ConfigError(f"{self.path} has {len(items)} {kind}s ({[i.name for i in items]}); name the one "
                              f"to use as {kind}.name in {description_path(self.path)}")
        return items[0].name

    def _fixed_batch(self) -> int | None:
        """The model's batch size where its input fixes one (None: any batch); an input whose fixed
        shape contradicts the description is a ConfigError naming both."""
        inputs = {i.name: i for i in self.session.get_inputs()}
        if self.input_name not in inputs:
            raise ConfigError(f"{description_path(self.path)}: input.name: {self.path} has no input "
                              f"{self.input_name!r}; its inputs: {sorted(inputs)}")
        shape = list(inputs[self.input_name].shape)
        expected = [None, 3, self.pre.size, self.pre.size] if self.pre.layout == "NCHW" else \
            [None, self.pre.size, self.pre.size, 3]
        fixed = [d if isinstance(d, int) else None for d in shape]
        if len(shape) != 4 or any(f is not None and f != e for f, e in zip(fixed[1:], expected[1:])):
            raise ConfigError(f"{self.path}: its input {self.input_name!r} has shape {shape}; the description "
                              f"{description_path(self.path)} gives {self.pre.layout} at {self.pre.size} px "
                              f"({['N', *expected[1:]]}); fix input.size or input.layout")
        return fixed[0] if fixed[0] and fixed[0] > 0 else None

    @property
    def info(self) -> dict:
        """What the description says the model is, its input size and the whole description."""
        return {**dict(self.pre.about), "image_size": self.input_size, "preprocessing": self.pre.as_dict()}

    def predict(self, images: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 RGB at the model's input size -> (N, 3) yaw, pitch, roll degrees."""
        outputs = []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start:start + self.batch_size]
            padding = (self.fixed_batch or len(chunk)) - len(chunk)
            if padding:  # a fixed-batch model's last batch: repeat its last image, drop the extra answers
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], padding, axis=0)])
            feed = {self.input_name: self.pre.inputs(chunk)}
            angles = self.pre.angles(self.session.run([self.output_name], feed)[0])
            outputs.append(angles[:len(chunk) - padding])
        return np.concatenate(outputs) if outputs else np.zeros((0, 3))
