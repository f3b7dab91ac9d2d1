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

import numpy as np


@dataclass(frozen=True)
class Rendering:
    likeness: float             # GE2E cosine to the speaker (converted where a converter scores variants)
    wer: float | None = None    # re-transcription WER against the text (None: nobody listened)
    unconverted_wer: float | None = None  # the same before conversion (where asked for)


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
         encoder=None, listener: Listener | None = None, listen_unconverted: bool = False) -> Rendering:
    """One candidate's audition of `lines` (a text, or (text, seconds) pairs). With a converter that
    scores its variants (`WorldMatcher` with `select_by_similarity`), the likeness is that of the
    variant it would keep, and the listener hears that variant: a voice is judged as it would sound
    after matching (`listen_unconverted`: and the speech before conversion as well)."""
    from tasks.media import resample
    from tasks.speakers.encoder import RATE, SpeakerEncoder
    from tasks.tts.matching import set_level

    lines = ((lines, None),) if isinstance(lines, str) else tuple(lines)
    text = " ".join(line for line, _ in lines)
    speech = render(voice, lines, max_speed, keep_pause_s)
    rate = voice.sample_rate
    if not len(speech):
        return Rendering(-1.0, 1.0 if listener else None)
    likeness, unconverted_wer = None, None
    if converter is not None and getattr(converter, "select_by_similarity", False):
        converted, report = converter.match(speech, rate, profile)
        if "similarity" in report:
            if listener is not None and listen_unconverted:
                unconverted_wer = round(listener.word_error_rate(speech, rate, text), 4)
            speech, likeness = converted, float(report["similarity"])
    if likeness is None:
        encoder = encoder or SpeakerEncoder()
        heard = resample(speech, rate, RATE)
        if profile.rms_db:
            heard = set_level(heard, RATE, profile.rms_db)
        likeness = float(encoder.embed_utterance(heard, RATE) @ np.asarray(profile.embedding, np.float32))
    wer = listener.word_error_rate(speech, rate, text) if listener is not None else None
    return Rendering(round(likeness, 4), None if wer is None else round(wer, 4), unconverted_wer)


def choose(heard: dict[str, Rendering], reference_wer: float | None, max_wer_over_reference: float) -> list[str]:
    """Auditioned names, most alike first, leaving out those understood worse than `reference_wer`
    (the default voice's, on the same lines) by more than `max_wer_over_reference`. Where every one
    is, the best understood alone is kept."""
    ordered = sorted(sorted(heard), key=lambda name: -heard[name].likeness)
    rated = {name: r.wer for name, r in heard.items() if r.wer is not None}
    if not rated:
        return ordered
    limit = (min(rated.values()) if reference_wer is None else reference_wer) + max_wer_over_reference
    kept = [name for name in ordered if rated.get(name, 0.0) <= limit + 1e-9]
    return kept or [min(ordered, key=lambda name: (rated.get(name, 1.0), ordered.index(name)))]
