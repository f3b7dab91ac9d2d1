"""The audition of candidate voices for one speaker: each says the speaker's own lines at the rate
their slots need; how alike it sounds (GE2E, after the configured conversion) and how well it is
understood (the asr stage's recogniser re-transcribing it) decide which voice the speaker gets.

`Listener` wraps the asr backend (one model load per process); `Rendering` is one candidate's
audition; `choose` is the pure decision.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np


@dataclass(frozen=True, eq=False)
class Rendering:
    likeness: float             # GE2E cosine to the speaker (converted where a converter scores variants)
    speech: np.ndarray          # what is judged: the variant the converter would keep, else `plain`
    plain: np.ndarray           # the lines as the voice says them, unconverted
    rate: int
    text: str                   # the lines' words, what a listener should hear


class Listener:
    """The asr stage's recogniser (any `Recognizer`: `transcribe(path, language)`) hearing a rendering."""

    def __init__(self, recognizer, language: str):
        self.recognizer = recognizer
        self.language = language.split("-")[0]

    def word_error_rate(self, samples: np.ndarray, rate: int, text: str) -> float:
        from tasks.evaluate import word_error_rate
        from tasks.media import SPEECH_RATE, resample, write_wav

        with tempfile.TemporaryDirectory(prefix="audition-") as folder:
            path = write_wav(Path(folder) / "audition.wav", resample(np.asarray(samples, np.float32), rate, SPEECH_RATE),
                             SPEECH_RATE)
            heard = self.recognizer.transcribe(path, language=self.language).text
        return float(word_error_rate(text, heard))


def render(voice, lines, max_speed: float, keep_pause_s: float | None, gap_s: float = 0.3) -> np.ndarray:
    """`voice` saying `lines` ((text, seconds) each) about as the dub will: each at the rate its
    seconds need (None: at its own pace; one correction of the rate, not the stage's several: an
    audition hears every candidate), `gap_s` of silence between them."""
    from tasks.tts import synthesize_shortened

    pieces = []
    for text, slot_s in lines:
        speech = voice.synthesize(text) if not slot_s else synthesize_shortened(voice, text, slot_s, max_speed,
                                                                                   keep_pause_s, attempts=1)[0]
        pieces += [np.asarray(speech, np.float32), np.zeros(int(gap_s * voice.sample_rate), np.float32)]
    return np.concatenate(pieces[:-1]) if pieces else np.zeros(0, np.float32)


def hear(voice, lines, profile, max_speed: float = 1.0, keep_pause_s: float | None = None, converter=None,
         encoder=None) -> Rendering:
    """One candidate's audition of `lines` (a text, or (text, seconds) pairs). With a converter that
    scores its variants (`WorldMatcher` with `select_by_similarity`), the likeness is that of the
    variant it would keep, and that variant is what a listener hears: a voice is judged as it would
    sound after matching. Nobody listens here: a re-transcription costs about a second, and `choose`
    asks for one only where it decides something."""
    from tasks.media import resample
    from tasks.speakers.encoder import RATE, SpeakerEncoder
    from tasks.tts.matching import set_level

    lines = ((lines, None),) if isinstance(lines, str) else tuple(lines)
    text = " ".join(line for line, _ in lines)
    plain = render(voice, lines, max_speed, keep_pause_s)
    rate = voice.sample_rate
    if not len(plain):
        return Rendering(-1.0, plain, plain, rate, text)
    speech, likeness = plain, None
    if converter is not None and getattr(converter, "select_by_similarity", False):
        converted, report = converter.match(plain, rate, profile)
        if "similarity" in report:
            speech, likeness = converted, float(report["similarity"])
    if likeness is None:
        encoder = encoder or SpeakerEncoder()
        heard = resample(plain, rate, RATE)
        if profile.rms_db:
            heard = set_level(heard, RATE, profile.rms_db)
        likeness = float(encoder.embed_utterance(heard, RATE) @ np.asarray(profile.embedding, np.float32))
    return Rendering(round(likeness, 4), speech, plain, rate, text)


def choose(likeness: dict[str, float], wer_of: Callable[[str], float] | None, reference_wer: float | None,
           max_wer_over_reference: float) -> str:
    """The most alike auditioned name (ties: by name) among those understood no worse than
    `reference_wer` (the default voice's, on the same lines) plus `max_wer_over_reference`; where
    every one is, the best understood (then the most alike). `wer_of(name)` (None: nobody listens)
    is asked in order of likeness and only until a name passes, as every answer costs a
    re-transcription: all of them only where none passes or there is no reference."""
    ordered = sorted(sorted(likeness), key=lambda name: -likeness[name])
    if wer_of is None:
        return ordered[0]
    limit = (min(wer_of(name) for name in ordered) if reference_wer is None else reference_wer) + max_wer_over_reference
    passed = next((name for name in ordered if wer_of(name) <= limit + 1e-9), None)
    return passed if passed is not None else min(ordered, key=lambda name: (wer_of(name), ordered.index(name)))


def listen(listener: Listener, heard: dict[str, Rendering], voices: dict, defaults, lines, max_speed: float,
           keep_pause_s: float | None):
    """The reference WER (the best of the `defaults` voices saying the lines as they are: the plain
    dub, rendered here where one was not auditioned) and a `wer_of(name)` for `choose` that has
    each auditioned name's judged speech transcribed once, when first asked. Returns both and the
    WERs heard so far (name -> WER, filled as `wer_of` is asked)."""
    lines = ((lines, None),) if isinstance(lines, str) else tuple(lines)
    text = " ".join(line for line, _ in lines)

    def wer(samples: np.ndarray, rate: int) -> float:
        return 1.0 if not len(samples) else round(listener.word_error_rate(samples, rate, text), 4)

    wers: dict[str, float] = {}
    reference = None
    for name in (name for name in defaults if name in voices):
        if name in heard:
            rendering = heard[name]
            plain_wer = wer(rendering.plain, rendering.rate)
            if rendering.speech is rendering.plain:  # judged as it is: the same transcription
                wers[name] = plain_wer
        else:
            plain_wer = wer(render(voices[name], lines, max_speed, keep_pause_s), voices[name].sample_rate)
        reference = plain_wer if reference is None else min(reference, plain_wer)

    def wer_of(name: str) -> float:
        if name not in wers:
            wers[name] = wer(heard[name].speech, heard[name].rate)
        return wers[name]

    return reference, wer_of, wers
