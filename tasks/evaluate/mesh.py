"""The lip-sync measure's lips read by MediaPipe's 468-point face mesh.

dlib's 68-point predictor (the face stage's landmarker) places the inner-lip points from raw grey
differences learned on well-lit faces; on a dim, backlit face (backlit_webcam) it leaves them on the
outer lip edges and reads shut lips half open (docs/lipsync.md, "Poor light"). MediaPipe's face
landmark network (`tasks.models.face_mesh_landmarker`, TFLite, run by ai-edge-litert) fits 468
points, 40 of them on the lips, on a 192 x 192 crop of the face; it reads those lips shut.

The crop follows MediaPipe's own practice for its landmark model: a square 1.5 times the face's
extent (here the box of the 68 dlib points the measure already has per frame), rotated so that the
eyes are level. The opening is on the measure's scale convention: inner-lip gap over the distance
between the eye centres, both from the same mesh fit (mean of the three vertical inner-lip distances,
mesh points 13-14, 82-87, 312-317, as dlib's 62-68, 63-67, 64-66; eye centres as the mean of each
eye's two corners, 33/133 and 362/263). It is not dlib's number: on the 7 sources the two correlate
r 0.57-0.95 and the mesh's median is 0.4-1.5 times dlib's (the mesh puts the inner-lip points on the
teeth edges when both rows of teeth show, dlib on the lips); the measure's thresholds are in each
speaker's own range, and its absolute cap has a value per landmarker
(`tasks.evaluate.lipsync.MAX_CLOSED_GAP`). Measured against dlib and left out of the measure's
default: docs/lipsync.md, "Face mesh".
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

CROP_SIZE = 192            # the network's input side
CROP_SCALE = 1.5           # crop side over the face's extent (MediaPipe's margin for its landmark model)
UPPER_INNER_LIP = (13, 82, 312)
LOWER_INNER_LIP = (14, 87, 317)
RIGHT_EYE_CORNERS = (33, 133)
LEFT_EYE_CORNERS = (362, 263)


@dataclass(frozen=True)
class MeshFit:
    points: np.ndarray     # (468, 3): x, y in frame pixels; z (depth, relative) in frame pixel units
    presence: float        # the network's face presence, 0..1 (sigmoid of its score)

    @property
    def opening(self) -> float:
        return mesh_opening(self.points)


def crop_transform(landmarks: np.ndarray, size: int = CROP_SIZE, scale: float = CROP_SCALE) -> np.ndarray:
    """2 x 3 affine map from frame pixels to the crop: centred on the centre of the 68 points' box,
    rotated so that the eye centres (dlib 37-42 and 43-48) lie on a horizontal line, the box's
    larger side filling 1 / `scale` of the `size`-pixel crop."""
    from tasks.face.geometry import eye_centers

    landmarks = np.asarray(landmarks, dtype=np.float64)
    right_eye, left_eye = eye_centers(landmarks)
    angle = np.arctan2(left_eye[1] - right_eye[1], left_eye[0] - right_eye[0])
    low, high = landmarks.min(axis=0), landmarks.max(axis=0)
    centre = 0.5 * (low + high)
    zoom = size / (scale * max(float((high - low).max()), 1.0))
    cos, sin = np.cos(angle), np.sin(angle)
    linear = zoom * np.array([[cos, sin], [-sin, cos]])  # rotation by -angle: the eye line onto the x axis
    return np.hstack([linear, (np.array([size / 2.0, size / 2.0]) - linear @ centre)[:, None]])


def to_frame(points: np.ndarray, transform: np.ndarray) -> np.ndarray:
    """Crop points (N, 2) or (N, 3) back to frame pixels; z is rescaled by the same zoom."""
    points = np.asarray(points, dtype=np.float64)
    linear, offset = transform[:, :2], transform[:, 2]
    inverse = np.linalg.inv(linear)
    out = points.copy()
    out[:, :2] = (points[:, :2] - offset) @ inverse.T
    if points.shape[1] > 2:
        out[:, 2] = points[:, 2] / np.sqrt(abs(np.linalg.det(linear)))
    return out


def mesh_opening(points: np.ndarray) -> float:
    """Inner-lip gap over the eye-centre distance of one mesh fit (frame or crop coordinates alike)."""
    points = np.asarray(points, dtype=np.float64)[:, :2]
    gap = np.linalg.norm(points[list(UPPER_INNER_LIP)] - points[list(LOWER_INNER_LIP)], axis=1).mean()
    eyes = np.linalg.norm(points[list(RIGHT_EYE_CORNERS)].mean(axis=0) - points[list(LEFT_EYE_CORNERS)].mean(axis=0))
    return float(gap / max(eyes, 1e-6))


class FaceMesh:
    """MediaPipe's face landmark network on one face per call."""

    def __init__(self, model_path=None, threads: int = 1):
        from ai_edge_litert.interpreter import Interpreter

        from tasks.models import face_mesh_landmarker

        self.interpreter = Interpreter(model_path=str(model_path or face_mesh_landmarker()), num_threads=threads)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]["index"]
        outputs = self.interpreter.get_output_details()
        # by size, not by order: 1404 = 468 x (x, y, z) crop pixels; 1: face presence logit
        self.points_output = next(o["index"] for o in outputs if int(np.prod(o["shape"])) == 468 * 3)
        self.score_output = next(o["index"] for o in outputs if int(np.prod(o["shape"])) == 1)

    def fit(self, frame_bgr: np.ndarray, landmarks: np.ndarray) -> MeshFit:
        """The mesh of the face whose 68 dlib points are `landmarks` (frame pixels) in a BGR frame."""
        import cv2

        transform = crop_transform(landmarks)
        crop = cv2.warpAffine(frame_bgr, transform, (CROP_SIZE, CROP_SIZE), flags=cv2.INTER_LINEAR)
        rgb = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
        self.interpreter.set_tensor(self.input, rgb[None])
        self.interpreter.invoke()
        points = self.interpreter.get_tensor(self.points_output).reshape(468, 3).astype(np.float64)
        logit = float(self.interpreter.get_tensor(self.score_output).ravel()[0])
        return MeshFit(to_frame(points, transform), float(1.0 / (1.0 + np.exp(-logit))))


@lru_cache(maxsize=1)
def face_mesh() -> FaceMesh:
    """The process's one FaceMesh (the model loads once)."""
    return FaceMesh()
