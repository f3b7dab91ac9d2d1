"""asr: transcribe the speech audio with word timestamps and the detected language.

The backend is the `_target_` of `conf/asr/*.yaml`; it turns a 16 kHz mono WAV into a Transcript.
"""
from __future__ import annotations

from pathlib import Path
from typing import Protocol

from tasks.artifacts import Segment, Transcript


class Recognizer(Protocol):
    name: str

    def transcribe(self, audio: Path, language: str | None = None) -> Transcript: ...


def merge_fragments(segments: tuple[Segment, ...], min_words: int, max_gap_s: float) -> tuple[Segment, ...]:
    """Fold a fragment of fewer than `min_words` words into the segment just before it.

    Whisper often emits a trailing "I" or "and" as its own segment; voiced alone, it would steal
    the slot its predecessor needs, and a lone word translates badly.
    """
    merged: list[Segment] = []
    for segment in segments:
        count = len(segment.words) or len(segment.text.split())
        if merged and count < min_words and segment.start - merged[-1].end <= max_gap_s:
            previous = merged[-1]
            merged[-1] = Segment(previous.id, previous.start, segment.end, f"{previous.text} {segment.text}",
                                 previous.speaker, previous.words + segment.words)
        else:
            merged.append(segment)
    return tuple(Segment(i, s.start, s.end, s.text, s.speaker, s.words) for i, s in enumerate(merged))
