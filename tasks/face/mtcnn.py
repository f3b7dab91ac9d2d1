"""MTCNN face detection (Zhang et al., 2016): a three-stage cascade that also finds turned faces.

The weights are the ones the `facenet-pytorch` wheel ships (pnet.pt, rnet.pt, onet.pt in
facenet_pytorch/data); only the weight files are read: the package's own code needs torchvision,
which this project does not install. The networks and the cascade below follow the paper.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from tasks.stage import StageError


def weights_dir() -> Path:
    spec = importlib.util.find_spec("facenet_pytorch")  # locates the package without importing it
    if spec is None or not spec.origin:
        raise StageError("MTCNN weights come from the 'facenet-pytorch' package: pip install --no-deps facenet-pytorch==2.6.0")
    return Path(spec.origin).parent / "data"


def max_pool_ceil(x, size: int, stride: int):
    """Max pooling with Caffe's rounding (the last window may hang over the edge), as a maximum of
    strided slices: on CPU several times faster than torch's pooling for these small maps."""
    import math

    import torch

    h, w = x.shape[2:]
    out_h, out_w = math.ceil((h - size) / stride) + 1, math.ceil((w - size) / stride) + 1
    pad_h, pad_w = (out_h - 1) * stride + size - h, (out_w - 1) * stride + size - w
    if pad_h > 0 or pad_w > 0:
        x = torch.nn.functional.pad(x, (0, max(pad_w, 0), 0, max(pad_h, 0)), value=float("-inf"))
    out = None
    for i in range(size):
        for j in range(size):
            part = x[:, :, i:i + (out_h - 1) * stride + 1:stride, j:j + (out_w - 1) * stride + 1:stride]
            out = part if out is None else torch.maximum(out, part)
    return out


def _networks():
    import torch
    from torch import nn

    def conv(cin, cout, k, name, layers):
        layers[f"conv{name}"] = nn.Conv2d(cin, cout, k)
        layers[f"prelu{name}"] = nn.PReLU(cout)

    class _Net(nn.Module):
        def run(self, x, pools):
            for i, pool in enumerate(pools, 1):
                x = getattr(self, f"prelu{i}")(getattr(self, f"conv{i}")(x))
                if pool:
                    x = max_pool_ceil(x, pool[0], pool[1])
            return x

    class PNet(_Net):
        def __init__(self):
            super().__init__()
            layers: dict = {}
            conv(3, 10, 3, 1, layers), conv(10, 16, 3, 2, layers), conv(16, 32, 3, 3, layers)
            for k, v in layers.items():
                setattr(self, k, v)
            self.conv4_1, self.conv4_2 = nn.Conv2d(32, 2, 1), nn.Conv2d(32, 4, 1)

        def forward(self, x):
            x = self.run(x, [(2, 2), None, None])
            return torch.softmax(self.conv4_1(x), 1)[:, 1], self.conv4_2(x)

    class RNet(_Net):
        def __init__(self):
            super().__init__()
            layers: dict = {}
            conv(3, 28, 3, 1, layers), conv(28, 48, 3, 2, layers), conv(48, 64, 2, 3, layers)
            for k, v in layers.items():
                setattr(self, k, v)
            self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
            self.dense5_1, self.dense5_2 = nn.Linear(128, 2), nn.Linear(128, 4)

        def forward(self, x):
            # the dense weights were trained on (W, H, C)-ordered features (Caffe's layout)
            x = self.run(x, [(3, 2), (3, 2), None]).permute(0, 3, 2, 1).flatten(1)
            x = self.prelu4(self.dense4(x))
            return torch.softmax(self.dense5_1(x), 1)[:, 1], self.dense5_2(x)

    class ONet(_Net):
        def __init__(self):
            super().__init__()
            layers: dict = {}
            conv(3, 32, 3, 1, layers), conv(32, 64, 3, 2, layers), conv(64, 64, 3, 3, layers), conv(64, 128, 2, 4, layers)
            for k, v in layers.items():
                setattr(self, k, v)
            self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
            self.dense6_1, self.dense6_2, self.dense6_3 = nn.Linear(256, 2), nn.Linear(256, 4), nn.Linear(256, 10)

        def forward(self, x):
            x = self.run(x, [(3, 2), (3, 2), (2, 2), None]).permute(0, 3, 2, 1).flatten(1)
            x = self.prelu5(self.dense5(x))
            return torch.softmax(self.dense6_1(x), 1)[:, 1], self.dense6_2(x), self.dense6_3(x)

    return PNet, RNet, ONet


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, by_min: bool = False) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression (overlap over union, or over the smaller box)."""
    order = np.argsort(-scores)
    area = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)
    keep = []
    while len(order):
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.clip(np.minimum(boxes[i, 2], boxes[rest, 2]) - np.maximum(boxes[i, 0], boxes[rest, 0]) + 1, 0, None)
        h = np.clip(np.minimum(boxes[i, 3], boxes[rest, 3]) - np.maximum(boxes[i, 1], boxes[rest, 1]) + 1, 0, None)
        inter = w * h
        denominator = np.minimum(area[i], area[rest]) if by_min else area[i] + area[rest] - inter
        order = rest[inter / np.maximum(denominator, 1e-9) <= threshold]
    return np.array(keep, dtype=np.int64)


def _regress(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    size = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]] * 2, axis=1)
    return boxes[:, :4] + offsets * size


def _square(boxes: np.ndarray) -> np.ndarray:
    side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    return np.stack([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], axis=1)


class MTCNN:
    """`detect(rgb)` -> boxes (N, 5: x0, y0, x1, y1, score) and five landmarks (N, 5, 2) per face:
    eye centres (image left first), nose tip, mouth corners."""

    def __init__(self, min_size: float = 20.0, thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
                 factor: float = 0.709, threads: int = 0):
        import torch

        self.min_size, self.thresholds, self.factor = float(min_size), tuple(thresholds), float(factor)
        if threads:
            torch.set_num_threads(int(threads))
        folder = weights_dir()
        self.nets = []
        for cls, name in zip(_networks(), ("pnet", "rnet", "onet")):
            path = folder / f"{name}.pt"
            if not path.exists():
                raise StageError(f"MTCNN weight file missing: {path}")
            net = cls()
            net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            self.nets.append(net.eval())

    @staticmethod
    def _tensor(images: np.ndarray):
        import torch

        return torch.from_numpy(((images.astype(np.float32) - 127.5) / 128.0).transpose(0, 3, 1, 2).copy())

    def _patches(self, rgb: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
        import cv2

        h, w = rgb.shape[:2]
        out = np.zeros((len(boxes), size, size, 3), np.uint8)
        for k, (x0, y0, x1, y1) in enumerate(np.round(boxes[:, :4]).astype(int)):
            bw, bh = x1 - x0 + 1, y1 - y0 + 1
            if bw < 2 or bh < 2:
                continue
            patch = np.zeros((bh, bw, 3), np.uint8)  # out-of-frame parts stay black, as in training
            sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1 + 1, w), min(y1 + 1, h)
            if sx1 <= sx0 or sy1 <= sy0:
                continue
            patch[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = rgb[sy0:sy1, sx0:sx1]
            out[k] = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA if bw > size else cv2.INTER_LINEAR)
        return out

    def detect(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import cv2
        import torch

        h, w = rgb.shape[:2]
        empty = (np.zeros((0, 5)), np.zeros((0, 5, 2)))
        pnet, rnet, onet = self.nets
        candidates = []
        scale = 12.0 / self.min_size
        with torch.inference_mode():
            # stage 1: the 12x12 proposal net slides over an image pyramid
            while min(h, w) * scale >= 12:
                size = (int(w * scale + 1), int(h * scale + 1))
                level = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
                prob, offsets = pnet(self._tensor(level[None]))
                prob, offsets = prob[0].numpy(), offsets[0].numpy()
                rows, cols = np.nonzero(prob >= self.thresholds[0])
                if len(rows):
                    boxes = np.stack([np.floor((2 * cols + 1) / scale), np.floor((2 * rows + 1) / scale),
                                      np.floor((2 * cols + 12) / scale), np.floor((2 * rows + 12) / scale),
                                      prob[rows, cols]], axis=1)
                    reg = offsets[:, rows, cols].T
                    keep = nms(boxes, boxes[:, 4], 0.5)
                    candidates.append(np.concatenate([boxes[keep], reg[keep]], axis=1))
                scale *= self.factor
            if not candidates:
                return empty
            boxes = np.concatenate(candidates)
            boxes = boxes[nms(boxes, boxes[:, 4], 0.7)]
            boxes = _square(_regress(boxes[:, :4], boxes[:, 5:9]))
            self.counts = [len(boxes)]
            # stage 2: refine at 24x24
            prob, reg = rnet(self._tensor(self._patches(rgb, boxes, 24)))
            prob, reg = prob.numpy(), reg.numpy()
            ok = prob >= self.thresholds[1]
            boxes, prob, reg = boxes[ok], prob[ok], reg[ok]
            if not len(boxes):
                return empty
            keep = nms(boxes, prob, 0.7)
            boxes = _square(_regress(boxes[keep], reg[keep]))
            self.counts.append(len(boxes))
            # stage 3: output net at 48x48, with five landmarks
            prob, reg, points = (t.numpy() for t in onet(self._tensor(self._patches(rgb, boxes, 48))))
        ok = prob >= self.thresholds[2]
        boxes, prob, reg, points = boxes[ok], prob[ok], reg[ok], points[ok]
        if not len(boxes):
            return empty
        bw, bh = boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1
        landmarks = np.stack([boxes[:, :1] + points[:, :5] * bw[:, None] - 1,
                              boxes[:, 1:2] + points[:, 5:] * bh[:, None] - 1], axis=2)
        boxes = _regress(boxes, reg)
        keep = nms(boxes, prob, 0.7, by_min=True)
        return np.concatenate([boxes[keep], prob[keep, None]], axis=1), landmarks[keep]
