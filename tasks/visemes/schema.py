"""The `visemes.json` artifact: typed, versioned, written atomically.

Written and read through `tasks.artifacts` (kind and schema checked, atomic write), with this
stage's own schema version.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks import artifacts

VISEMES_SCHEMA = 1


@dataclass(frozen=True)
class PhoneInterval:
    start: float
    end: float
    phone: str
    viseme: str
    speaker: str = "S0"


@dataclass(frozen=True)
class Calibration:
    """How this speaker's 0..1 curves map to measured units (inner-lip gap etc. / inter-ocular distance)."""

    source: str  # "faces.npz", "landmarks", or "neutral"
    ranges: dict[str, list[float]]  # param -> [low, high] in units of the inter-ocular distance
    frames_measured: int = 0
    # param -> viseme class -> this speaker's own target (0..1 of the range), fitted on the source
    # video (tasks/visemes/speaker_fit.py); empty: the language table's targets
    targets: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class SpeakerCurves:
    speaker: str
    calibration: Calibration
    params: dict[str, list[float]]  # per frame, 0..1 of this speaker's range
    calibrated: dict[str, list[float]]  # per frame, in calibration units
    labels: list[str]  # viseme per frame
    checks: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Visemes:
    language: str
    fps: float
    frames: int
    aligner: str
    param_names: list[str]
    phones: tuple[PhoneInterval, ...]
    speakers: tuple[SpeakerCurves, ...]


def write(path: Path | str, visemes: Visemes) -> Path:
    return artifacts.write(path, visemes, VISEMES_SCHEMA, compact=True)


def read(path: Path | str) -> Visemes:
    return artifacts.read(path, Visemes, VISEMES_SCHEMA)
