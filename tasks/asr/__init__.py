"""asr: transcribe the speech audio with word timestamps and the detected language.

The backend is the `_target_` of `conf/asr/*.yaml`; it turns a 16 kHz mono WAV into a Transcript.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Protocol

from tasks.artifacts import Segment, Transcript, Word


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


def uncovered_speech(segments: tuple[Segment, ...], speech: list[tuple[float, float]], duration: float,
                     min_gap_s: float, min_speech_s: float, pad_s: float = 0.2) -> list[tuple[float, float]]:
    """Stretches of the audio that no segment covers (at least `min_gap_s` long) but where a voice
    activity detector heard `min_speech_s` or more of speech (`speech`: its (start, end) spans):
    from the first to the last speech inside the stretch, `pad_s` wider, within the stretch.

    Whisper sometimes ends its last window early (a song or a rap after a pause, music under the
    voice) and never comes back: such a stretch, transcribed alone, is heard."""
    edges = [0.0] + [t for segment in sorted(segments, key=lambda s: s.start) for t in (segment.start, segment.end)] + [duration]
    found = []
    for begin, end in zip(edges[0::2], edges[1::2]):
        if end - begin < min_gap_s:
            continue
        inside = [(max(a, begin), min(b, end)) for a, b in speech if b > begin and a < end]
        if sum(b - a for a, b in inside) >= min_speech_s:
            found.append((max(begin, inside[0][0] - pad_s), min(end, inside[-1][1] + pad_s)))
    return found


def unheard(segments: tuple[Segment, ...], speech: list[tuple[float, float]], min_speech_s: float = 0.15,
            max_probability: float = 0.5) -> list[int]:
    """Indexes of segments that are Whisper's, not the speaker's: less than `min_speech_s` of speech
    inside them by a voice activity detector (`speech`: its (start, end) spans) and words Whisper
    itself was unsure of (mean probability under `max_probability`). On silence Whisper base says
    "You" (word probability 0.05 on 3 and 5 s of digital silence, and on a video with a muted track),
    and the dub spoke it; on the seven real clips and the demo no segment meets either condition."""
    out = []
    for index, segment in enumerate(segments):
        voiced = sum(max(0.0, min(b, segment.end) - max(a, segment.start)) for a, b in speech)
        sure = sum(w.probability for w in segment.words) / len(segment.words) if segment.words else 0.0
        if voiced < min_speech_s and sure < max_probability:
            out.append(index)
    return out


def trim_to_speech(segments: tuple[Segment, ...], speech: list[tuple[float, float]], min_speech_s: float = 0.15,
                   pad_s: float = 0.1) -> tuple[Segment, ...]:
    """Each segment's start and end moved in to the first and last stretch of speech inside it that
    lasts `min_speech_s` or more (`speech`: a voice activity detector's (start, end) spans), `pad_s`
    wider, never outward; its words clamped into the new span. A segment with no such speech is kept
    as it is (the detector can miss a quiet voice that Whisper heard).

    Whisper's edges are often far off: a first word that starts in the pause before it (backlit_webcam:
    0.44 s early), and a trailing word it heard in a click after the speech ("I", 1.6 s long, on
    frontal_man_suit), which the fragment merge then folds into the line before. The dub is fitted
    to these edges, and the lips are edited between them."""
    out = []
    for segment in segments:
        inside = [(max(a, segment.start), min(b, segment.end)) for a, b in speech if b > segment.start and a < segment.end]
        inside = [(a, b) for a, b in inside if b - a >= min_speech_s]
        if not inside:
            out.append(segment)
            continue
        start = max(segment.start, round(inside[0][0] - pad_s, 3))
        end = min(segment.end, round(inside[-1][1] + pad_s, 3))
        words = tuple(Word(min(max(w.start, start), end), min(max(w.end, start), end), w.text, w.probability)
                      for w in segment.words)
        out.append(replace(segment, start=start, end=end, words=words))
    return tuple(out)
