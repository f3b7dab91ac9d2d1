"""asr: fragments folded into their segment, and speech Whisper left out transcribed again alone."""
from __future__ import annotations

import pytest

from tasks.artifacts import Segment, Word
from tasks.asr import merge_fragments, uncovered_speech
from tests.conftest import shared_media


def segment(start: float, end: float, text: str = "some words here") -> Segment:
    return Segment(0, start, end, text)


@pytest.mark.parametrize("segments, speech, expected", [
    # Whisper stopped at 37.6 s; the voice goes on from 38.9 to 49
    ([segment(0, 4.5), segment(29.9, 37.6)], [(0.1, 4.4), (30.0, 37.5), (38.9, 44.0), (44.3, 48.9)], [(38.7, 49.0)]),
    # every voice covered: nothing to add
    ([segment(0, 4.5), segment(29.9, 37.6)], [(0.1, 4.4), (30.0, 37.5)], []),
    # a gap shorter than min_gap_s is a pause, whatever the detector heard in it
    ([segment(0, 4.5), segment(6.0, 9.0)], [(4.6, 5.9)], []),
    # a gap with less than min_speech_s of speech in it (a cough, a breath)
    ([segment(0, 4.5)], [(20.0, 20.5)], []),
    # speech before the first segment, padded but not past the audio's start
    ([segment(10.0, 20.0)], [(0.1, 3.0)], [(0.0, 3.2)]),
    # nothing heard at all: every stretch of speech counts
    ([], [(5.0, 7.0), (9.0, 9.5)], [(4.8, 9.7)]),
])
def test_uncovered_speech_is_speech_in_long_stretches_no_segment_covers(segments, speech, expected):
    found = uncovered_speech(tuple(segments), speech, 49.0, min_gap_s=2.0, min_speech_s=1.0)
    assert [tuple(round(t, 6) for t in stretch) for stretch in found] == expected


def test_short_fragments_join_the_segment_before_them():
    words = lambda n: tuple(Word(i, i + 0.5, "w") for i in range(n))
    segments = (Segment(0, 0.0, 2.0, "a b c", words=words(3)), Segment(1, 2.2, 2.4, "and", words=words(1)),
                Segment(2, 5.0, 5.3, "I", words=words(1)))
    merged = merge_fragments(segments, min_words=2, max_gap_s=0.6)
    assert [(s.id, s.start, s.end, s.text) for s in merged] == [(0, 0.0, 2.4, "a b c and"), (1, 5.0, 5.3, "I")]


@pytest.mark.slow
def test_speech_left_out_is_heard_alone_with_its_own_times():
    """Real Whisper and the VAD of the faster-whisper wheel on a real recording: as if Whisper had
    stopped after its first segment, the rest of the speech is found and transcribed, on the
    recording's own timeline."""
    from tasks.asr.backends import FasterWhisper

    audio = shared_media("audio/jfk_en.flac")
    whisper = FasterWhisper(progress=False, recover={"enabled": True})
    whole = whisper.transcribe(audio)
    words = [w for s in whole.segments for w in s.words]
    assert [s.id for s in whole.segments] == list(range(len(whole.segments)))
    assert words[4].text.lower().startswith("americans")
    heard = Segment(0, 0.0, words[4].end, "And so my fellow Americans,", words=tuple(words[:5]))
    recovered = whisper._recovered(whisper._decode(audio), (heard,), "en", 11.0)
    text = " ".join(s.text for s in recovered).lower()
    assert "ask not" in text and "country" in text and "fellow" not in text
    assert recovered[0].start >= heard.end - 0.3   # on the recording's own timeline
    assert recovered[-1].words[-1].end == pytest.approx(words[-1].end, abs=0.5)
