"""The face stage's artifacts: `tracks.json` (typed, versioned) and `faces.npz` (arrays per face row).

faces.npz holds one row per face per frame (N rows), every array indexed alike:
  frame (N,) int32 · track (N,) int32 (-1: a face of no kept identity) · fragment (N,) int32 ·
  box (N, 4) x0 y0 x1 y1 · landmarks (N, 68, 2) smoothed, source pixels · landmarks_raw (N, 68, 2) ·
  detected (N,) bool · pose (N, 3) yaw pitch roll degrees · rvec, tvec (N, 3) (OpenCV, generic head in mm,
  camera f = longer image side) · visibility (N,) 0..1 · occluder (N,) int8 (0 none, 1 object,
  2 hand/skin, 3 person) · mouth_box (N, 4) int32 · mouth_mask (N, 32, 48) uint8 (255 = covered,
  stretched over mouth_box) · mouth_open (N,) inner-lip gap / inter-ocular distance;
per frame (F,): times (seconds), shot (index of the shot the frame belongs to); and schema, cuts.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tasks import artifacts
from tasks.artifacts import ArtifactError, atomic_path

FACE_SCHEMA = 1
NPZ_ARRAYS = ("frame", "track", "fragment", "box", "landmarks", "landmarks_raw", "detected", "pose", "rvec", "tvec",
              "visibility", "occluder", "mouth_box", "mouth_mask", "mouth_open")


@dataclass(frozen=True)
class FaceTrack:
    id: int
    first_frame: int
    last_frame: int
    frames: int                          # frames in which this face is present
    spans: tuple[tuple[int, int], ...]   # inclusive frame runs
    seconds: float
    speaker: str | None = None           # diarized speaker (or transcript speaker label) it voices
    speaking_score: float = 0.0
    mouth_visibility: float = 1.0        # mean over its frames
    mean_pose: tuple[float, float, float] = (0.0, 0.0, 0.0)
    embedding: tuple[float, ...] = ()


@dataclass(frozen=True)
class SegmentFace:
    """Which track voices one transcript segment (None: no face on screen moves with it)."""

    segment: int
    start: float
    end: float
    speaker: str
    track: int | None
    scores: dict[str, float] = field(default_factory=dict)  # track id (as text) -> sync confidence


@dataclass(frozen=True)
class FaceTracks:
    video: str
    width: int
    height: int
    fps: float
    frames: int
    backend: str
    cuts: tuple[int, ...]
    tracks: tuple[FaceTrack, ...]
    speakers: dict[str, int | None]
    segments: tuple[SegmentFace, ...] = ()
    speaker_scores: dict[str, dict[str, float]] = field(default_factory=dict)
    stats: dict[str, float] = field(default_factory=dict)
    # speaker -> why that face: "sync", "sole moving face", "still picture: stereo" / "... order" / "... one face", "chosen"
    # ("chosen, still picture" in a photo)
    speaker_basis: dict[str, str] = field(default_factory=dict)


def write_tracks(path: Path, tracks: FaceTracks) -> Path:
    return artifacts.write(path, tracks, FACE_SCHEMA)


def read_tracks(path: Path | str) -> FaceTracks:
    return artifacts.read(path, FaceTracks, FACE_SCHEMA)


def write_faces(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    missing = [k for k in NPZ_ARRAYS if k not in arrays]
    if missing:
        raise ValueError(f"faces.npz needs {missing}")
    with atomic_path(Path(path)) as tmp:
        with tmp.open("wb") as handle:
            np.savez_compressed(handle, schema=np.int32(FACE_SCHEMA), **arrays)
    return Path(path)


def read_faces(path: Path | str) -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.exists():
        raise ArtifactError(f"missing artifact {path}: run the face stage first")
    with np.load(path) as data:
        if int(data["schema"]) != FACE_SCHEMA:
            raise ArtifactError(f"{path} has schema {int(data['schema'])}, this code reads {FACE_SCHEMA}")
        return {k: data[k] for k in data.files}
