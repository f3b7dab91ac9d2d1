"""speakers.json: turns, one voice profile per speaker, and the transcript relabelled with speakers.

Written and read through `tasks.artifacts` (kind and schema checked, atomic write), with this
stage's own schema version.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tasks import artifacts
from tasks.artifacts import Segment

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
    # a speaker talking over another's turn (the turn of the one heard most stays in `turns`)
    overlaps: tuple[SpeakerTurn, ...] = ()

    def profile(self, speaker: str) -> VoiceProfile | None:
        return next((p for p in self.profiles if p.speaker == speaker), None)


def write(path: Path | str, speakers: Speakers) -> Path:
    return artifacts.write(path, speakers, SPEAKERS_SCHEMA)


def read(path: Path | str) -> Speakers:
    return artifacts.read(path, Speakers, SPEAKERS_SCHEMA)
