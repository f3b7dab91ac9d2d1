"""The audition of candidate voices for one speaker: each says the speaker's own lines at the rate
their slots need; whether its lines end on time at the fastest rate allowed, how alike it sounds
(GE2E, after the configured conversion) and how well it is understood (the asr stage's recogniser
re-transcribing it) decide which voice the speaker gets.

`Listener` wraps the asr backend (one model load per process); `Rendering` is one candidate's
audition; `Hearing` re-transcribes renderings when first asked to (about a second each);
`choose` is the decision, asking for as few transcriptions as decide it.
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
    late_s: float = 0.0         # how far its longest line runs past its seconds at the fastest rate allowed
    lines: tuple = ()           # `plain` line by line (no gaps), as the stage converts each segment


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


def as_lines(lines) -> tuple:
    """(text, seconds) pairs of `lines`: a text alone is one line said at its own pace (None)."""
    return ((lines, None),) if isinstance(lines, str) else tuple(lines)


def render(voice, lines, pace, gap_s: float = 0.3) -> np.ndarray:
    """`voice` saying `lines` ((text, seconds) each) about as the dub will: each at the rate its
    seconds need (None: at its own pace; one correction of the rate, not the stage's several: an
    audition hears every candidate; `pace`: tasks.tts.Pace), `gap_s` of silence between them."""
    return joined([speech for speech, _ in say_lines(voice, lines, pace)], voice.sample_rate, gap_s)


def say_lines(voice, lines, pace) -> list[tuple[np.ndarray, float]]:
    """Each of `lines` as `render` says it, with how far it would run past its seconds at the fastest
    rate `pace` allows (0 where it fits, or a faster rate would: the stage corrects the rate further)."""
    from tasks.tts import synthesize_shortened

    said = []
    for text, slot_s in lines:
        if not slot_s:
            said.append((np.asarray(voice.synthesize(text), np.float32), 0.0))
            continue
        speech, speed, _ = synthesize_shortened(voice, text, slot_s, pace, attempts=1)
        length_s = len(speech) / voice.sample_rate
        # still too long after its one correction: at the fastest rate, about as much shorter as faster
        late = length_s * speed / pace.max_speed - slot_s if length_s > slot_s else 0.0
        said.append((np.asarray(speech, np.float32), round(max(late, 0.0), 4)))
    return said


def joined(lines, rate: int, gap_s: float = 0.3) -> np.ndarray:
    """The samples of `lines` one after another, `gap_s` of silence between them."""
    pieces = []
    for speech in lines:
        pieces += [speech, np.zeros(int(gap_s * rate), np.float32)]
    return np.concatenate(pieces[:-1]) if pieces else np.zeros(0, np.float32)


def hear(voice, lines, profile, pace=None, converter=None, encoder=None) -> Rendering:
    """One candidate's audition of `lines` (a text, or (text, seconds) pairs). With a converter that
    scores its variants (`WorldMatcher` with `select_by_similarity`), the likeness is that of the
    variant it would keep, and that variant is what a listener hears: a voice is judged as it would
    sound after matching. Nobody listens here: a re-transcription costs about a second, and `choose`
    asks for one only where it decides something."""
    from tasks.media import resample
    from tasks.speakers.encoder import RATE, SpeakerEncoder
    from tasks.tts import Pace
    from tasks.tts.matching import set_level

    lines = as_lines(lines)
    said = say_lines(voice, lines, pace or Pace())
    pieces, late_s = tuple(speech for speech, _ in said), max((late for _, late in said), default=0.0)
    plain, rate = joined(pieces, voice.sample_rate), voice.sample_rate
    if not len(plain):
        return Rendering(-1.0, plain, plain, rate, late_s, pieces)
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
    return Rendering(round(likeness, 4), speech, plain, rate, late_s, pieces)


def hear_all(voices: dict, lines, profile, pace, converter, encoder, workers: int = 1,
             saying: dict | None = None) -> tuple[dict[str, Rendering], dict[str, np.ndarray]]:
    """`hear` for each of `voices` (name -> Voice), and `render` alone for each of `saying` (the
    default voices a listener may need as they are: see `Hearing`), `workers` at a time. A rendering
    is the same whichever thread makes it (the ONNX, WORLD and torch kernels give the same numbers),
    and half of an audition (WORLD analysis, GE2E's small batches) keeps one core busy while the
    other can synthesize. Returns name -> Rendering and name -> the samples said."""
    saying = saying or {}
    jobs = [(hear, (voice, lines, profile, pace, converter, encoder)) for voice in voices.values()]
    jobs += [(render, (voice, lines, pace)) for voice in saying.values()]
    if workers <= 1 or len(jobs) <= 1:
        done = [job(*args) for job, args in jobs]
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="audition") as pool:
            done = [future.result() for future in [pool.submit(job, *args) for job, args in jobs]]
    return dict(zip(voices, done[:len(voices)])), dict(zip(saying, done[len(voices):]))


def choose(likeness: dict[str, float], wer_of: Callable[[str], float] | None,
           reference_of: Callable[[], float | None], max_wer_over_reference: float, passing_wer: float = 0.0,
           late: frozenset[str] = frozenset()) -> str:
    """The most alike auditioned name (ties: by name) among those understood no worse than the
    reference WER (`reference_of()`: the default voice's on the same lines; None: the best heard)
    plus `max_wer_over_reference`, or at `passing_wer` or better whatever the reference; where every
    one is worse, the best understood (then the most alike). Nobody listening (`wer_of` None), the
    most alike. Every WER costs a re-transcription, so `wer_of` is asked in order of likeness until
    a name passes, and the reference only for a name that does not pass whatever it is (a WER above
    both margins). The `late` names (a line would end late at the fastest rate allowed) come after
    every other: timing is the dub's promise, likeness a preference."""
    ordered = sorted(sorted(likeness), key=lambda name: (name in late, -likeness[name]))
    if wer_of is None:
        return ordered[0]
    limit = None
    for name in ordered:
        wer = wer_of(name)
        if wer <= max(max_wer_over_reference, passing_wer) + 1e-9:  # passes whatever the reference (a WER is >= 0)
            return name
        if limit is None:
            reference = reference_of()
            limit = (min(wer_of(other) for other in ordered) if reference is None else reference) + max_wer_over_reference
        if wer <= limit + 1e-9:
            return name
    return min(ordered, key=lambda name: (wer_of(name), ordered.index(name)))


class Hearing:
    """What `listener` makes of one speaker's audition (`heard`: name -> Rendering), each
    transcription made when first asked for: `wer(name)` of the judged speech, `reference()` the
    best WER of the `defaults` voices saying the lines as they are (the plain dub; `said` or rendered
    here where one was not auditioned; None without one). `wers` and `reference_wer` hold what was heard.
    With the `converter` that judged the renderings, a converted candidate is heard as the stage will
    make it: each line converted on its own toward `profile` (one conversion of all the lines can keep
    another variant than each segment's: head_turns_woman fr was understood at 37% that way and its
    dub at 100%)."""

    def __init__(self, listener: Listener, heard: dict[str, Rendering], voices: dict, defaults, lines,
                 pace, said: dict[str, np.ndarray] | None = None, converter=None, profile=None):
        self.listener, self.heard, self.voices = listener, heard, voices
        self.converter, self.profile = converter, profile
        self.said = dict(said or {})  # name -> a default voice's rendering already made (`hear_all`)
        self.defaults = [name for name in defaults if name in voices]
        self.lines = as_lines(lines)
        self.text = " ".join(line for line, _ in self.lines)
        self.pace = pace
        self.wers: dict[str, float] = {}
        self.reference_wer: float | None = None
        self._transcriptions: dict[int, tuple[np.ndarray, float]] = {}  # id -> (samples kept alive, WER)

    def _transcribed(self, samples: np.ndarray, rate: int) -> float:
        """The WER of `samples`, transcribed once (a default voice judged as it is: the same samples)."""
        if id(samples) not in self._transcriptions:
            wer = 1.0 if not len(samples) else round(self.listener.word_error_rate(samples, rate, self.text), 4)
            self._transcriptions[id(samples)] = (samples, wer)
        return self._transcriptions[id(samples)][1]

    def wer(self, name: str) -> float:
        if name not in self.wers:
            self.wers[name] = self._transcribed(self._judged(name), self.heard[name].rate)
        return self.wers[name]

    def _judged(self, name: str) -> np.ndarray:
        rendering = self.heard[name]
        if self.converter is None or self.profile is None or not rendering.lines or rendering.speech is rendering.plain:
            return rendering.speech
        return joined([self.converter.match(line, rendering.rate, self.profile)[0] for line in rendering.lines],
                      rendering.rate)

    def reference(self) -> float | None:
        if self.reference_wer is None and self.defaults:
            plain = [self._transcribed(self.heard[name].plain, self.heard[name].rate) if name in self.heard else
                     self._transcribed(self._said(name), self.voices[name].sample_rate) for name in self.defaults]
            self.reference_wer = min(plain)
        return self.reference_wer

    def _said(self, name: str) -> np.ndarray:
        if name not in self.said:
            self.said[name] = render(self.voices[name], self.lines, self.pace)
        return self.said[name]
