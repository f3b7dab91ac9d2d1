"""tts: voice every translated segment, fit it to its original slot, and mix it into the soundtrack.

Timing: a segment starts where the original did and should end where it did, and always before the
next one starts (or the video ends). Too short, its inner pauses are widened (each up to
`max_pause_gain_s`). Too long, it may run `free_after_s` into the silence after it (an end that
late is still on time), then its inner pauses are shortened (each to `keep_pause_s`), then it is
synthesised faster, up to `max_speed` (a synthesis within `slot_tolerance` of its slot is kept as it
is); then stretched (pitch kept, WORLD) toward the original duration within
[`min_time_scale`, `max_time_scale`] (shorter ones are slowed down too); still too long, it borrows
the silence after the segment, then up to `max_early_s` before it (tasks.tts.timing); what is left is
cut with a short fade and reported as the overrun. Under the original speech the soundtrack gives way
to its background (the ingest stage's `background.wav`: the same track with the speech taken out) or,
without one, is ducked by `duck_db`; outside it, everything is kept as it was.

Outputs in `data/tts/<video>/<lang>/`: `speech.wav` (the full dubbed soundtrack), `voice.wav` (the
dubbed voice alone, 16 kHz mono, for visemes) and `segments.json` (how each segment was voiced).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from tasks.artifacts import DubbedSegment, TranslatedSegment


@dataclass(frozen=True)
class Pace:
    """How a line is said to fit its slot, before the timing fit: its inner pauses shortened first
    (each to no less than `keep_pause_s`; None: left as said), then a faster synthesis, up to
    `max_speed`; a synthesis at most `slot_tolerance` (relative) longer than its slot is kept as it
    is and the timing fit takes the rest."""
    max_speed: float = 1.0
    keep_pause_s: float | None = None
    slot_tolerance: float = 0.0


@dataclass(frozen=True)
class Timing:
    max_speed: float = 1.35
    free_after_s: float = 0.25     # silence after the segment a too-long dub runs into before any stretch
    min_time_scale: float = 0.8    # pitch-preserving stretch limits (output / synthesized duration)
    max_time_scale: float = 1.25
    max_total_speed: float = 1.4   # synthesis rate x stretch speed-up, at most
    stretch_dead_band_s: float = 0.1  # no stretch when it would move the end by less than this
    max_early_s: float = 0.08      # silence before the original start a dub may borrow
    max_pause_gain_s: float = 1.0  # a too-short dub's inner pauses are widened first, each by at most this
    keep_pause_s: float | None = None  # a too-long dub's inner pauses are shortened first, each to no less than this
    slot_tolerance: float = 0.0    # a synthesis this much (relative) longer than its slot is not said again faster
    start_tolerance_s: float = 0.1  # what the timing report counts as on time
    end_tolerance_s: float = 0.3
    fade_s: float = 0.03
    duck_db: float = -30.0
    duck_ramp_s: float = 0.08
    duck_pad_s: float = 0.1

    @property
    def pace(self) -> Pace:
        return Pace(self.max_speed, self.keep_pause_s, self.slot_tolerance)

    @property
    def late_after_s(self) -> float:
        """How far past its aimed length (`aimed_lengths`) a line may run and still end on time: what
        the end tolerance leaves beyond the silence the line may already run into."""
        return max(self.end_tolerance_s - self.free_after_s, 0.0)


def slots(segments: tuple[TranslatedSegment, ...], duration: float) -> list[tuple[float, float]]:
    """The window each segment may fill: from its own start to the next start (or the end)."""
    ordered = sorted(segments, key=lambda s: s.start)
    bounds = []
    for index, segment in enumerate(ordered):
        limit = ordered[index + 1].start if index + 1 < len(ordered) else duration
        bounds.append((segment.start, max(segment.start, min(limit, duration))))
    return bounds


def aimed_lengths(segments: tuple[TranslatedSegment, ...], duration: float, free_after_s: float) -> dict[int, float]:
    """segment id -> the seconds its synthesis aims at: the original segment's length plus up to
    `free_after_s` of the silence after it (an end that late is still on time, and it spares the
    line a faster rate); the same slot the timing fit then lets it fill before any stretch."""
    ordered = sorted(segments, key=lambda s: s.start)
    aims = {}
    for segment, (start, latest) in zip(ordered, slots(ordered, duration)):
        end = min(segment.end, latest)
        aims[segment.id] = round(max(end - start, 0.0) + min(free_after_s, max(latest - end, 0.0)), 4)
    return aims


def speed_for(natural_s: float, slot_s: float, max_speed: float) -> float:
    """The synthesis speed that makes `natural_s` of speech fit `slot_s`, capped at `max_speed`."""
    if slot_s <= 0 or natural_s <= slot_s:
        return 1.0
    return float(min(max_speed, natural_s / slot_s))


def synthesize_to_fit(voice, text: str, slot_s: float, max_speed: float, attempts: int = 4) -> tuple[np.ndarray, float]:
    """Synthesise `text`, faster where needed so it fits `slot_s`; a voice's speed control is not
    exactly proportional, so the speed is corrected from each attempt's measured length."""
    speech, speed, _ = synthesize_shortened(voice, text, slot_s, Pace(max_speed), attempts)
    return speech, speed


def synthesize_shortened(voice, text: str, slot_s: float, pace: Pace,
                         attempts: int = 4) -> tuple[np.ndarray, float, tuple[tuple[float, float], ...]]:
    """`synthesize_to_fit` at `pace`: a too-long synthesis first loses silence from its inner pauses
    and only what is still too long speeds up. Returns the speech, the speed and the pauses
    shortened (`tasks.tts.timing.shorten_pauses`)."""
    from tasks.tts.timing import shorten_pauses

    def shortened(speech):
        if pace.keep_pause_s is None:
            return speech, ()
        return shorten_pauses(speech, voice.sample_rate, len(speech) / voice.sample_rate - slot_s, pace.keep_pause_s)

    speed = 1.0
    speech, removed = shortened(voice.synthesize(text))
    for _ in range(attempts):
        natural_s = len(speech) / voice.sample_rate
        wanted = min(pace.max_speed, speed_for(natural_s * speed, slot_s, pace.max_speed) * 1.01)
        if natural_s <= slot_s * (1 + pace.slot_tolerance) or wanted <= speed + 1e-3:
            break
        speed = wanted
        speech, removed = shortened(voice.synthesize(text, speed=speed))
    return speech, speed, removed


def fit_to_slot(samples: np.ndarray, rate: int, slot_s: float, fade_s: float) -> tuple[np.ndarray, float]:
    """Cut `samples` to the slot with a fade-out; return them and the seconds that were cut."""
    limit = int(round(slot_s * rate))
    if len(samples) <= limit:
        return samples, 0.0
    cut = samples[:limit].copy()
    fade = min(int(fade_s * rate), len(cut))
    if fade:
        cut[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=cut.dtype)
    return cut, (len(samples) - limit) / rate


def duck_envelope(length: int, rate: int, spans: list[tuple[float, float]], timing: Timing) -> np.ndarray:
    """Gain per sample: 1 outside the spans, `duck_db` inside, with linear ramps at both edges."""
    floor = 10 ** (timing.duck_db / 20)
    envelope = np.ones(length, dtype=np.float32)
    ramp = max(1, int(timing.duck_ramp_s * rate))
    for start, end in spans:
        first = max(0, int((start - timing.duck_pad_s) * rate))
        last = min(length, int((end + timing.duck_pad_s) * rate))
        if last <= first:
            continue
        shape = np.full(last - first, floor, dtype=np.float32)
        edge = min(ramp, (last - first) // 2)
        if edge:
            shape[:edge] = np.linspace(1.0, floor, edge)
            shape[-edge:] = np.linspace(floor, 1.0, edge)
        envelope[first:last] = np.minimum(envelope[first:last], shape)
    return envelope


def active_rms(samples: np.ndarray, rate: int, spans: list[tuple[float, float]]) -> float:
    """RMS of a mono signal inside the spans (where speech is)."""
    pieces = [samples[int(a * rate):int(b * rate)] for a, b in spans]
    pieces = [p for p in pieces if len(p)]
    if not pieces:
        return 0.0
    joined = np.concatenate(pieces)
    return float(np.sqrt(np.mean(np.square(joined), dtype=np.float64)))


def mix(soundtrack: np.ndarray, rate: int, dub: np.ndarray, original_spans: list[tuple[float, float]],
        timing: Timing, dub_spans: list[tuple[float, float]], background: np.ndarray | None = None) -> np.ndarray:
    """Under the original speech, the soundtrack without its speech (`background`, same shape) or,
    without one, the soundtrack ducked by `duck_db`; the dub levelled to the original speech and
    added to every channel."""
    mono_original = soundtrack.mean(axis=1)
    target = active_rms(mono_original, rate, original_spans)
    current = active_rms(dub, rate, dub_spans)
    gain = target / current if current > 1e-6 and target > 1e-6 else 1.0
    if background is None:
        ducked = soundtrack * duck_envelope(len(soundtrack), rate, original_spans, timing)[:, None]
    else:  # the same ramps, from the soundtrack to its background and back
        inside = 1.0 - duck_envelope(len(soundtrack), rate, original_spans, replace(timing, duck_db=-math.inf))[:, None]
        ducked = soundtrack * (1.0 - inside) + background[:len(soundtrack)] * inside
    mixed = ducked + (dub * gain)[:, None]
    peak = float(np.max(np.abs(mixed))) if len(mixed) else 0.0
    return mixed / peak * 0.98 if peak > 0.98 else mixed


def report_row(segment: TranslatedSegment, slot: tuple[float, float], voice: str, speed: float,
               placed_s: float, overrun: float, phonemes: str, conversion: str = "", start: float | None = None) -> DubbedSegment:
    start = segment.start if start is None else start  # a dub may start a little early (borrowed silence)
    return DubbedSegment(segment.id, round(start, 3), round(start + placed_s, 3), round(slot[1], 3),
                         voice, round(speed, 3), round(placed_s, 3), round(overrun, 3), segment.text, phonemes,
                         segment.speaker, conversion)


def describe(conversion: dict) -> str:
    """A voice conversion report as one short line: `world f0_from_hz=210 f0_to_hz=118 ...`."""
    details = " ".join(f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}"
                       for key, value in conversion.items() if key != "conversion")
    return f"{conversion.get('conversion', '')} {details}".strip()
