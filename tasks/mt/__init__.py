"""mt: translate every transcript segment, keeping its speaker and timing.

The translator is the `_target_` of `conf/mt/*.yaml` (a route table of backends per language pair).
"""
from __future__ import annotations

from tasks.artifacts import Transcript, TranslatedSegment, Translation


def translate_transcript(transcript: Transcript, translator, target: str) -> Translation:
    source = transcript.language
    texts = [segment.text for segment in transcript.segments]
    translated = list(texts) if source == target else translator.translate(texts, source, target)
    if len(translated) != len(texts):
        raise RuntimeError(f"translator returned {len(translated)} texts for {len(texts)} segments")
    segments = tuple(
        TranslatedSegment(s.id, s.start, s.end, s.speaker, s.text, text.strip())
        for s, text in zip(transcript.segments, translated)
    )
    backend = "identity" if source == target else getattr(translator, "name", type(translator).__name__)
    return Translation(source, target, backend, segments)
