"""ingest: probe the container and extract the audio every later stage listens to.

Outputs in `data/ingest/<video>/`: `probe.json` (fps, size, frame count, duration), `audio.wav`
(16 kHz mono, for recognition) and `soundtrack.wav` (the original track at its own rate, which
the dub is mixed into); for a source whose frames drift from k / fps (a variable frame rate),
`picture.mkv`, its picture at a constant rate, which every stage reads instead (`stage.picture_video`).
"""
from __future__ import annotations

from pathlib import Path

from dataclasses import replace

from tasks import artifacts
from tasks.artifacts import Probe
from tasks.media import SPEECH_RATE, constant_rate_copy, extract_audio, probe

PICTURE = "picture.mkv"   # a variable-rate source's picture at a constant rate, which the stages read


def ingest(source: Path, out: Path, max_channels: int = 2) -> Probe:
    description = probe(source)
    if not description.constant_rate:
        frames = constant_rate_copy(source, out / PICTURE, description.fps)
        description = replace(description, frames=frames, duration=round(frames / description.fps, 6))
    artifacts.write(out / "probe.json", description)
    extract_audio(source, out / "audio.wav", SPEECH_RATE, 1)
    extract_audio(source, out / "soundtrack.wav", None, min(description.audio_channels, max_channels))
    return description
