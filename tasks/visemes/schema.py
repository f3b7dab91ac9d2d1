"""The `visemes.json` artifact: typed, versioned, written atomically.

`tasks.artifacts` owns the shared artifacts; this stage's artifact is new, so its reader and writer
live here, with the same conventions (`schema`, `kind`, atomic write) and its own schema version.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks.artifacts import ArtifactError, atomic_path

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


def to_json(visemes: Visemes) -> str:
    payload = {"schema": VISEMES_SCHEMA, "kind": "Visemes", **dataclasses.asdict(visemes)}
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def write(path: Path | str, visemes: Visemes) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(to_json(visemes) + "\n", encoding="utf-8")
    return path


def read(path: Path | str) -> Visemes:
    path = Path(path)
    if not path.exists():
        raise ArtifactError(f"missing artifact {path}: run the visemes stage first")
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("kind") != "Visemes":
        raise ArtifactError(f"{path} holds a {data.get('kind')!r}, expected Visemes")
    if data.get("schema") != VISEMES_SCHEMA:
        raise ArtifactError(f"{path} has schema {data.get('schema')}, this code reads {VISEMES_SCHEMA}: rerun visemes")
    speakers = tuple(SpeakerCurves(**{**s, "calibration": Calibration(**s["calibration"])}) for s in data["speakers"])
    return Visemes(data["language"], data["fps"], data["frames"], data["aligner"], data["param_names"],
                   tuple(PhoneInterval(**p) for p in data["phones"]), speakers)
