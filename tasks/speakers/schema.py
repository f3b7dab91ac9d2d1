"""speakers.json: turns, one voice profile per speaker, and the transcript relabelled with speakers.

Owned here (not in tasks/artifacts.py) with its own schema version; written atomically.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from tasks.artifacts import ArtifactError, Segment, Word, atomic_path

SPEAKERS_SCHEMA = 1


@dataclass(frozen=True)
class SpeakerTurn:
    start: float
    end: float
    speaker: str


@dataclass(frozen=True)
class VoiceProfile:
    """How one speaker sounds: GE2E embedding, pitch statistics, gender guess, spectral envelope."""

    speaker: str
    speech_s: float
    embedding: tuple[float, ...]
    median_f0: float
    f0_low: float          # 5th percentile, Hz
    f0_high: float         # 95th percentile, Hz
    log_f0_mean: float
    log_f0_std: float
    gender: str            # male | female | unknown
    rms_db: float = 0.0    # speech level, dBFS
    envelope_db: tuple[float, ...] = ()  # mean log spectral envelope of voiced frames on `envelope_hz`
    envelope_hz: tuple[float, ...] = ()


@dataclass(frozen=True)
class Speakers:
    backend: str
    num_speakers: int
    turns: tuple[SpeakerTurn, ...]
    profiles: tuple[VoiceProfile, ...]
    segments: tuple[Segment, ...]
    language: str = ""
    params: dict = field(default_factory=dict)

    def profile(self, speaker: str) -> VoiceProfile | None:
        return next((p for p in self.profiles if p.speaker == speaker), None)


def to_json(speakers: Speakers) -> str:
    return json.dumps({"schema": SPEAKERS_SCHEMA, "kind": "Speakers", **dataclasses.asdict(speakers)}, indent=1, ensure_ascii=False)


def write(path: Path | str, speakers: Speakers) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(to_json(speakers) + "\n", encoding="utf-8")
    return path


def read(path: Path | str) -> Speakers:
    path = Path(path)
    if not path.exists():
        raise ArtifactError(f"missing artifact {path}: run the speakers stage first")
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("kind") != "Speakers":
        raise ArtifactError(f"{path} holds a {data.get('kind')!r}, expected Speakers")
    if data.get("schema") != SPEAKERS_SCHEMA:
        raise ArtifactError(f"{path} has schema {data.get('schema')}, this code reads {SPEAKERS_SCHEMA}: rerun speakers")
    return from_dict(data)


def from_dict(data: dict) -> Speakers:
    def tup(d: dict, cls):
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in names})

    segments = tuple(Segment(**{**{k: v for k, v in s.items() if k != "words"},
                                "words": tuple(Word(**w) for w in s.get("words", ()))}) for s in data["segments"])
    return Speakers(backend=data["backend"], num_speakers=data["num_speakers"],
                    turns=tuple(SpeakerTurn(**t) for t in data["turns"]),
                    profiles=tuple(tup(p, VoiceProfile) for p in data["profiles"]),
                    segments=segments, language=data.get("language", ""), params=data.get("params") or {})
