"""Face detection in whole photos: MTCNN (Zhang et al., "Joint Face Detection and Alignment Using
Multitask Cascaded Convolutional Networks", IEEE SPL 2016), run in PyTorch on the CPU.

Why MTCNN. On the 16 real AFLW2000 pictures in ``../shared/realdata`` (yaw from -55 to +71
degrees), MTCNN found every face, its box overlapping the ``pt3d_68`` landmark box with IoU 0.60 to
0.76; OpenCV's frontal Haar cascade missed 3 and reached IoU 0.36 to 0.67 on the others (boxes
tighter than the landmarks), its profile cascade missed 6, dlib's HOG detector missed 4.

Weights. The ``mtcnn`` package on PyPI (MIT licence, a dependency of ldlpose, pinned in
``constraints.txt``) ships the three trained networks as joblib + lz4 lists of Keras arrays in
``mtcnn/assets/weights/``; nothing is downloaded at run time. That package's own code needs
TensorFlow, so ldlpose never imports it: :func:`weights_folder` finds the folder with importlib and
the networks are rebuilt here in torch, layer by layer as that package defines them (Keras layout:
NHWC, "same" pooling padded at the end, R-Net and O-Net flattening width before height).

The cascade is the paper's: P-Net proposes windows over an image pyramid (scale 0.709 per level,
smallest face ``min_face_px``), R-Net (24 px) and O-Net (48 px) re-score and re-fit them, with the
paper's thresholds 0.6 / 0.7 / 0.7 and non-maximum suppression after each stage. Boxes are
``(x0, y0, x1, y1)`` in picture pixels, end exclusive, clipped to the picture.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from ldlpose.errors import LdlposeError

__all__ = ["Face", "FaceDetector", "weights_folder"]

WEIGHTS_PACKAGE = "mtcnn"
THRESHOLDS = (0.6, 0.7, 0.7)  # P-Net, R-Net, O-Net face probability, as in the paper's release
PYRAMID_FACTOR = 0.709  # each pyramid level's scale relative to the previous one (sqrt(0.5))


@dataclass(frozen=True)
class Face:
    """A detected face: ``box`` (x0, y0, x1, y1) pixels, ``score`` the O-Net face probability,
    ``landmarks`` (5, 2) x, y of the left eye, right eye, nose, left and right mouth corner."""

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray


def weights_folder() -> Path:
    """``mtcnn/assets/weights`` of the installed ``mtcnn`` package, found without importing it."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise LdlposeError("face detection needs the MTCNN weights of the 'mtcnn' package, which is not "
                           "installed; reinstall ldlpose (pip install -c constraints.txt -e .) or pass "
                           "--no-detect for images that are face crops already")
    folder = Path(next(iter(spec.submodule_search_locations))) / "assets" / "weights"
    missing = [f"{name}.lz4" for name in ("pnet", "rnet", "onet") if not (folder / f"{name}.lz4").is_file()]
    if missing:
        raise LdlposeError(f"{folder} lacks {missing}: the installed 'mtcnn' package is not the pinned one "
                           "(constraints.txt); reinstall it")
    return folder


class _SamePool(nn.Module):
    """Keras ``MaxPooling2D(padding="same")``: -inf padding at the end (and the start, when odd)."""

    def __init__(self, kernel: int, stride: int):
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size in (x.shape[-1], x.shape[-2]):  # F.pad takes the last dimension first
            total = max((math.ceil(size / self.stride) - 1) * self.stride + self.kernel - size, 0)
            pads += [total // 2, total - total // 2]
        return nn.functional.max_pool2d(nn.functional.pad(x, pads, value=-math.inf), self.kernel, self.stride)


def _block(cin: int, cout: int, kernel: int, pool: nn.Module | None = None) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, kernel), nn.PReLU(cout)] + ([pool] if pool is not None else [])


class _Net(nn.Module):
    """One MTCNN stage: conv body, then (R-Net, O-Net) a dense layer, then one head per output.
    Parameters are created in the order of the Keras layers, so the packaged arrays load in order."""

    def __init__(self, body: list[nn.Module], heads: tuple[int, ...], flat: int | None = None,
                 hidden: int | None = None):
        super().__init__()
        self.body = nn.Sequential(*body)
        self.fc: nn.Sequential | None = None
        if flat is not None:
            assert hidden is not None, "a stage with a dense layer gives its width"
            self.fc = nn.Sequential(nn.Linear(flat, hidden), nn.PReLU(hidden))
        width = hidden or [m for m in body if isinstance(m, nn.PReLU)][-1].num_parameters
        self.heads = nn.ModuleList(nn.Conv2d(width, n, 1) if flat is None else nn.Linear(width, n) for n in heads)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.body(x)
        if self.fc is not None:  # Keras flattens (N, W, H, C): its Permute((2, 1, 3)) of NHWC
            x = self.fc(x.permute(0, 3, 2, 1).flatten(1))
        return [head(x) for head in self.heads]


def _corners(box: np.ndarray) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = (float(v) for v in box)
    return x0, y0, x1, y1


def _load(net: _Net, file: Path) -> _Net:
    """``net`` with the arrays of a packaged ``.lz4`` file (Keras ``get_weights()`` order), in eval mode."""
    import joblib

    arrays = joblib.load(file)
    params = list(net.parameters())
    assert len(arrays) == len(params), (file, len(arrays), len(params))
    with torch.no_grad():
        for param, array in zip(params, arrays):
            value = torch.from_numpy(np.asarray(array, dtype=np.float32))
            if value.ndim == 4:  # conv kernel (kh, kw, in, out) -> (out, in, kh, kw)
                value = value.permute(3, 2, 0, 1)
            elif value.ndim == 2:  # dense (in, out) -> (out, in)
                value = value.T
            param.copy_(value.reshape(param.shape))
    return net.eval()


def _networks() -> tuple[_Net, _Net, _Net]:
    """P-Net, R-Net and O-Net with the packaged weights."""
    folder = weights_folder()
    pnet = _Net(_block(3, 10, 3, _SamePool(2, 2)) + _block(10, 16, 3) + _block(16, 32, 3), (4, 2))
    rnet = _Net(_block(3, 28, 3, _SamePool(3, 2)) + _block(28, 48, 3, nn.MaxPool2d(3, 2)) + _block(48, 64, 2),
                (4, 2), flat=576, hidden=128)
    onet = _Net(_block(3, 32, 3, _SamePool(3, 2)) + _block(32, 64, 3, nn.MaxPool2d(3, 2))
                + _block(64, 64, 3, _SamePool(2, 2)) + _block(64, 128, 2), (4, 10, 2), flat=1152, hidden=256)
    return _load(pnet, folder / "pnet.lz4"), _load(rnet, folder / "rnet.lz4"), _load(onet, folder / "onet.lz4")


def _nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, mode: str = "union") -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, best score first; ``mode`` "min" divides
    the overlap by the smaller box (the paper's last stage), "union" by the union."""
    order = np.argsort(-scores, kind="stable")
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.clip(np.minimum(boxes[i, 2], boxes[rest, 2]) - np.maximum(boxes[i, 0], boxes[rest, 0]), 0, None)
        h = np.clip(np.minimum(boxes[i, 3], boxes[rest, 3]) - np.maximum(boxes[i, 1], boxes[rest, 1]), 0, None)
        inter = w * h
        denom = np.minimum(area[i], area[rest]) if mode == "min" else area[i] + area[rest] - inter
        order = rest[inter / np.maximum(denom, 1e-9) <= threshold]
    return np.asarray(keep, dtype=np.int64)


def _calibrate(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Shift each edge by its regressed offset, in units of the box's width or height."""
    size = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]] * 2, axis=1)
    return boxes + offsets * size


def _square(boxes: np.ndarray) -> np.ndarray:
    """The square of side max(w, h) around each box's centre."""
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])[:, None] / 2
    return np.concatenate([centre - half, centre + half], axis=1)


def _normalise(pixels: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float32 as MTCNN was trained: (x - 127.5) / 128."""
    return torch.from_numpy((pixels.astype(np.float32) - 127.5) / 128.0).permute(0, 3, 1, 2).contiguous()


class FaceDetector:
    """``detect(image)``: the faces of an (H, W, 3) uint8 RGB picture, best score first.

    ``min_face_px``: the smallest face side searched for, in pixels (the paper's 20); smaller
    values add pyramid levels and time. Thresholds are the paper's; they are not tuned here.
    """

    def __init__(self, min_face_px: int = 20, thresholds: tuple[float, float, float] = THRESHOLDS):
        if min_face_px < 12:
            raise LdlposeError(f"min_face_px must be >= 12 (P-Net's window), got {min_face_px}")
        self.min_face_px = int(min_face_px)
        self.thresholds = thresholds
        self.pnet, self.rnet, self.onet = _networks()

    def detect(self, image: np.ndarray) -> list[Face]:
        if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
            raise LdlposeError(f"detect needs an (H, W, 3) uint8 RGB picture, got {image.shape} {image.dtype}")
        picture = Image.fromarray(image)
        with torch.no_grad():
            boxes = self._propose(picture)
            if len(boxes):
                boxes = self._refine(picture, boxes)
            faces = self._output(picture, boxes) if len(boxes) else []
        return faces

    def _scales(self, width: int, height: int) -> list[float]:
        scale, scales = 12.0 / self.min_face_px, []
        while min(width, height) * scale >= 12:
            scales.append(scale)
            scale *= PYRAMID_FACTOR
        return scales

    def _propose(self, picture) -> np.ndarray:
        """P-Net over the pyramid: calibrated square candidate boxes (M, 4)."""
        found = []
        for scale in self._scales(*picture.size):
            size = (math.ceil(picture.width * scale), math.ceil(picture.height * scale))
            level = np.asarray(picture.resize(size, Image.Resampling.BOX))[None]  # area averaging, as cv2.INTER_AREA
            offsets, logits = self.pnet(_normalise(level))
            prob = logits.softmax(1)[0, 1].numpy()
            ys, xs = np.nonzero(prob > self.thresholds[0])
            if not len(ys):
                continue
            # Each output cell sees a 12 x 12 window of the level, every 2 pixels.
            windows = np.stack([xs * 2, ys * 2, xs * 2 + 12, ys * 2 + 12], axis=1) / scale
            scores = prob[ys, xs]
            boxes = _calibrate(windows, offsets[0, :, ys, xs].numpy().T)
            keep = _nms(windows, scores, 0.5)
            found.append(np.concatenate([boxes[keep], scores[keep, None]], axis=1))
        if not found:
            return np.zeros((0, 4))
        candidates = np.concatenate(found)
        keep = _nms(candidates[:, :4], candidates[:, 4], 0.7)
        return _square(candidates[keep, :4])

    def _patches(self, picture, boxes: np.ndarray, size: int) -> torch.Tensor:
        patches = np.empty((len(boxes), size, size, 3), dtype=np.uint8)
        for i, box in enumerate(np.rint(boxes).astype(int)):
            x0, y0, x1, y1 = box[0], box[1], max(box[2], box[0] + 1), max(box[3], box[1] + 1)
            # Image.crop fills the part outside the picture with black, as the reference pads with zeros.
            patches[i] = np.asarray(picture.crop((x0, y0, x1, y1)).resize((size, size), Image.Resampling.BILINEAR))
        return _normalise(patches)

    def _refine(self, picture, boxes: np.ndarray) -> np.ndarray:
        """R-Net: re-scored, suppressed, calibrated square boxes."""
        offsets, logits = self.rnet(self._patches(picture, boxes, 24))
        scores = logits.softmax(1)[:, 1].numpy()
        keep = scores > self.thresholds[1]
        boxes, scores, offsets = boxes[keep], scores[keep], offsets.numpy()[keep]
        keep = _nms(boxes, scores, 0.7)
        return _square(_calibrate(boxes[keep], offsets[keep]))

    def _output(self, picture, boxes: np.ndarray) -> list[Face]:
        """O-Net: final boxes, scores and five landmarks, overlapping boxes merged ("min" overlap)."""
        offsets, points, logits = self.onet(self._patches(picture, boxes, 48))
        scores = logits.softmax(1)[:, 1].numpy()
        keep = scores > self.thresholds[2]
        boxes, scores, offsets, points = boxes[keep], scores[keep], offsets.numpy()[keep], points.numpy()[keep]
        size = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], axis=1)
        # O-Net gives x of the five points, then their y, as fractions of the box it saw.
        landmarks = boxes[:, None, :2] + np.stack([points[:, :5], points[:, 5:]], axis=2) * size[:, None, :]
        boxes = _calibrate(boxes, offsets)
        keep = _nms(boxes, scores, 0.7, mode="min")
        limit = np.array([picture.width, picture.height] * 2, dtype=np.float64)
        return [Face(_corners(np.clip(boxes[i], 0, limit)), float(scores[i]), landmarks[i]) for i in keep]
