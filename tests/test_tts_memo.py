"""A voice that keeps what it said (tasks.tts.memo): the same text at the same rate is synthesized
once per voice, never mixed between voices, and Kokoro gives the same samples every time anyway."""
from __future__ import annotations

import numpy as np
import pytest

from tasks.tts import Pace, synthesize_shortened
from tasks.tts.audition import render
from tasks.tts.memo import RememberingVoice


class CountingVoice:
    """A test double: a tone whose pitch is the voice's, 0.1 s a character at speed 1; its speed
    control is weaker than proportional (as a real voice's can be: the stage corrects it)."""

    sample_rate = 1000

    def __init__(self, f0, name="counting"):
        self.f0, self.name, self.calls = f0, name, []

    def synthesize(self, text, speed=1.0):
        self.calls.append((text, speed))
        t = np.arange(int(len(text) * 0.1 / speed ** 0.8 * self.sample_rate)) / self.sample_rate
        return (0.5 * np.sin(2 * np.pi * self.f0 * t)).astype(np.float32)

    def phonemes(self, text):
        return f"/{text}/"


def test_the_same_text_and_rate_is_synthesized_once_and_handed_out_as_it_was():
    inner = CountingVoice(100)
    voice = RememberingVoice(inner, keep_s=60)
    first = voice.synthesize("hola", 1.0)
    again = voice.synthesize("hola", speed=1)
    faster = voice.synthesize("hola", 1.25)
    assert again is first and inner.calls == [("hola", 1.0), ("hola", 1.25)]
    assert len(faster) < len(first) and (voice.hits, voice.misses) == (1, 2)
    with pytest.raises(ValueError):
        first[0] = 1.0  # read-only: nobody can change what is said next


def test_voices_do_not_share_what_they_said():
    low, high = RememberingVoice(CountingVoice(100), 60), RememberingVoice(CountingVoice(300), 60)
    a, b = low.synthesize("hola"), high.synthesize("hola")
    assert a is not b and not np.array_equal(a, b)
    assert low.synthesize("hola") is a and high.synthesize("hola") is b


def test_nothing_is_kept_past_the_limit_and_the_rest_is_the_voice_itself():
    inner = CountingVoice(100, name="kokoro-x")
    voice = RememberingVoice(inner, keep_s=1.0)  # "hola" is 0.4 s: two fit, the third is not kept
    for text in ("hola", "hole", "holi", "holi"):
        voice.synthesize(text)
    assert [text for text, _ in inner.calls] == ["hola", "hole", "holi", "holi"]
    assert voice.synthesize("hola") is voice.synthesize("hola") and len(inner.calls) == 4
    assert voice.name == "kokoro-x" and voice.sample_rate == 1000 and voice.phonemes("a") == "/a/"
    off = RememberingVoice(CountingVoice(100), keep_s=0)
    off.synthesize("hola"), off.synthesize("hola")
    assert len(off.voice.calls) == 2


def test_the_stage_pass_after_the_audition_synthesizes_only_what_the_audition_did_not():
    # a line too long for its slot: the audition says it at speed 1 and once corrected; the stage's
    # pass asks for those two first (remembered) and only then corrects further
    inner = CountingVoice(100)
    voice = RememberingVoice(inner, keep_s=60)
    render(voice, (("a long line of words", 1.5),), Pace(1.4))
    audition_calls = list(inner.calls)
    speech, speed, _ = synthesize_shortened(voice, "a long line of words", 1.5, Pace(1.4))
    plain, plain_speed, _ = synthesize_shortened(CountingVoice(100), "a long line of words", 1.5, Pace(1.4))
    assert len(audition_calls) == 2 and inner.calls[:2] == audition_calls
    assert len(inner.calls) == 3 and inner.calls[2] not in audition_calls  # the further correction alone
    assert speed == plain_speed and np.array_equal(speech, plain)


@pytest.mark.slow
def test_kokoro_says_the_same_samples_every_time():
    from tasks.models import ModelNotInstalled
    from tasks.tts.voices import KokoroVoice, VoiceError

    voice = KokoroVoice("es", style="jf_nezumi+jm_kumo")
    try:
        first = voice.synthesize("Me gustaría hacer mejor en eso.", speed=1.2)
    except (ModelNotInstalled, VoiceError, ImportError) as error:
        pytest.skip(f"Kokoro not installed: {error}")
    assert np.array_equal(first, voice.synthesize("Me gustaría hacer mejor en eso.", speed=1.2))
