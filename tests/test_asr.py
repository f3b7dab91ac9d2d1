"""asr: fragments folded into their segment, and speech Whisper left out transcribed again alone."""
from __future__ import annotations

import pytest

from tasks.artifacts import Segment, Word
from tasks.asr import merge_fragments, trim_to_speech, uncovered_speech
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


@pytest.mark.parametrize("span, speech, expected", [
    # frontal_man_suit: a trailing "I" heard in a click 1.4 s after the last word, folded into the line
    ((3.28, 6.08), [(3.49, 4.61), (6.02, 6.11)], (3.39, 4.71)),
    # backlit_webcam: the first word starts in the pause before the voice
    ((0.84, 8.60), [(1.28, 2.01), (2.63, 3.93), (7.68, 8.73)], (1.18, 8.60)),
    # speech right up to both edges: the edges stay (never moved outward)
    ((0.0, 4.4), [(0.0, 2.0), (2.5, 4.5)], (0.0, 4.4)),
    # only blips shorter than min_speech_s inside: the detector missed the voice, the edges stay
    ((5.0, 7.0), [(5.5, 5.6), (6.0, 6.1)], (5.0, 7.0)),
    # no speech detected at all: kept
    ((1.0, 2.0), [], (1.0, 2.0)),
])
def test_segment_edges_move_in_to_the_speech_inside_them(span, speech, expected):
    words = (Word(span[0], span[0] + 0.5, "first"), Word(span[0] + 0.5, span[1] - 0.3, "middle"), Word(span[1] - 0.3, span[1], "last"))
    segment = Segment(3, *span, "first middle last", "S0", words)
    [trimmed] = trim_to_speech((segment,), speech, min_speech_s=0.15, pad_s=0.1)
    assert (trimmed.start, trimmed.end) == pytest.approx(expected)
    assert (trimmed.id, trimmed.text, trimmed.speaker) == (3, "first middle last", "S0")
    assert [w.text for w in trimmed.words] == ["first", "middle", "last"]
    assert all(trimmed.start <= w.start <= w.end <= trimmed.end for w in trimmed.words)


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


@pytest.mark.slow
def test_segment_edges_sit_on_the_voice_activity_of_a_real_recording():
    """Silero VAD (from the faster-whisper wheel) on a real recording: pauses split the speech, and
    trimming moves no edge outward and keeps every word inside its segment."""
    from tasks.asr.backends import FasterWhisper

    audio = shared_media("audio/jfk_en.flac")
    whisper = FasterWhisper(progress=False)
    speech = whisper.speech(audio)
    assert len(speech) >= 2 and all(a < b for a, b in speech)
    assert all(b1 <= a2 for (_, b1), (a2, _) in zip(speech, speech[1:]))
    assert 5.0 < sum(b - a for a, b in speech) < 11.0
    segments = whisper.transcribe(audio).segments
    trimmed = trim_to_speech(segments, speech)
    for before, after in zip(segments, trimmed):
        assert before.start <= after.start < after.end <= before.end
        assert all(after.start <= w.start <= w.end <= after.end for w in after.words)
    assert trimmed[0].start >= speech[0][0] - 0.1 - 1e-9


class _Heard:
    """A recogniser's voice activity detector, as the asr stage calls it (a test double)."""

    name = "double"

    def __init__(self, speech):
        self._speech = speech

    def speech(self, audio, threshold):
        return self._speech


def test_the_stage_trims_only_with_a_voice_activity_detector():
    from tasks.artifacts import Transcript
    from tasks.asr.__main__ import trimmed_to_speech

    transcript = Transcript("en", 0.99, (Segment(0, 3.28, 6.08, "I'd like that. I"), Segment(1, 7.0, 8.0, "fine")))
    trimmed = trimmed_to_speech(_Heard([(3.49, 4.61), (6.02, 6.11), (7.0, 8.0)]), "audio.wav", transcript,
                                vad_threshold=0.5, min_speech_s=0.15, pad_s=0.1)
    assert [(s.start, s.end) for s in trimmed.segments] == [(3.39, 4.71), (7.0, 8.0)]
    assert trimmed.language == "en" and [s.text for s in trimmed.segments] == ["I'd like that. I", "fine"]

    class Plain:
        name = "no-vad"

    assert trimmed_to_speech(Plain(), "audio.wav", transcript) is transcript


def _segment(start, end, text, probability):
    return Segment(0, start, end, text, words=(Word(start, end, text, probability),))


@pytest.mark.parametrize("segment,speech,expected", [
    (_segment(1.66, 2.0, "You", 0.05), [], [0]),                          # silence, unsure: Whisper's own
    (_segment(1.66, 2.0, "You", 0.05), [(1.5, 2.2)], []),                 # a voice there: kept, however unsure
    (_segment(1.66, 2.0, "Yes", 0.9), [], []),                            # sure of it: kept (the detector can miss a quiet voice)
    (_segment(1.0, 3.0, "and so", 0.3), [(2.9, 3.0), (1.0, 1.04)], [0]),  # under 0.15 s of voice in it
])
def test_a_segment_with_no_voice_that_whisper_was_unsure_of_is_dropped(segment, speech, expected):
    from tasks.asr import unheard

    assert unheard((segment,), speech) == expected


@pytest.mark.slow
def test_a_silent_track_has_nothing_to_dub(tmp_path):
    """Real Whisper base on 3 s of digital silence said "You" (word probability 0.05) on the machines
    of earlier sessions and says nothing on an AVX-512/AMX Xeon (same code and model); the stage
    drops such a word and stops with one clear line instead of dubbing a word nobody said."""
    import numpy as np
    import soundfile

    from tasks.asr.__main__ import run, without_unheard
    from tasks.asr.backends import FasterWhisper
    from tasks.stage import StageContext, StageError

    audio = tmp_path / "data" / "ingest" / "clip" / "audio.wav"
    audio.parent.mkdir(parents=True)
    soundfile.write(str(audio), np.zeros(48_000, np.float32), 16_000)
    whisper = FasterWhisper(progress=False)
    heard = whisper.transcribe(audio)
    assert [s.text for s in heard.segments] in ([], ["You"])             # what it says on silence
    assert without_unheard(whisper, audio, heard).segments == ()
    config = {"backend": {"_target_": "tasks.asr.backends.FasterWhisper", "progress": False},
              "drop_unheard": {"enabled": True}}
    with pytest.raises(StageError, match="no speech"):
        run(StageContext("asr", "clip", None, tmp_path, {"asr": config}))
