"""asr: transcribe the speech audio with word timestamps and the detected language.

The backend is the `_target_` of `conf/asr/*.yaml`; it turns a 16 kHz mono WAV into a Transcript.
"""
from __future__ import annotations

from pathlib import Path
from typing import Protocol

from tasks.artifacts import Transcript


class Recognizer(Protocol):
    name: str

    def transcribe(self, audio: Path, language: str | None = None) -> Transcript: ...
