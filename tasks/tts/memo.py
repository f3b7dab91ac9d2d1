"""A voice that keeps what it said: the audition already synthesizes the chosen voice saying the
speaker's lines at the rates their slots need, which are the first syntheses the stage's own pass
asks for on the same lines; a Kokoro synthesis costs about half a second per clause and gives the
same samples every time (tests/test_tts_memo.py), so it is looked up instead.

A voice whose engine samples noise (Piper) then says a line as the audition heard it rather than
a new draw of it.
"""
from __future__ import annotations

import numpy as np


class RememberingVoice:
    """`voice`, keeping its syntheses (by `text` and `speed`) until they add up to `keep_s` seconds
    of audio; later ones are not kept (the audition's come first, and those are the ones asked for
    again). Every other attribute is the voice's own. The arrays handed out are read-only: a caller
    that changed one in place would change what is said next."""

    def __init__(self, voice, keep_s: float):
        self.voice = voice
        self.keep_s = float(keep_s)
        self._said: dict[tuple[str, float], np.ndarray] = {}
        self._kept_samples = 0
        self.hits = self.misses = 0

    def __getattr__(self, name):
        # only reached for attributes this wrapper lacks: name, sample_rate (read live: the espeak
        # voice sets its rate on synthesis), phonemes, style...
        if name == "voice":  # not set yet (copy/pickle): no recursion
            raise AttributeError(name)
        return getattr(self.voice, name)

    def __repr__(self) -> str:
        return repr(self.voice)

    def synthesize(self, text: str, speed: float = 1.0) -> np.ndarray:
        key = (text, float(speed))
        if key in self._said:
            self.hits += 1
            return self._said[key]
        self.misses += 1
        speech = np.asarray(self.voice.synthesize(text, speed=speed))
        speech.setflags(write=False)
        if self._kept_samples + len(speech) <= self.keep_s * self.voice.sample_rate:
            self._said[key] = speech
            self._kept_samples += len(speech)
        return speech
