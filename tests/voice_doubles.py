"""Test doubles for voice matching: tone voices told apart by a pitch-reading encoder."""
from __future__ import annotations

import numpy as np


class ToneVoice:
    """A test double: a tone whose pitch tells the fake encoder which voice spoke."""

    sample_rate = 16000

    def __init__(self, f0):
        self.f0 = f0

    def synthesize(self, text, speed=1.0):
        t = np.arange(int(0.5 * self.sample_rate)) / self.sample_rate
        return (0.1 * np.sin(2 * np.pi * self.f0 * t)).astype(np.float32)


class PitchEncoder:
    """Embeds a tone as (0, 1) near 200 Hz and (1, 0) elsewhere."""

    def embed_utterance(self, wav, rate):
        spectrum = np.abs(np.fft.rfft(wav))
        peak = np.fft.rfftfreq(len(wav), 1 / rate)[int(np.argmax(spectrum))]
        return np.array([0.0, 1.0] if abs(peak - 200) < 20 else [1.0, 0.0], np.float32)

    def embed_utterances(self, wavs, rate):
        return np.stack([self.embed_utterance(wav, rate) for wav in wavs])


def matching_with_doubles(monkeypatch, measured_profiles):
    """tasks.tts.matching with the candidates' profiles given and the speaker encoder replaced by PitchEncoder."""
    from tasks.speakers import encoder as encoder_module
    from tasks.tts import matching

    monkeypatch.setattr(matching, "cached_candidate_profiles", lambda voices, language: measured_profiles)
    monkeypatch.setattr(encoder_module, "SpeakerEncoder", PitchEncoder)
    return matching
