"""Per-speaker range of motion, from 68-point landmarks of the source video.

Measures (all divided by the inter-ocular distance, eye centre to eye centre, so they do not depend
on the face's size in the frame):
  gap   - inner-lip gap: mean of |62-66|, |61-67|, |63-65|
  width - mouth width: |48-54|
  jaw   - nose tip to chin: |33-8|
  round - no 2D measure of protrusion: kept 0..1 (a proxy, mouth height / width, is reported)
Ranges are the 5th..95th percentiles over the measured frames. Sources, in order: the face stage's
`faces.npz` (when present), dlib landmarks measured here on sampled frames, neutral ranges.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from tasks.visemes.schema import Calibration

log = logging.getLogger("dub")
NEUTRAL = {"jaw": [1.05, 1.35], "width": [0.72, 0.92], "round": [0.0, 1.0], "gap": [0.0, 0.3]}
MIN_SPAN = {"jaw": 0.05, "width": 0.04, "round": 0.1, "gap": 0.04}


def inter_ocular(landmarks: np.ndarray) -> np.ndarray:
    """Eye-centre distance for landmarks shaped (..., 68, 2)."""
    left, right = landmarks[..., 36:42, :].mean(axis=-2), landmarks[..., 42:48, :].mean(axis=-2)
    return np.linalg.norm(right - left, axis=-1)


def mouth_measures(landmarks: np.ndarray) -> dict[str, np.ndarray]:
    """Per-frame gap, width, jaw (and the height/width proxy) in inter-ocular units."""
    lm = np.asarray(landmarks, dtype=float)
    iod = np.maximum(inter_ocular(lm), 1e-6)

    def dist(a: int, b: int) -> np.ndarray:
        return np.linalg.norm(lm[..., a, :] - lm[..., b, :], axis=-1)

    gap = (dist(62, 66) + dist(61, 67) + dist(63, 65)) / 3.0 / iod
    width = dist(48, 54) / iod
    jaw = dist(33, 8) / iod
    return {"gap": gap, "width": width, "jaw": jaw, "height_width": (dist(51, 57) / iod) / np.maximum(width, 1e-6)}


def ranges_from_landmarks(landmarks: np.ndarray, low: float = 5, high: float = 95) -> dict[str, list[float]]:
    measures = mouth_measures(landmarks)
    out = dict(NEUTRAL)
    for name in ("gap", "width", "jaw"):
        values = measures[name][np.isfinite(measures[name])]
        if values.size < 5:
            continue
        lo, hi = float(np.percentile(values, low)), float(np.percentile(values, high))
        if name == "gap":
            lo = max(0.0, lo)
        if hi - lo < MIN_SPAN[name]:
            hi = lo + MIN_SPAN[name]
        out[name] = [round(lo, 4), round(hi, 4)]
    return out


def usable_rows(npz, count: int, track: int | None, longest: bool, min_visibility: float, max_yaw: float) -> np.ndarray:
    """The rows of faces.npz's `count` per-face arrays to measure: of face `track` (with `longest` and
    no `track`, of the track on screen longest), mouth visible (`visibility` >= min_visibility) and
    not turned away (|`pose` yaw| <= max_yaw); each test only where its array exists with a row per
    face."""
    def column(name: str):
        return npz[name] if name in npz.files and npz[name].shape[0] == count else None

    rows = np.ones(count, dtype=bool)
    tracks = column("track")
    if tracks is not None:
        if track is None and longest and np.any(tracks >= 0):
            ids, counts = np.unique(tracks[tracks >= 0], return_counts=True)
            track = int(ids[np.argmax(counts)])
        if track is not None:
            rows &= tracks == track
    visibility, pose = column("visibility"), column("pose")
    if visibility is not None:
        rows &= visibility >= min_visibility
    if pose is not None:
        rows &= np.abs(pose.reshape(count, -1)[:, 0]) <= max_yaw
    return rows


def landmarks_from_npz(path: Path, track: int | None = None, min_visibility: float = 0.5, max_yaw: float = 30.0,
                       longest: bool = False) -> np.ndarray | None:
    """68-point landmark sets in the face stage's faces.npz, of one face track when `track` is given
    (or, with `longest`, of the track on screen longest: a speaker the face stage mapped to no
    face is most likely the person shown most, and mixing several people's mouths is worse).

    Read tolerantly until the format is agreed: `landmarks` (preferred) or any array named like
    it shaped (..., 68, 2); rows are picked by a parallel `track` array when both exist, and rows
    whose mouth is hidden (`visibility` < min_visibility) or turned away (|`pose` yaw| > max_yaw)
    are left out when those arrays exist. None when there are none."""
    with np.load(path, allow_pickle=False) as npz:
        keys = sorted((k for k in npz.files if "landmark" in k.lower() and npz[k].shape[-2:] == (68, 2)),
                      key=lambda k: (k != "landmarks", k))
        if not keys:
            return None
        lm = npz[keys[0]].astype(float)
        lm = lm[usable_rows(npz, lm.shape[0], track, longest, min_visibility, max_yaw)].reshape(-1, 68, 2)
        keep = np.isfinite(lm).all(axis=(1, 2)) & (np.abs(lm).sum(axis=(1, 2)) > 0)
        return lm[keep]


def measured_curves(path: Path, frames: int, track: int | None = None, min_visibility: float = 0.5,
                    max_yaw: float = 30.0) -> dict[str, np.ndarray]:
    """Per source frame, gap / width / jaw of one face track (the longest when `track` is None) from
    the face stage's faces.npz (its unsmoothed `landmarks_raw` when present): NaN on frames where that
    face is absent, its mouth hidden or turned beyond max_yaw. Empty when the file has no frame index."""
    with np.load(path, allow_pickle=False) as npz:
        if "frame" not in npz.files or "track" not in npz.files:
            return {}
        key = "landmarks_raw" if "landmarks_raw" in npz.files else "landmarks"
        if key not in npz.files:
            return {}
        if track is None and not np.any(npz["track"] >= 0):  # no face tracked: nothing measured
            return {name: np.full(frames, np.nan) for name in ("gap", "width", "jaw")}
        lm, frame = npz[key].astype(float), npz["frame"].astype(int)
        rows = (frame >= 0) & (frame < frames) & usable_rows(npz, len(lm), track, True, min_visibility, max_yaw)
    rows &= np.isfinite(lm).all(axis=(1, 2))
    measures = mouth_measures(lm[rows])
    out = {}
    for name in ("gap", "width", "jaw"):
        curve = np.full(frames, np.nan)
        curve[frame[rows]] = measures[name]
        out[name] = curve
    return out


def dlib_models():
    import importlib.util

    import dlib

    # face_recognition_models' own helper imports pkg_resources (setuptools): locate the file instead
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("face-recognition-models is not installed: pip install face-recognition-models")
    model = Path(list(spec.submodule_search_locations)[0]) / "models" / "shape_predictor_68_face_landmarks.dat"
    return dlib.get_frontal_face_detector(), dlib.shape_predictor(str(model))


def video_landmarks(video: Path, max_frames: int | None = None, detect_every: int = 5, max_side: int = 480,
                    start_frame: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """68-point landmarks of the largest face on frames of a video (dlib HOG + 68-point predictor).

    Returns (frame indices, landmarks (n, 68, 2)); frames without a face get NaN landmarks. The
    face is re-detected every `detect_every` frames (the box is reused between), on a copy scaled
    down to `max_side`, and the shape predictor runs on the full-resolution grey frame.
    """
    import cv2
    import dlib

    detector, predictor = dlib_models()
    capture = cv2.VideoCapture(str(video))
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or 0
    stride = max(1, total // max_frames) if max_frames and total else 1
    indices, shapes = [], []
    box = None
    index = -1
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        index += 1
        if index < start_frame or (index - start_frame) % stride:
            continue
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        if box is None or len(indices) % detect_every == 0 or stride > 1:
            scale = min(1.0, max_side / max(grey.shape))
            small = cv2.resize(grey, None, fx=scale, fy=scale) if scale < 1 else grey
            found = detector(small, 1 if max(small.shape) < 400 else 0)
            if len(found):
                best = max(found, key=lambda r: r.width() * r.height())
                box = dlib.rectangle(int(best.left() / scale), int(best.top() / scale), int(best.right() / scale), int(best.bottom() / scale))
            elif stride > 1:
                box = None
        if box is None:
            shapes.append(np.full((68, 2), np.nan))
        else:
            shape = predictor(grey, box)
            shapes.append(np.array([(p.x, p.y) for p in shape.parts()], dtype=float))
        indices.append(index)
    capture.release()
    return np.array(indices, dtype=int), np.array(shapes).reshape(-1, 68, 2)


def calibrate(faces_npz: Path | None, video: Path | None, max_frames: int = 60, track: int | None = None,
              min_visibility: float = 0.5, max_yaw: float = 30.0) -> Calibration:
    """This speaker's ranges: faces.npz (their face track when known, else the longest track;
    frames with the mouth hidden or the face turned left out), else dlib on the source video
    (the largest face), else neutral (logged)."""
    if faces_npz is not None and Path(faces_npz).exists():
        try:
            lm = landmarks_from_npz(Path(faces_npz), track, min_visibility, max_yaw, longest=True)
            if lm is not None and len(lm) >= 5:
                source = "faces.npz" if track is None else f"faces.npz:track{track}"
                return Calibration(source, ranges_from_landmarks(lm), int(len(lm)))
            log.warning("%s holds no usable 68-point landmarks: measuring them here", faces_npz)
        except Exception as error:  # an unknown format must not stop the stage
            log.warning("cannot read %s (%s): measuring landmarks here", faces_npz, error)
    if video is not None and Path(video).exists():
        try:
            _, lm = video_landmarks(Path(video), max_frames=max_frames)
            lm = lm[np.isfinite(lm).all(axis=(1, 2))]
            if len(lm) >= 5:
                return Calibration("landmarks", ranges_from_landmarks(lm), int(len(lm)))
            log.warning("too few faces found in %s to calibrate (%d frames)", video, len(lm))
        except ImportError as error:
            log.warning("dlib/opencv unavailable (%s)", error)
    log.warning("no landmarks to calibrate the mouth range: using neutral ranges")
    return Calibration("neutral", {k: list(v) for k, v in NEUTRAL.items()}, 0)


def apply(params: dict[str, np.ndarray], calibration: Calibration) -> dict[str, np.ndarray]:
    """0..1 curves -> this speaker's units."""
    out = {}
    for name, curve in params.items():
        lo, hi = calibration.ranges.get(name, [0.0, 1.0])
        out[name] = lo + (hi - lo) * np.asarray(curve)
    return out
