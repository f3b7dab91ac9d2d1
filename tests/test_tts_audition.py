"""The voice audition (likeness after conversion, intelligibility against the default voice) and the
pause shortening that comes before any speed-up (pure logic and test doubles, no models)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from tasks.speakers.schema import VoiceProfile
from tests.voice_doubles import ToneVoice, matching_with_doubles
from tasks.tts import Pace, synthesize_shortened
from tasks.tts.audition import choose, render
from tasks.tts.timing import pauses, shorten_pauses

RATE = 1000


def speech_with_pauses(lengths_s, word_s=0.3, rate=RATE):
    """Words of a tone with silent pauses of `lengths_s` between them."""
    word = np.sin(np.arange(int(word_s * rate)) * 0.5).astype(np.float32) * 0.5
    pieces = [word]
    for length in lengths_s:
        pieces += [np.zeros(int(length * rate), np.float32), word]
    return np.concatenate(pieces)


def test_shorten_pauses_takes_only_the_excess_and_keeps_each_pause():
    speech = speech_with_pauses([0.4, 0.2])
    out, removed = shorten_pauses(speech, RATE, 0.2, keep_s=0.1)
    assert len(speech) - len(out) == pytest.approx(0.2 * RATE, abs=2)
    # shares in proportion to what each has above 0.1 s: 0.3 and 0.1 -> 0.15 and 0.05
    assert [length for _, length in removed] == pytest.approx([-0.15, -0.05], abs=0.002)
    assert sorted(round((b - a) / RATE, 2) for a, b in pauses(out, RATE)) == pytest.approx([0.15, 0.25], abs=0.011)


def test_shorten_pauses_stops_at_the_kept_length_and_leaves_short_dubs_alone():
    speech = speech_with_pauses([0.4, 0.2])
    out, removed = shorten_pauses(speech, RATE, 5.0, keep_s=0.1)
    assert len(speech) - len(out) == pytest.approx(0.4 * RATE, abs=2)
    assert all(round((b - a) / RATE, 2) >= 0.1 - 0.011 for a, b in pauses(out, RATE))
    same, none = shorten_pauses(speech, RATE, -0.5, keep_s=0.1)
    assert same is speech and none == ()


class PausingVoice:
    """A test double: words with long pauses; speed shortens everything (as a real voice does)."""

    name, sample_rate = "pausing", RATE

    def __init__(self):
        self.calls = []

    def synthesize(self, text, speed=1.0):
        self.calls.append(speed)
        return speech_with_pauses([0.5 / speed] * 3, 0.4 / speed)


def test_pauses_shrink_before_the_rate_goes_up():
    # 4 words x 0.4 + 3 pauses x 0.5 = 3.1 s; 2.8 s fits by shortening the pauses alone
    voice = PausingVoice()
    speech, speed, removed = synthesize_shortened(voice, "w w w w", 2.8, Pace(1.4, keep_pause_s=0.1))
    assert speed == 1.0 and voice.calls == [1.0]
    assert len(speech) / RATE <= 2.8 + 0.01 and sum(length for _, length in removed) < -0.29
    # without it, the same slot costs a faster rate
    voice = PausingVoice()
    _, speed, removed = synthesize_shortened(voice, "w w w w", 2.8, Pace(1.4))
    assert speed > 1.0 and removed == ()


@pytest.mark.parametrize("wers, reference, margin, expected, asked", [
    ({"a": 0.3, "b": 0.0, "c": 0.1}, 0.0, 0.05, "b", "a.cb"),   # only b is understood as well as the default
    ({"a": 0.3, "b": 0.0, "c": 0.1}, 0.0, 0.1, "c", "a.c"),     # c within 10 points, and more alike: b not heard
    ({"a": 0.0, "b": 0.0, "c": 0.1}, 0.3, 0.05, "a", "a"),      # the most alike within the margin: passes anyway
    ({"a": 0.3, "b": 0.2, "c": 0.25}, 0.0, 0.05, "b", "a.cb"),  # all worse: the best understood
    ({"a": 0.3, "b": 0.3, "c": 0.3}, 0.0, 0.05, "a", "a.cb"),   # ... the most alike of equals
    ({"a": None, "b": None, "c": None}, None, 0.05, "a", ""),   # nobody listened: likeness alone
    ({"a": 0.2, "b": 0.0, "c": 0.1}, None, 0.1, "c", "a.cb"),   # no default heard: the best heard is the reference
])
def test_choose_hears_the_most_alike_first_and_leaves_out_those_harder_to_understand(wers, reference, margin,
                                                                                      expected, asked):
    likeness = {"a": 0.7, "b": 0.5, "c": 0.6}
    heard = []  # names in the order their WER was asked, "." where the reference was

    def wer_of(name):
        heard.append(name)
        return wers[name]

    def reference_of():
        heard.append(".")
        return reference

    listening = None if wers["a"] is None else wer_of
    assert choose(likeness, listening, reference_of, margin) == expected
    assert "".join(dict.fromkeys(heard)) == asked


@pytest.mark.parametrize("wers, reference, expected", [
    ({"a": 0.06, "b": 0.0}, 0.0, "a"),    # one word of 16 misheard: intelligible whatever the default's
    ({"a": 0.13, "b": 0.0}, 0.07, "b"),   # two words to the default's one: still left out
    ({"a": 0.08, "b": 0.0}, 0.0, "b"),    # above the passing WER and the margin
])
def test_choose_passes_a_voice_understood_at_the_passing_wer(wers, reference, expected):
    assert choose({"a": 0.7, "b": 0.5}, wers.__getitem__, lambda: reference, 0.05, passing_wer=0.07) == expected
    assert choose({"a": 0.7, "b": 0.5}, wers.__getitem__, lambda: reference, 0.05) == ("a" if wers["a"] <= 0.05 else "b")


def test_choose_breaks_likeness_ties_by_name():
    assert choose({"b": 0.5, "a": 0.5}, lambda name: 0.0, lambda: 0.0, 0.05) == "a"


@pytest.mark.parametrize("late, wers, expected", [
    (frozenset(), {"a": 0.0, "b": 0.0, "c": 0.0}, "a"),            # nobody late: the most alike
    (frozenset({"a"}), {"a": 0.0, "b": 0.0, "c": 0.0}, "c"),       # a would end late: the next most alike
    (frozenset({"a", "c"}), {"a": 0.0, "b": 0.3, "c": 0.0}, "a"),  # b on time but not understood: a late one after all
    (frozenset({"a", "b", "c"}), {"a": 0.0, "b": 0.0, "c": 0.0}, "a"),  # all late: as if none were
])
def test_choose_hears_a_voice_that_would_end_late_after_every_other(late, wers, expected):
    likeness = {"a": 0.7, "b": 0.5, "c": 0.6}
    assert choose(likeness, wers.__getitem__, lambda: 0.0, 0.05, late=late) == expected
    assert choose(likeness, None, lambda: None, 0.05, late=late) == min(likeness, key=lambda n: (n in late, -likeness[n]))


def profile(f0, gender, emb, name="x"):
    return VoiceProfile(name, 3.0, tuple(emb), f0, f0 * 0.8, f0 * 1.25, float(np.log(f0)), 0.15, gender)


class PitchListener:
    """Understands every word of voices below `clear_below_hz` and none above (by the tone's pitch)."""

    def __init__(self, clear_below_hz):
        self.clear_below_hz, self.heard = clear_below_hz, 0

    def word_error_rate(self, samples, rate, text):
        self.heard += 1
        spectrum = np.abs(np.fft.rfft(samples))
        peak = np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))]
        return 0.0 if peak < self.clear_below_hz else 1.0


@pytest.mark.parametrize("clear_below_hz, expected, transcriptions", [
    (1000, "mid", 1),   # mid, the most alike, is understood: neither deep nor the default is heard
    (180, "deep", 3),   # mid is not understood: the default (the reference) and deep are heard too
])
def test_assign_voices_passes_over_a_more_alike_voice_that_is_harder_to_understand(monkeypatch, clear_below_hz, expected,
                                                                                   transcriptions):
    measured = {"deep": profile(100, "male", (0.0, 1.0)), "mid": profile(130, "male", (0.7, 0.7)),
                "default": profile(300, "female", (1.0, 0.0))}
    matching = matching_with_doubles(monkeypatch, measured)
    voices = {"deep": ToneVoice(100), "mid": ToneVoice(200), "default": ToneVoice(150)}
    listener = PitchListener(clear_below_hz)
    speaker = profile(100, "male", (0.0, 1.0), name="S0")  # sounds like "mid" (200 Hz)
    chosen, scores = matching.assign_voices([speaker], voices, "es", {"S0": (("hola", 0.5),)}, 2, ("default",),
                                            listener=listener, max_wer_over_default=0.05)
    assert chosen["S0"] is voices[expected]
    assert set(scores["S0"]) == {"deep", "mid"}  # the (female) default was heard for its words, not as a candidate
    assert listener.heard == transcriptions


class SlowToneVoice(ToneVoice):
    """Says everything in a second, whatever the rate asked for."""

    def synthesize(self, text, speed=1.0):
        return np.tile(super().synthesize(text, speed), 2)


@pytest.mark.parametrize("late_after_s, expected", [
    (None, "mid"),   # timing left out: the most alike
    (0.05, "deep"),  # mid would end its line 0.4 s late even at 1.4x: the on-time voice
    (0.5, "mid"),    # ... within what is still on time
])
def test_assign_voices_prefers_a_voice_that_ends_its_lines_on_time(monkeypatch, late_after_s, expected):
    measured = {"deep": profile(100, "male", (0.0, 1.0)), "mid": profile(130, "male", (0.7, 0.7))}
    matching = matching_with_doubles(monkeypatch, measured)
    voices = {"deep": ToneVoice(100), "mid": SlowToneVoice(200)}
    speaker = profile(100, "male", (0.0, 1.0), name="S0")  # sounds like "mid" (200 Hz)
    chosen, _ = matching.assign_voices([speaker], voices, "es", {"S0": (("hola", 0.6),)}, 2, pace=Pace(1.4),
                                       listener=PitchListener(1000), late_after_s=late_after_s)
    assert chosen["S0"] is voices[expected]


class ConvertingMatcher:
    """A converter double that scores its variants and moves a tone to 200 Hz (where the listener
    of the test below stops understanding)."""

    select_by_similarity = True

    def match(self, samples, rate, profile, time_scale=1.0):
        t = np.arange(len(samples)) / rate
        return (0.1 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), {"similarity": 0.9}


def test_the_default_voice_is_the_reference_as_it_is_not_as_converted(monkeypatch):
    from tasks.tts import audition

    measured = {"deep": profile(100, "male", (0.0, 1.0)), "default": profile(150, "male", (0.7, 0.7))}
    matching = matching_with_doubles(monkeypatch, measured)
    references, real_choose = [], audition.choose
    monkeypatch.setattr(audition, "choose", lambda likeness, wer_of, reference_of, margin, passing=0.0, late=frozenset():
                        real_choose(likeness, wer_of, lambda: references.append(reference_of()) or references[-1], margin,
                                    passing, late))
    voices = {"deep": ToneVoice(100), "default": ToneVoice(150)}
    listener = PitchListener(180)  # converted speech (200 Hz) is not understood, the default as it is is
    speaker = profile(100, "male", (0.0, 1.0), name="S0")
    matching.assign_voices([speaker], voices, "es", {"S0": "hola"}, 2, ("default",),
                           converter=ConvertingMatcher(), listener=listener, max_wer_over_default=0.05)
    assert references == [0.0]  # converted, the default is heard at WER 1
    assert listener.heard == 3  # default as it is; converted, neither is understood: default and deep converted


def test_speaker_lines_give_each_line_the_time_of_its_segment():
    from tasks.tts.matching import speaker_lines, speaker_texts

    segments = [SimpleNamespace(speaker="A", text="short", start=0.0, end=1.0),
                SimpleNamespace(speaker="A", text="a much longer line", start=2.0, end=4.5),
                SimpleNamespace(speaker="B", text="hello there", start=5.0, end=6.0)]
    assert speaker_lines(segments, max_chars=10) == {"A": (("a much longer line", 2.5),), "B": (("hello there", 1.0),)}
    assert speaker_lines(segments, max_chars=100)["A"] == (("a much longer line", 2.5), ("short", 1.0))
    assert speaker_texts(segments, max_chars=100)["A"] == "a much longer line short"
    # the stage's own slot for each line (its silence after included) where it hands them
    assert speaker_lines(segments, max_chars=100, seconds={"a": 9.0})["A"] == (("a much longer line", 2.5), ("short", 1.0))
    segments = [SimpleNamespace(id=index, **vars(s)) for index, s in enumerate(segments)]
    assert speaker_lines(segments, max_chars=100, seconds={0: 1.25, 1: 2.75})["A"] == (("a much longer line", 2.75),
                                                                                       ("short", 1.25))


def test_a_line_said_again_is_heard_once_in_its_shortest_slot():
    from tasks.tts.matching import speaker_lines

    segments = [SimpleNamespace(speaker="A", text="a line said twice", start=0.0, end=3.0),
                SimpleNamespace(speaker="A", text="another", start=4.0, end=5.0),
                SimpleNamespace(speaker="A", text="A line  said twice", start=10.0, end=12.0),
                SimpleNamespace(speaker="B", text="a line said twice", start=20.0, end=22.5)]
    lines = speaker_lines(segments, max_chars=100)
    assert lines["A"] == (("A line  said twice", 2.0), ("another", 1.0))   # the second time, in 2 s, is the one heard
    assert lines["B"] == (("a line said twice", 2.5),)                    # another speaker's line is theirs
    # the repeat takes no room from the script: the next line still fits under the cap
    assert speaker_lines(segments, max_chars=20)["A"] == (("A line  said twice", 2.0), ("another", 1.0))


@pytest.mark.parametrize("slot, cap, late", [
    (2.8, 1.4, 0.0),    # its pauses shortened: fits at its own pace
    (2.0, 1.4, 0.0),    # a faster rate fits it
    (1.0, 1.4, 0.46),   # at 1.4x: 1.14 s of words and about 0.3 s of pauses, 0.46 s past the slot
    (1.5, 1.3, 0.04),   # one correction (1.28x) short of the rate it needs, over the cap: 0.04 s late at 1.3x
    (1.5, 2.0, 0.0),    # one correction short of the rate it needs, within the cap: the stage corrects further
])
def test_an_audition_knows_how_late_a_line_would_end_at_the_fastest_rate(slot, cap, late):
    from tasks.tts.audition import hear
    from tests.voice_doubles import PitchEncoder

    speaker = profile(100, "male", (0.0, 1.0), name="S0")
    rendering = hear(PausingVoice(), (("w w w w", slot), ("w", None)), speaker, Pace(cap, 0.1), None, PitchEncoder())
    assert rendering.late_s == pytest.approx(late, abs=0.015)


def test_render_fits_each_line_to_its_own_slot():
    voice = PausingVoice()
    speech = render(voice, (("w w w w", 2.8), ("w w w w", 2.0), ("w", None)), Pace(1.4, 0.1), gap_s=0.5)
    assert voice.calls[0] == 1.0 and max(voice.calls) > 1.0 and voice.calls[-1] == 1.0
    assert len(speech) / RATE == pytest.approx(2.8 + 0.5 + 2.0 + 0.5 + 3.1, abs=0.25)


@pytest.mark.slow
def test_listener_hears_what_kokoro_says_and_not_noise():
    from tasks.asr.backends import FasterWhisper
    from tasks.models import ModelNotInstalled, resolve
    from tasks.tts.audition import Listener
    from tasks.tts.voices import KokoroVoice, VoiceError

    try:
        resolve("whisper-base")
        voice = KokoroVoice("es", style="jf_tebukuro")
        text = "Nos vemos mañana por la mañana en la estación."
        speech = voice.synthesize(text)
    except (ModelNotInstalled, VoiceError, ImportError) as error:
        pytest.skip(f"models not installed: {error}")
    listener = Listener(FasterWhisper(progress=False), "es-plain")
    assert listener.word_error_rate(speech, voice.sample_rate, text) <= 0.2
    noise = np.random.default_rng(0).normal(0, 0.05, voice.sample_rate * 2).astype(np.float32)
    assert listener.word_error_rate(noise, voice.sample_rate, text) >= 0.8


def test_hearing_transcribes_each_rendering_once_and_renders_a_default_only_for_the_reference():
    from tasks.tts.audition import Hearing, Rendering

    tone = ToneVoice(150).synthesize("hola")
    converted = ToneVoice(200).synthesize("hola")
    heard = {"default": Rendering(0.5, tone, tone, 16000),          # judged as it is
             "other": Rendering(0.6, converted, tone.copy(), 16000)}  # judged converted
    listener = PitchListener(180)
    hearing = Hearing(listener, heard, {"default": ToneVoice(150), "other": ToneVoice(100)}, ("default",), "hola", Pace())
    assert hearing.wer("default") == 0.0 and hearing.reference() == 0.0 and listener.heard == 1
    assert hearing.wer("other") == 1.0 and hearing.wer("other") == 1.0 and listener.heard == 2
    voices = {"default": ToneVoice(150), "other": ToneVoice(100)}
    elsewhere = Hearing(listener, {"other": heard["other"]}, voices, ("default", "missing"), "hola", Pace())
    assert elsewhere.reference() == 0.0 and listener.heard == 3  # the default said the lines, as it is
    assert Hearing(listener, heard, voices, (), "hola", Pace()).reference() is None


class ShortLinesMatcher:
    """A converter double that makes speech under a second a 300 Hz tone (past what PitchListener(180)
    understands) and longer speech a 100 Hz one: converting lines one by one is not converting them all."""

    select_by_similarity = True

    def match(self, samples, rate, profile, time_scale=1.0):
        t = np.arange(len(samples)) / rate
        f0 = 300 if len(samples) < rate else 100
        return (0.1 * np.sin(2 * np.pi * f0 * t)).astype(np.float32), {"similarity": 0.9}


@pytest.mark.parametrize("converter, wer", [
    (None, 0.0),                   # no converter handed over: the rendering as it was judged
    (ShortLinesMatcher(), 1.0),    # each line converted on its own, as the stage converts each segment
])
def test_hearing_judges_a_converted_candidate_as_the_stage_will_make_it(converter, wer):
    from tasks.tts.audition import Hearing, hear

    speaker = profile(100, "male", (0.0, 1.0), name="S0")
    lines = (("hola", None), ("adiós", None))  # two half-second lines: 1.3 s with the gap
    rendering = hear(ToneVoice(150), lines, speaker, Pace(), ShortLinesMatcher())
    assert len(rendering.lines) == 2 and rendering.likeness == 0.9
    hearing = Hearing(PitchListener(180), {"x": rendering}, {"x": ToneVoice(150)}, (), lines, Pace(),
                      converter=converter, profile=speaker)
    assert hearing.wer("x") == wer


def test_hear_all_gives_the_same_renderings_side_by_side_and_says_the_default_as_it_is():
    from tasks.tts.audition import hear_all
    from tests.voice_doubles import PitchEncoder

    voices = {"deep": ToneVoice(100), "mid": ToneVoice(200), "high": ToneVoice(300)}
    speaker = profile(100, "male", (0.0, 1.0), name="S0")
    lines = (("hola", 0.5), ("adiós", None))
    one, _ = hear_all(voices, lines, speaker, Pace(1.4, 0.1), None, PitchEncoder())
    two, said = hear_all(voices, lines, speaker, Pace(1.4, 0.1), None, PitchEncoder(), 2, {"default": ToneVoice(150)})
    assert list(two) == list(voices) and {n: r.likeness for n, r in two.items()} == {n: r.likeness for n, r in one.items()}
    assert two["mid"].likeness == 1.0 and all(np.array_equal(one[n].speech, two[n].speech) for n in voices)
    assert np.array_equal(said["default"], render(ToneVoice(150), lines, Pace(1.4, 0.1)))
