"""ingest: probe the container and extract the audio every later stage listens to.

Outputs in `data/ingest/<video>/`: `probe.json` (fps, size, frame count, duration), `audio.wav`
(16 kHz mono, for recognition) and `soundtrack.wav` (the original track at its own rate, which
the dub is mixed into).
"""
from __future__ import annotations

from pathlib import Path

from tasks import artifacts
from tasks.artifacts import Probe
from tasks.media import SPEECH_RATE, extract_audio, probe


def ingest(source: Path, out: Path, max_channels: int = 2) -> Probe:
    description = probe(source)
    artifacts.write(out / "probe.json", description)
    extract_audio(source, out / "audio.wav", SPEECH_RATE, 1)
    extract_audio(source, out / "soundtrack.wav", None, min(description.audio_channels, max_channels))
    return description
