"""The lip-sync measure's landmarker made to read lips in poor light.

`JitteredLandmarks` (tried and left off, conf/evaluate `lipsync_jitter: null`): dlib's cascade
starts from the mean shape placed in the face box, and on a dim face where it ends depends on where
it started: one shut frame of backlit_webcam reads 0.01-0.15 (inter-ocular units) over boxes moved
by up to 5% of their width, an open one 0.13-0.18. The median of the fits from a small grid of boxes
around the detector's one reads that shut frame 0.02-0.03; inside the measure's face analysis it
moved other phones as much as it steadied these (docs/lipsync.md, "box-jittered reading").

dlib's 68-point shape predictor (the face stage's landmarker) places points by comparing raw
grey-level differences of pixel pairs against thresholds learned on well-exposed faces. On a dim,
low-contrast face those differences shrink and the fit falls back towards the mean shape: on
backlit_webcam (mouth region mean 62 / 255, standard deviation 15, against 95-128 / 26-46 on the
frontal clips) the inner-lip points of shut lips stay on the lips' outer edges and read them half
open. `EqualisedLandmarks` gives the landmarker the face contrast-equalised instead (CLAHE on the
grey image over the face box and a margin round it, tiles in proportion to the face, so the same
equalisation applies at every face size), while the detector, the tracker and the identity
embeddings see the frame as it is. It applies identically to every video, source or dub.

Measured and left out of the measure (conf/evaluate `lipsync_equalisation: null`): on backlit_webcam
it reads the dub's shut /b/ at 0.85 s shut but the source's shut lips at 2.6 s open, and dlib's fit
of that face moves by more than the closed threshold when the box moves by 4% (docs/lipsync.md,
"Poor light").
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Equalisation:
    clip_limit: float = 2.0   # CLAHE contrast limit (OpenCV's): how far a tile's histogram may be stretched
    tiles: int = 4            # tiles per side of the equalised region (the face box plus its margin)
    margin: float = 0.25      # share of the box's width / height added each side (chin, lip corners, cheeks)


def equalise_face(gray: np.ndarray, box: np.ndarray, equalisation: Equalisation) -> np.ndarray:
    """A copy of the grey frame with the face box (x0 y0 x1 y1, widened by the margin, clipped to
    the frame) CLAHE-equalised; the frame itself where that region is under 8 pixels a side."""
    import cv2

    height, width = gray.shape[:2]
    x0, y0, x1, y1 = (float(v) for v in box[:4])
    dx, dy = equalisation.margin * (x1 - x0), equalisation.margin * (y1 - y0)
    left, top = int(max(0, np.floor(x0 - dx))), int(max(0, np.floor(y0 - dy)))
    right, bottom = int(min(width, np.ceil(x1 + dx))), int(min(height, np.ceil(y1 + dy)))
    if right - left < 8 or bottom - top < 8:
        return gray
    clahe = cv2.createCLAHE(clipLimit=equalisation.clip_limit, tileGridSize=(equalisation.tiles, equalisation.tiles))
    out = gray.copy()
    out[top:bottom, left:right] = clahe.apply(np.ascontiguousarray(gray[top:bottom, left:right]))
    return out


class WrappedLandmarks:
    """A face backend whose `landmarks` are another's, read differently; everything else (detect,
    embed, and attributes the tracker reads or sets, such as `detect_threshold`) is the wrapped
    backend's own."""

    def __init__(self, backend):
        object.__setattr__(self, "backend", backend)

    def __getattr__(self, name):
        return getattr(self.backend, name)

    def __setattr__(self, name, value):
        setattr(self.backend, name, value)


class EqualisedLandmarks(WrappedLandmarks):
    """Landmarks fitted on the equalised face (`equalise_face`); the detector, the tracker and the
    identity embeddings see the frame as it is."""

    def __init__(self, backend, equalisation: Equalisation):
        super().__init__(backend)
        object.__setattr__(self, "equalisation", equalisation)

    def landmarks(self, gray: np.ndarray, frame_bgr: np.ndarray, box: np.ndarray) -> np.ndarray:
        return self.backend.landmarks(equalise_face(gray, box, self.equalisation), frame_bgr, box)


@dataclass(frozen=True)
class Jitter:
    shift: float = 0.05   # largest move of the box each way, as a share of its width (x) and height (y)
    steps: int = 3        # boxes per axis, evenly from -shift to +shift (3 x 3 = 9 fits)


def jittered_boxes(box: np.ndarray, jitter: Jitter) -> np.ndarray:
    """(steps^2, 4) copies of the box (x0 y0 x1 y1) moved on a grid of up to `shift` of its size."""
    x0, y0, x1, y1 = (float(v) for v in box[:4])
    offsets = np.linspace(-jitter.shift, jitter.shift, jitter.steps) if jitter.steps > 1 else np.zeros(1)
    return np.array([[x0 + dx * (x1 - x0), y0 + dy * (y1 - y0), x1 + dx * (x1 - x0), y1 + dy * (y1 - y0)]
                     for dy in offsets for dx in offsets])


class JitteredLandmarks(WrappedLandmarks):
    """Each point the median of the wrapped landmarker's fits from the `jittered_boxes`."""

    def __init__(self, backend, jitter: Jitter):
        super().__init__(backend)
        object.__setattr__(self, "jitter", jitter)

    def landmarks(self, gray: np.ndarray, frame_bgr: np.ndarray, box: np.ndarray) -> np.ndarray:
        fits = [np.asarray(self.backend.landmarks(gray, frame_bgr, moved), np.float64)
                for moved in jittered_boxes(np.asarray(box, np.float64), self.jitter)]
        return np.median(np.stack(fits), axis=0)
