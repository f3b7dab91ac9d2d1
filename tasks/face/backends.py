"""Face model backends: detection, 68-point landmarks and an identity embedding.

Each backend is the `_target_` of one `conf/face/*.yaml`. Heavy imports happen on first use.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Protocol

import numpy as np

from tasks.face.geometry import eye_centers
from tasks.stage import StageError


class FaceBackend(Protocol):
    name: str
    embedding_threshold: float  # Euclidean distance under which two embeddings are one person

    def detect(self, image_bgr: np.ndarray) -> np.ndarray:
        """Faces in a (possibly downscaled) frame: (N, 5) x0, y0, x1, y1, score, or (N, 6) with a
        sixth column, the face's frontality (1 frontal .. 0 profile), where the detector knows it."""

    def landmarks(self, gray: np.ndarray, frame_bgr: np.ndarray, box: np.ndarray) -> np.ndarray:
        """68 points (68, 2) of the face in `box`, in full-resolution pixels."""

    def embed(self, frame_rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """A unit-free identity vector for the face with these landmarks."""


def face_recognition_models_dir() -> Path:
    """The folder of weights inside `face-recognition-models` (found without importing it: its
    `__init__` needs pkg_resources, which recent setuptools no longer ship)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.origin:
        raise StageError("face model package 'face-recognition-models' is not installed: run the README's setup command")
    return Path(spec.origin).parent / "models"


class DlibBackend:
    """dlib: the 68-point shape predictor and the ResNet face embedding, with one of three detectors:
    `hog` (frontal faces only, fast), `cnn` (dlib's MMOD: more poses, ~50x slower on CPU) or
    `mtcnn` (the MTCNN cascade from the facenet-pytorch wheel: 3/4 and profile faces too).

    `detect_window` is the smallest face the detector finds, in pixels of the frame it is given
    (80 for dlib's, `mtcnn.min_size` for MTCNN); the tracker scales frames so that the configured
    smallest face has that size. MTCNN boxes frame the face
    differently from dlib's (taller, higher): `mtcnn_box` maps them to the box the shape predictor
    was trained on (measured on the frontal clips: centre lower by 0.075 box heights, width x1.06,
    height x0.80). With `mtcnn`, `detect_threshold` is an offset on the cascade's stage thresholds,
    and `new_track_score` the detection score a face needs to start a track (weaker ones only
    confirm tracks); null lets every detection start one.
    """

    def __init__(self, detector: str = "hog", upsample: int = 0, detect_threshold: float = 0.0,
                 model_dir: str | None = None, embedding_threshold: float = 0.55, chip_padding: float = 0.25,
                 mtcnn: dict | None = None, mtcnn_box: dict | None = None,
                 new_track_score: float | None = None):
        if detector not in ("hog", "cnn", "mtcnn"):
            raise StageError(f"unknown dlib detector {detector!r}: use hog, cnn or mtcnn")
        self.name = f"dlib:{detector}"
        self.detector_kind = detector
        self.mtcnn_options = dict(mtcnn or {})
        # the MTCNN cascade finds faces down to its `min_size`; dlib's detectors scan an 80 px window
        self.detect_window = float(self.mtcnn_options.get("min_size", 24.0)) if detector == "mtcnn" else 80.0
        self.new_track_score = new_track_score if detector == "mtcnn" else None  # a probability: MTCNN's only
        self.mtcnn_box = {"dy": 0.075, "width": 1.06, "height": 0.80, **(mtcnn_box or {})}
        self.upsample = upsample
        self.detect_threshold = detect_threshold
        self.model_dir = Path(model_dir).expanduser() if model_dir else None
        self.embedding_threshold = embedding_threshold
        self.chip_padding = chip_padding
        self._models: dict[str, object] = {}

    def _path(self, name: str) -> str:
        folder = self.model_dir or face_recognition_models_dir()
        path = folder / name
        if not path.exists():
            raise StageError(f"face model file missing: {path}")
        return str(path)

    def _model(self, key: str):
        if key not in self._models:
            try:
                import dlib
            except ImportError:
                raise StageError("dlib is not installed: install the dlib-bin package") from None
            if key == "hog":
                self._models[key] = dlib.get_frontal_face_detector()
            elif key == "cnn":
                self._models[key] = dlib.cnn_face_detection_model_v1(self._path("mmod_human_face_detector.dat"))
            elif key == "shape":
                self._models[key] = dlib.shape_predictor(self._path("shape_predictor_68_face_landmarks.dat"))
            elif key == "rec":
                self._models[key] = dlib.face_recognition_model_v1(self._path("dlib_face_recognition_resnet_model_v1.dat"))
            elif key == "mtcnn":
                from tasks.face.mtcnn import MTCNN

                self._models[key] = MTCNN(**self.mtcnn_options)
            else:
                raise StageError(f"unknown dlib detector {key!r}: use hog or cnn")
        return self._models[key]

    def detect(self, image_bgr: np.ndarray) -> np.ndarray:
        import cv2

        if self.detector_kind == "mtcnn":
            return self._detect_mtcnn(cv2.cvtColor(image_bgr, cv2.COLOR_GRAY2RGB if image_bgr.ndim == 2 else cv2.COLOR_BGR2RGB))
        if self.detector_kind == "cnn":
            rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
            found = self._model("cnn")(rgb, self.upsample)
            rows = [(d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom(), d.confidence) for d in found
                    if d.confidence >= self.detect_threshold]
        else:
            gray = image_bgr if image_bgr.ndim == 2 else cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
            rects, scores, _ = self._model("hog").run(gray, self.upsample, self.detect_threshold)
            rows = [(r.left(), r.top(), r.right(), r.bottom(), s) for r, s in zip(rects, scores)]
        return np.array(rows, dtype=np.float64).reshape(-1, 5)

    def _detect_mtcnn(self, rgb: np.ndarray) -> np.ndarray:
        model = self._model("mtcnn")
        base = model.thresholds
        model.thresholds = tuple(float(np.clip(t + self.detect_threshold, 0.05, 0.995)) for t in base)
        try:
            boxes, points = model.detect(rgb)
        finally:
            model.thresholds = base
        return np.concatenate([mtcnn_to_dlib_box(boxes, **self.mtcnn_box), frontality(points)[:, None]], axis=1)

    def landmarks(self, gray: np.ndarray, frame_bgr: np.ndarray, box: np.ndarray) -> np.ndarray:
        import dlib

        rect = dlib.rectangle(*(int(round(v)) for v in box[:4]))
        shape = self._model("shape")(gray, rect)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)

    def embed(self, frame_rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        import dlib

        x0, y0 = landmarks.min(axis=0)
        x1, y1 = landmarks.max(axis=0)
        rect = dlib.rectangle(int(x0), int(y0), int(x1), int(y1))
        points = dlib.points([dlib.point(int(round(x)), int(round(y))) for x, y in landmarks])
        shape = dlib.full_object_detection(rect, points)
        chip = dlib.get_face_chip(frame_rgb, shape, size=150, padding=self.chip_padding)
        return np.array(self._model("rec").compute_face_descriptor(chip), dtype=np.float32)


def frontality(points: np.ndarray) -> np.ndarray:
    """1 for a face seen from the front, 0 in profile, from five landmarks (N, 5, 2: eyes, nose,
    mouth corners): where the nose tip falls between the eyes, along the line through them."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 5, 2)
    axis = points[:, 1] - points[:, 0]
    along = ((points[:, 2] - points[:, 0]) * axis).sum(axis=1) / np.maximum((axis ** 2).sum(axis=1), 1e-9)
    return np.clip(1.0 - 2.0 * np.abs(along - 0.5), 0.0, 1.0)


def mtcnn_to_dlib_box(boxes: np.ndarray, dy: float, width: float, height: float) -> np.ndarray:
    """MTCNN boxes (N, 5) reframed as dlib's detector frames a face (see DlibBackend)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 5)
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2 + dy * h
    half_w, half_h = width * w / 2, height * h / 2
    return np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h, boxes[:, 4]], axis=1)


class InsightFaceBackend:
    """InsightFace ONNX models from a folder you provide (e.g. the buffalo_l pack): the SCRFD
    detector (`det_*.onnx`), the 68-point 3D landmark model (`1k3d68.onnx`) and an ArcFace
    recogniser (`w600k_*.onnx` or `glintr*.onnx`). The pack does not install from a registry."""

    def __init__(self, model_dir: str, det_size: int = 640, detect_threshold: float = 0.5,
                 embedding_threshold: float = 1.0, providers: tuple[str, ...] = ("CPUExecutionProvider",)):
        folder = Path(str(model_dir)).expanduser()
        if not folder.is_dir():
            raise StageError(f"InsightFace model folder not found: {folder} (set face.backend.model_dir to your model pack)")
        self.folder = folder
        self.name = f"insightface:{folder.name}"
        self.det_size = det_size
        self.detect_threshold = detect_threshold
        self.embedding_threshold = embedding_threshold
        self.providers = list(providers)
        self._det = self._lmk = self._rec = None

    def _find(self, *patterns: str) -> str:
        for pattern in patterns:
            found = sorted(self.folder.glob(pattern))
            if found:
                return str(found[0])
        raise StageError(f"no {' or '.join(patterns)} in the InsightFace folder {self.folder}")

    def _load(self):
        if self._det is None:
            try:
                from insightface.model_zoo import get_model
            except ImportError:
                raise StageError("insightface is not installed: pip install --no-deps insightface") from None
            self._det = get_model(self._find("det_*.onnx", "scrfd*.onnx"), providers=self.providers)
            self._det.prepare(ctx_id=-1, input_size=(self.det_size, self.det_size), det_thresh=self.detect_threshold)
            self._lmk = get_model(self._find("1k3d68.onnx"), providers=self.providers)
            self._lmk.prepare(ctx_id=-1)
            self._rec = get_model(self._find("w600k_*.onnx", "glintr*.onnx", "*arcface*.onnx"), providers=self.providers)
            self._rec.prepare(ctx_id=-1)

    def detect(self, image_bgr: np.ndarray) -> np.ndarray:
        self._load()
        boxes, _ = self._det.detect(image_bgr, max_num=0, metric="default")
        return np.asarray(boxes, dtype=np.float64).reshape(-1, 5)

    def landmarks(self, gray: np.ndarray, frame_bgr: np.ndarray, box: np.ndarray) -> np.ndarray:
        from insightface.app.common import Face

        self._load()
        face = Face(bbox=np.asarray(box[:4], dtype=np.float32))
        self._lmk.get(frame_bgr, face)
        return np.asarray(face["landmark_3d_68"])[:, :2].astype(np.float64)

    def embed(self, frame_rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        from insightface.app.common import Face

        self._load()
        kps = np.array([*eye_centers(landmarks), landmarks[30], landmarks[48], landmarks[54]],
                       dtype=np.float32)
        face = Face(kps=kps)
        vector = np.asarray(self._rec.get(frame_rgb[..., ::-1].copy(), face), dtype=np.float32)
        return vector / max(float(np.linalg.norm(vector)), 1e-9)
