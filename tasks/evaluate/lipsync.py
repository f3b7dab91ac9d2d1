"""Lip-sync measured independently of the synthesizer (issue 6).

Phone times come from the audio alone (Whisper word timings + espeak-ng phones per word, see
`tasks.visemes.align.AsrAligner`); the mouth comes from 68-point landmarks re-detected on the video
(inner-lip gap, points 62-64 against 68-66 in 1-based numbering, over the inter-ocular distance:
`tasks.face.geometry.mouth_opening`), or, with `landmarker="mesh"` (conf/evaluate
`lipsync_landmarker`), from MediaPipe's face mesh placed by those points (`tasks.evaluate.mesh`;
measured and left out: docs/lipsync.md, "Face mesh"). Three numbers:

* bilabial closure rate: share of p/b/m phones (the table's closure classes) during which the lips
  actually close, on at least one frame within +-1 frame of the phone. A frame is "closed" when its
  gap is in the bottom `closed_fraction` of this speaker's range (5th..95th percentile of the gap
  over the frames inside the speech, not its pauses) and under `max_closed_gap` inter-ocular distances. It comes with its chance level
  (`closure_chance`: the same rate with the phones moved to unrelated times, by circular shifts of
  1 s or more), because a speaker who pauses a lot scores well by chance; `closure_excess` is
  rate - chance.
* open-vowel aperture contrast: mean opening on open vowels (AA, E, O) minus mean opening on
  bilabials, over the speaker's range (95th - 5th percentile). Each phone's opening is the mean of
  the opening interpolated between frames over the phone (a continuous mean, so a phone edge
  crossing a frame instant does not jump it). About 0 when the mouth does not follow the phones,
  negative when it is out of phase, up to about 1.
* envelope-sync confidence (LSE-C-like): the best Pearson correlation of the mouth opening with the
  speech energy envelope (band-passed log energy, `tasks.face.speaking.speech_envelope`) within
  +-200 ms, minus the median correlation over all lags within +-1 s; with the lag of that best
  correlation as the audio-visual offset (`sync_offset_ms` > 0: the mouth moves after the sound).
  Correlations are on a 100 Hz grid, averaged over 2 s windows every 0.5 s (as SyncNet averages
  over short windows).

Validation (scripts/lipsync_validate.py, 7 real clips, own audio vs delayed 0.5 s vs another
clip's): closure excess and aperture contrast separate own audio on the 5 clips with a visible
mouth; the envelope confidence is weak (4/7): trust it only beside the other two.

A clip has only 2-10 bilabials, so every measurement also carries, in `extra`, what the two
phone-based figures rest on (per bilabial: hit and its own chance; per phone: its opening) and their
90% bootstrap intervals over those phones (`closure_excess_interval`, `aperture_contrast_interval`;
`ratio_interval` for dub / source); the figures pooled over many clips' phones are the ones to judge
by. `extra.phone_offset_ms` reads the audio-visual offset from the phones (the delay at which the
aperture contrast peaks), a check on the envelope's.

Where the acoustic instants at which the lips part are known (the synthesizer's own phone times of
a dub, hand-checked bursts on a source), `bilabial_releases` + `reopening_offsets` read the offset
from events instead: per /p b m/ released into a vowel, the delay to the lips reopening on the
frames. scripts/lipsync_validate.py uses it to check the +-40 ms target on dubs; the measure itself
keeps to ASR phones (independent of the synthesizer).

Pure functions take arrays; `mouth_track`, `phones_for_audio`, `score` and `measure` do the I/O.
Heavy imports (cv2, dlib, faster-whisper, espeak) happen inside functions.
"""
from __future__ import annotations

import dataclasses
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

SYNC_RATE = 100.0          # Hz: the grid the mouth and the envelope are correlated on (10 ms lags)
OPEN_VISEMES = ("AA", "E", "O")  # vowel classes whose target lip gap is >= 0.5 of the range


# --------------------------------------------------------------------------- results

@dataclass
class MouthTrack:
    """Per-frame mouth opening of one face (NaN where it is not found)."""

    fps: float
    opening: np.ndarray        # (F,) inner-lip gap / inter-ocular distance
    track: int = 0             # the measure's face track; SPEAKING_FACES: each moment's speaker's face
    iod_px: float = 0.0        # median inter-ocular distance
    visibility: float = 1.0    # mean mouth visibility of the face stage (0..1: occluders, hands, mics)
    seconds: float = 0.0       # time the face analysis took
    landmarker: str = "dlib"   # what read the lips: "dlib" (68 points) or "mesh" (tasks.evaluate.mesh)

    @property
    def frames(self) -> int:
        return len(self.opening)

    @property
    def coverage(self) -> float:
        return float(np.isfinite(self.opening).mean()) if len(self.opening) else 0.0


@dataclass(frozen=True)
class LipSyncScores:
    closure_rate: float | None       # share of bilabials with a lip closure within +-1 frame
    closure_chance: float | None     # the same with the phones at unrelated times
    closure_excess: float | None     # closure_rate - closure_chance: what sync adds over chance
    closures: int                    # bilabial phones counted
    aperture_contrast: float | None  # (open vowels - bilabials) / speaker's range
    open_vowels: int                 # open-vowel phones counted
    sync_confidence: float | None    # best corr within +-200 ms minus median over +-1 s
    sync_offset_ms: float | None     # lag of the best correlation; > 0: mouth after sound
    sync_correlation: float | None   # the best correlation itself
    face_coverage: float             # share of frames with the face found
    phones: int
    words: int
    seconds: float = 0.0             # wall time of this measurement (ASR + scoring; + face if run)
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        """Plain JSON-ready values: floats rounded to 4 places, NaN as None."""
        return _plain(dataclasses.asdict(self))


def _plain(value):
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return round(float(value), 4) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


# --------------------------------------------------------------------------- pure helpers

def phone_frames(start: float, end: float, fps: float, frames: int, tolerance: int = 0) -> tuple[int, int]:
    """Inclusive frame range [lo, hi] of a phone: the frames whose instants (k / fps) fall inside
    [start, end] (the nearest frame for a phone between two frames), widened by `tolerance` frames
    each side and clipped to the clip. hi < lo when the phone lies outside the clip."""
    lo = int(np.ceil(start * fps - 1e-3))  # 1e-3 frame: a phone edge on a frame instant includes it
    hi = int(np.floor(end * fps + 1e-3))
    if hi < lo:
        lo = hi = int(round(0.5 * (start + end) * fps))
    lo, hi = lo - tolerance, hi + tolerance
    return max(lo, 0), min(hi, frames - 1)


MIN_SPEECH_FRAMES = 25   # fewer speech frames than this (1 s at 25 fps): the range over all frames


def speaker_range(opening: np.ndarray, low: float = 5.0, high: float = 95.0) -> tuple[float, float]:
    """The speaker's range of mouth opening: (5th, 95th) percentile of the frames with a face."""
    values = np.asarray(opening, dtype=np.float64)
    values = values[np.isfinite(values)]
    if not values.size:
        return float("nan"), float("nan")
    return float(np.percentile(values, low)), float(np.percentile(values, high))


def closed_threshold(opening: np.ndarray, closed_fraction: float = 0.2, max_closed_gap: float = 0.08,
                     speech: np.ndarray | None = None) -> float:
    """Gap (inter-ocular units) at or under which a frame counts as lips closed: the bottom
    `closed_fraction` of the speaker's range, never above `max_closed_gap`. The range is read over
    the `speech` frames (a bool per frame; all frames where None or fewer than MIN_SPEECH_FRAMES):
    how far a person's lips shut in the pauses, or how long the pauses are, says nothing of how
    far they shut on a /p b m/."""
    if speech is not None:
        spoken = np.where(speech, opening, np.nan)
        if int(np.isfinite(spoken).sum()) >= MIN_SPEECH_FRAMES:
            opening = spoken
    lo, hi = speaker_range(opening)
    if not np.isfinite(lo):
        return float("nan")
    return float(min(lo + closed_fraction * (hi - lo), max_closed_gap))


def speech_frames(phones: Sequence, fps: float, frames: int, merge_gap_s: float = 0.4) -> np.ndarray:
    """Frames inside the speech of timed `phones` (objects with start and end, seconds): from each
    phone's start to its end, pauses shorter than `merge_gap_s` joined; frame k shows time k / fps."""
    spans: list[list[float]] = []
    for start, end in sorted((float(p.start), float(p.end)) for p in phones):
        if spans and start - spans[-1][1] <= merge_gap_s:
            spans[-1][1] = max(spans[-1][1], end)
        else:
            spans.append([start, end])
    times = np.arange(frames) / fps
    inside = np.zeros(frames, dtype=bool)
    for start, end in spans:
        inside |= (times >= start) & (times <= end)
    return inside


def closure_rate(opening: np.ndarray, fps: float, intervals: Sequence[tuple[float, float]], threshold: float,
                 tolerance: int = 1) -> tuple[float | None, int]:
    """Share of `intervals` (seconds) in which the gap reaches `threshold` on at least one frame
    within +-`tolerance` frames. Phones with no face frame in their window are not counted.
    Returns (rate or None when nothing was counted, phones counted)."""
    opening = np.asarray(opening, dtype=np.float64)
    hits = counted = 0
    for start, end in intervals:
        lo, hi = phone_frames(start, end, fps, len(opening), tolerance)
        if hi < lo:
            continue
        window = opening[lo:hi + 1]
        window = window[np.isfinite(window)]
        if not window.size:
            continue
        counted += 1
        hits += int(window.min() <= threshold)
    return (hits / counted if counted else None), counted


def closure_chance(opening: np.ndarray, fps: float, intervals: Sequence[tuple[float, float]], threshold: float,
                   tolerance: int = 1, min_shift_s: float = 1.0) -> float | None:
    """The closure rate the same phones would get at unrelated times: the mean rate over circular
    shifts of all phone times by every whole frame from `min_shift_s` to duration - `min_shift_s`."""
    duration = len(opening) / fps
    shifts = np.arange(int(np.ceil(min_shift_s * fps)), int(np.floor((duration - min_shift_s) * fps)) + 1) / fps
    if not len(intervals) or not len(shifts):
        return None
    rates = []
    for shift in shifts:
        moved = [((s + shift) % duration, (s + shift) % duration + (e - s)) for s, e in intervals]
        rate, n = closure_rate(opening, fps, moved, threshold, tolerance)
        if rate is not None:
            rates.append(rate)
    return float(np.mean(rates)) if rates else None


def closure_evidence(opening: np.ndarray, fps: float, intervals: Sequence[tuple[float, float]], threshold: float,
                     tolerance: int = 1, min_shift_s: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Per bilabial with a face in its window: (hit: 1 when the lips close within +-`tolerance`
    frames of it, else 0; its chance: the share of unrelated times, circular shifts of it by every
    whole frame from `min_shift_s` to duration - `min_shift_s`, at which it would hit). Their means
    are `closure_rate` and (about) `closure_chance`; kept per phone so that the closure excess can
    be given with an interval over the bilabials actually counted."""
    rows = [row for row in closure_rows(opening, fps, intervals, threshold, tolerance, min_shift_s)
            if row[3] is not None]
    return (np.asarray([hit for _, _, hit, _ in rows], dtype=np.float64),
            np.asarray([chance for *_, chance in rows], dtype=np.float64))


def closure_rows(opening: np.ndarray, fps: float, intervals: Sequence[tuple[float, float]], threshold: float,
                 tolerance: int = 1, min_shift_s: float = 1.0) -> list[tuple[float, float, float, float | None]]:
    """(start, end, hit, chance) of each bilabial with a face in its window (see `closure_evidence`);
    chance None where no unrelated time fits (a video under 2 `min_shift_s`)."""
    duration = len(opening) / fps
    shifts = np.arange(int(np.ceil(min_shift_s * fps)), int(np.floor((duration - min_shift_s) * fps)) + 1) / fps
    rows = []
    for start, end in intervals:
        hit, counted = closure_rate(opening, fps, [(start, end)], threshold, tolerance)
        if not counted:
            continue
        moved = [closure_rate(opening, fps, [((start + s) % duration, (start + s) % duration + (end - start))],
                              threshold, tolerance)[0] for s in shifts]
        moved = [m for m in moved if m is not None]
        rows.append((start, end, hit, float(np.mean(moved)) if moved else None))
    return rows


def bootstrap_interval(statistic, samples: Sequence[np.ndarray], level: float = 0.9, draws: int = 2000,
                       seed: int = 0) -> tuple[float | None, float | None]:
    """Percentile bootstrap interval of `statistic(*samples)`: each sample (an array whose first axis
    is the unit resampled: one phone) is redrawn with replacement, independently of the others.
    Draws where the statistic is None or not finite are dropped; (None, None) when fewer than half
    remain or a sample has fewer than 2 units."""
    samples = [np.asarray(x, dtype=np.float64) for x in samples]
    if any(len(x) < 2 for x in samples):
        return None, None
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(draws):
        value = statistic(*(x[rng.integers(0, len(x), len(x))] for x in samples))
        if value is not None and np.isfinite(value):
            values.append(value)
    if len(values) < draws // 2:
        return None, None
    tail = 50.0 * (1.0 - level)
    return float(np.percentile(values, tail)), float(np.percentile(values, 100.0 - tail))


def excess_of(evidence: np.ndarray) -> float:
    """Closure excess of per-phone (hit, chance) rows."""
    return float(evidence[:, 0].mean() - evidence[:, 1].mean())


def contrast_of(opens: np.ndarray, closes: np.ndarray, span: float) -> float:
    return float((opens.mean() - closes.mean()) / span)


def side_samples(extra: dict, figure: str) -> tuple[list[np.ndarray], object] | None:
    """The per-phone samples behind one figure of a measurement (its `extra`, see `phone_evidence`)
    and the statistic that turns them into that figure; None when they are missing."""
    if figure == "closure_excess":
        evidence = np.asarray(extra.get("closure_evidence") or [], dtype=np.float64).reshape(-1, 2)
        return ([evidence], excess_of) if len(evidence) else None
    span = extra.get("opening_range")
    opens, closes = extra.get("open_vowel_openings") or [], extra.get("bilabial_openings") or []
    if not span or not opens or not closes:
        return None
    return [np.asarray(opens), np.asarray(closes)], (lambda o, c: contrast_of(o, c, span))


def ratio_interval(dub_extra: dict, source_extra: dict, figure: str, level: float = 0.9
                   ) -> tuple[float | None, float | None]:
    """Bootstrap interval of dub / source for `figure` ("closure_excess" or "aperture_contrast"):
    the dub's phones and the source's are redrawn independently; draws where the source's figure
    is <= 0 give no ratio (None when that is most of them)."""
    dub, source = side_samples(dub_extra, figure), side_samples(source_extra, figure)
    if dub is None or source is None:
        return None, None
    (dub_samples, dub_stat), (source_samples, source_stat) = dub, source
    split = len(dub_samples)

    def statistic(*xs):
        base = source_stat(*xs[split:])
        return dub_stat(*xs[:split]) / base if base > 0 else None

    return bootstrap_interval(statistic, [*dub_samples, *source_samples], level)


def phone_opening(opening: np.ndarray, fps: float, start: float, end: float, step_s: float = 0.01) -> float | None:
    """Mean of the mouth opening, linearly interpolated between frames, over [start, end] (a
    continuous mean: a phone a few ms earlier or later changes it a little, not by a whole frame);
    None where the frames around the phone have no face."""
    opening = np.asarray(opening, dtype=np.float64)
    ok = np.isfinite(opening)
    if ok.sum() < 2 or end < 0 or start > (len(opening) - 1) / fps:
        return None
    times = np.linspace(start, end, max(2, int(np.ceil((end - start) / step_s)) + 1))
    nearest = np.clip(np.round(times * fps).astype(int), 0, len(opening) - 1)
    times = times[ok[nearest]]
    if not times.size:
        return None
    frame_t = np.arange(len(opening)) / fps
    return float(np.interp(times, frame_t[ok], opening[ok]).mean())


def aperture_contrast(opening: np.ndarray, fps: float, open_intervals: Sequence[tuple[float, float]],
                      closure_intervals: Sequence[tuple[float, float]], min_range: float = 1e-3
                      ) -> tuple[float | None, int]:
    """(mean opening on open vowels - mean opening on bilabials) / (95th - 5th percentile of the
    opening). Returns (contrast or None, open vowels counted)."""
    lo, hi = speaker_range(opening)
    opens = [v for s, e in open_intervals if (v := phone_opening(opening, fps, s, e)) is not None]
    closes = [v for s, e in closure_intervals if (v := phone_opening(opening, fps, s, e)) is not None]
    if not opens or not closes or not np.isfinite(lo) or hi - lo < min_range:
        return None, len(opens)
    return float((np.mean(opens) - np.mean(closes)) / (hi - lo)), len(opens)


def aperture_offset(opening: np.ndarray, fps: float, open_intervals: Sequence[tuple[float, float]],
                    closure_intervals: Sequence[tuple[float, float]], max_offset_s: float = 0.2,
                    step_s: float = 0.01) -> tuple[float | None, float | None]:
    """The audio-visual offset read from the phones instead of the energy envelope: the delay
    (ms, within +-`max_offset_s`) by which all phone times must be moved for the aperture contrast
    to peak; > 0: the mouth moves after the sound (the same sign as `sync_offset`). Returns (offset,
    the contrast there); (None, None) when there is no contrast to compute. Ties go to the smallest
    delay."""
    best = best_lag = None
    for lag in sorted(np.arange(-max_offset_s, max_offset_s + 1e-9, step_s), key=abs):
        contrast, _ = aperture_contrast(opening, fps, [(s + lag, e + lag) for s, e in open_intervals],
                                        [(s + lag, e + lag) for s, e in closure_intervals])
        if contrast is not None and (best is None or contrast > best + 1e-9):
            best, best_lag = contrast, float(lag)
    return (None, None) if best is None else (round(1000.0 * best_lag), best)


def bilabial_releases(phones: Sequence, closure_visemes: Sequence[str] = ("PP",), vowel_visemes: Sequence[str] = (),
                      max_gap_s: float = 0.05) -> list[float]:
    """Times (s) at which the lips part into a vowel: the end of every bilabial (p b m) whose next
    phone is a vowel starting within `max_gap_s` (a bilabial before a consonant or a pause opens the
    lips at no sharp acoustic instant: m -> k, p -> w, a final p)."""
    from tasks.visemes.tables import SILENCE

    spoken = [p for p in phones if p.viseme != SILENCE]
    return [float(a.end) for a, b in zip(spoken, spoken[1:])
            if a.viseme in closure_visemes and b.viseme in vowel_visemes and b.start - a.end <= max_gap_s]


def reopening_offsets(opening: np.ndarray, fps: float, releases: Sequence[float], threshold: float,
                      reach_s: float = 0.2, min_rise: float = 0.3, rise_s: float = 0.15) -> np.ndarray:
    """Per acoustic lip release (s), how much later (s; < 0: earlier) the measured lips reopen: the
    instant, linearly interpolated between frames, at which the gap rises through `threshold`
    (closed -> open) nearest the release within +-`reach_s`, counted only where the gap then opens
    by `min_rise` of the speaker's range within `rise_s` (a real opening, not landmark jitter).
    Releases with no such reopening near them are left out. The audio-visual offset read from
    events (lips against sound, frame by frame), where the acoustic release times are known."""
    opening = np.asarray(opening, dtype=np.float64)
    n = len(opening)
    lo, hi = speaker_range(opening)
    if n < 2 or not np.isfinite(threshold) or not np.isfinite(lo):
        return np.zeros(0)
    span = hi - lo
    ahead = max(1, int(round(rise_s * fps)))
    out = []
    for release in releases:
        first = max(0, int(np.floor((release - reach_s) * fps)))
        last = min(n - 2, int(np.ceil((release + reach_s) * fps)))
        best = None
        for k in range(first, last + 1):
            before, after = opening[k], opening[k + 1]
            if not (np.isfinite(before) and np.isfinite(after) and before <= threshold < after):
                continue
            following = opening[k + 1:k + 1 + ahead]
            if np.nanmax(following) < threshold + min_rise * span:
                continue
            instant = (k + (threshold - before) / (after - before)) / fps
            if abs(instant - release) <= reach_s and (best is None or abs(instant - release) < abs(best - release)):
                best = instant
        if best is not None:
            out.append(best - release)
    return np.asarray(out, dtype=np.float64)


def release_offsets(mouth: MouthTrack, phones: Sequence, closure_visemes: Sequence[str] = ("PP",),
                    vowel_visemes: Sequence[str] = ()) -> dict:
    """The audio-visual offset read from events where the audio's phone times are known exactly (a
    dub's own phones: the synthesizer's durations, each /p b m/ on its audio's release): per bilabial
    released into a vowel (`bilabial_releases`), how much later the lips of `mouth` reopen
    (`reopening_offsets`, ms). Returns the releases counted and their times, the delays seen and
    their median (None where no reopening was seen). Not part of the measure, which knows only a
    video and its audio: on the seven real clips the measure's envelope offset reads recordings that
    are in sync within about 30 ms at up to +-200 ms; this reading needs the phones."""
    releases = bilabial_releases(phones, closure_visemes, vowel_visemes)
    from tasks.visemes.tables import SILENCE

    speech = speech_frames([p for p in phones if p.viseme != SILENCE], mouth.fps, len(mouth.opening))
    threshold = closed_threshold(mouth.opening, max_closed_gap=MAX_CLOSED_GAP[mouth.landmarker], speech=speech)
    delays = reopening_offsets(mouth.opening, mouth.fps, releases, threshold)
    return {"releases": len(releases), "times_s": [round(t, 3) for t in releases],
            "offsets_ms": [round(1000 * float(d)) for d in delays],
            "offset_ms": round(1000 * float(np.median(delays))) if len(delays) else None}


def dub_releases(visemes_json: Path | str, language: str, mouth: MouthTrack) -> dict:
    """`release_offsets` of `mouth` at a dub's own phones (the visemes stage's `visemes.json`), with
    the aligner that timed them (`aligner`). Only the aligner where that was not the synthesizer's
    (Kokoro's or Piper's) durations (word timings from speech recognition place no exact instants); {} without the file."""
    from tasks.visemes.schema import read as read_visemes
    from tasks.visemes.tables import load_table

    path = Path(visemes_json)
    if not path.exists():
        return {}
    visemes = read_visemes(path)
    if not visemes.aligner.endswith("-durations"):  # Kokoro's or Piper's own durations
        return {"aligner": visemes.aligner}
    table = load_table(language)
    return {"aligner": visemes.aligner, **release_offsets(mouth, visemes.phones, table.closures, table.vowels)}


def resample_frames(values: np.ndarray, fps: float, rate: float = SYNC_RATE, duration: float | None = None) -> np.ndarray:
    """Per-frame values (frame k at k / fps) on a `rate` Hz grid by linear interpolation; grid
    points whose nearest frame is NaN stay NaN."""
    values = np.asarray(values, dtype=np.float64)
    duration = len(values) / fps if duration is None else duration
    grid = np.arange(int(round(duration * rate))) / rate
    frame_t = np.arange(len(values)) / fps
    ok = np.isfinite(values)
    if ok.sum() < 2:
        return np.full(len(grid), np.nan)
    out = np.interp(grid, frame_t[ok], values[ok])
    nearest = np.clip(np.round(grid * fps).astype(int), 0, len(values) - 1)
    out[~ok[nearest]] = np.nan
    return out


def highpass(values: np.ndarray, rate: float, window_s: float) -> np.ndarray:
    """Subtract a centred moving average of `window_s` seconds (NaN-aware); 0 or less: unchanged."""
    values = np.asarray(values, dtype=np.float64)
    if window_s <= 0:
        return values
    width = max(3, int(round(window_s * rate)) | 1)
    ok = np.isfinite(values)
    filled = np.where(ok, values, 0.0)
    kernel = np.ones(width)
    total = np.convolve(filled, kernel, mode="same")
    count = np.convolve(ok.astype(float), kernel, mode="same")
    return np.where(ok, values - total / np.maximum(count, 1), np.nan)


def _pearson(x: np.ndarray, y: np.ndarray, min_overlap: int) -> float | None:
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < min_overlap:
        return None
    xs, ys = x[ok] - x[ok].mean(), y[ok] - y[ok].mean()
    denominator = np.sqrt((xs ** 2).sum() * (ys ** 2).sum())
    if denominator < 1e-12 * len(xs):
        return None
    return float((xs * ys).sum() / denominator)


def correlation_curve(mouth: np.ndarray, env: np.ndarray, lags: np.ndarray, rate: float = SYNC_RATE,
                      window_s: float = 2.0, hop_s: float = 0.5, min_overlap: int = 20) -> np.ndarray:
    """Correlation of mouth[t] with env[t - lag] for each lag (grid steps), averaged over windows of
    `window_s` every `hop_s` (as SyncNet averages its distances over short windows; the whole clip
    as one window when it is shorter than that or `window_s` <= 0). NaN where nothing overlaps."""
    mouth = np.asarray(mouth, dtype=np.float64)
    env = np.asarray(env, dtype=np.float64)
    n = min(len(mouth), len(env))
    size = int(round(window_s * rate)) if window_s > 0 else n
    if size >= n:
        starts, size = [0], n
    else:
        step = max(1, int(round(hop_s * rate)))
        starts = list(range(0, n - size + 1, step))
    curve = np.full(len(lags), np.nan)
    for i, lag in enumerate(lags):
        values = []
        for a in starts:
            lo, hi = max(a, lag, 0), min(a + size, n + lag, n)  # t in [lo, hi): t and t - lag inside
            if hi - lo < min_overlap:
                continue
            c = _pearson(mouth[lo:hi], env[lo - lag:hi - lag], min_overlap)
            if c is not None:
                values.append(c)
        if values:
            curve[i] = float(np.mean(values))
    return curve


def sync_offset(mouth: np.ndarray, env: np.ndarray, rate: float = SYNC_RATE, max_offset_s: float = 0.2,
                null_s: float = 1.0, window_s: float = 2.0, hop_s: float = 0.5
                ) -> tuple[float | None, float | None, float | None]:
    """LSE-C-like confidence of two signals on one grid: (best correlation within +-max_offset_s
    minus the median over all lags within +-null_s, offset of the best in ms, best correlation).
    Offset > 0: `mouth` follows `env` (mouth[t] ~ env[t - offset]). Correlations are averaged over
    `window_s` windows (see `correlation_curve`)."""
    reach = int(round(null_s * rate))
    near = int(round(max_offset_s * rate))
    lags = np.arange(-reach, reach + 1)
    curve = correlation_curve(mouth, env, lags, rate, window_s, hop_s)
    inside = np.abs(lags) <= near
    if not np.isfinite(curve[inside]).any():
        return None, None, None
    candidates = np.where(inside & np.isfinite(curve), curve, -np.inf)
    best = float(candidates.max())
    ties = np.flatnonzero(candidates >= best - 1e-12)
    best_lag = int(lags[ties[np.argmin(np.abs(lags[ties]))]])
    return best - float(np.nanmedian(curve)), 1000.0 * best_lag / rate, best


def envelope_curve(opening: np.ndarray, fps: float, samples: np.ndarray, rate: int, max_lag_s: float = 0.4,
                   sync_rate: float = SYNC_RATE) -> tuple[np.ndarray, np.ndarray]:
    """(lags in ms, correlation of the mouth with the audio's speech envelope at each lag), as
    `score` correlates them for its envelope offset (2 s windows every 0.5 s)."""
    from tasks.face.speaking import speech_envelope

    grid = np.arange(int(round(len(opening) / fps * sync_rate))) / sync_rate
    env = speech_envelope(np.asarray(samples, dtype=np.float64), rate, grid)
    mouth = resample_frames(opening, fps, sync_rate, duration=len(env) / sync_rate)
    lags = np.arange(-int(round(max_lag_s * sync_rate)), int(round(max_lag_s * sync_rate)) + 1)
    return 1000.0 * lags / sync_rate, correlation_curve(mouth, env, lags, sync_rate)


def pooled_offset(curves: Sequence[tuple[np.ndarray, np.ndarray, float]], max_offset_s: float = 0.2) -> float | None:
    """The audio-visual offset (ms; > 0: the mouth follows the sound) of several clips together: the
    peak within +-`max_offset_s` of their `envelope_curve`s averaged, each weighted by its seconds
    (`curves`: (lags ms, curve, seconds), the same lags). One clip of 5-12 s has too few syllables
    for a sharp peak: the seven real clips' own recordings read -200..+200 ms one by one, -80 ms
    together, and a 0.1 s shift of all their audio moves that by 0.1 s (docs/lipsync.md)."""
    if not curves:
        return None
    lags = curves[0][0]
    weights = np.array([seconds for *_, seconds in curves], dtype=np.float64)
    stacked = np.array([np.where(np.isfinite(curve), curve, 0.0) for _, curve, _ in curves])
    seen = np.array([np.isfinite(curve) for _, curve, _ in curves], dtype=np.float64)
    pooled = (stacked * weights[:, None]).sum(axis=0) / np.maximum((seen * weights[:, None]).sum(axis=0), 1e-9)
    inside = (np.abs(lags) <= 1000.0 * max_offset_s + 1e-6) & (seen.sum(axis=0) > 0)
    if not inside.any():
        return None
    return float(lags[np.flatnonzero(inside)[np.argmax(pooled[inside])]])


def shift_audio(samples: np.ndarray, rate: int, seconds: float) -> np.ndarray:
    """The audio delayed by `seconds` (advanced when negative), same length, silence filled in."""
    samples = np.asarray(samples)
    n = int(round(abs(seconds) * rate))
    out = np.zeros_like(samples)
    if n >= len(samples):
        return out
    if seconds >= 0:
        out[n:] = samples[:len(samples) - n]
    else:
        out[:len(samples) - n] = samples[n:]
    return out


def fit_length(samples: np.ndarray, length: int) -> np.ndarray:
    """Trim or zero-pad to `length` samples."""
    samples = np.asarray(samples)
    if len(samples) >= length:
        return samples[:length].copy()
    pad = np.zeros((length - len(samples),) + samples.shape[1:], dtype=samples.dtype)
    return np.concatenate([samples, pad])


def score_arrays(opening: np.ndarray, fps: float, envelope: np.ndarray | None, phones: Sequence,
                 closure_visemes: Sequence[str] = ("PP",), open_visemes: Sequence[str] = OPEN_VISEMES,
                 tolerance: int = 1, closed_fraction: float = 0.2, max_closed_gap: float = 0.08,
                 max_offset_s: float = 0.2, null_s: float = 1.0, highpass_s: float = 0.0,
                 window_s: float = 2.0, hop_s: float = 0.5, rate: float = SYNC_RATE, interval_level: float = 0.9,
                 closed_over_speech: bool = True) -> dict:
    """All three measures from arrays: per-frame opening, the envelope on the `rate` grid (or None)
    and timed phones (objects with start, end, viseme). `extra` carries the per-phone evidence, the
    `interval_level` bootstrap intervals of closure excess and aperture contrast, and the offset
    read from the phones (`aperture_offset`, a check on the envelope's). The closed threshold is
    read from the frames inside the phones' speech (`closed_over_speech`; False: all frames, as
    before 2026-11-27 night): a dub whose mouth rests shut through a pause read the same bilabials
    as less closed than the same dub with the source's mouth left in that pause."""
    opening = np.asarray(opening, dtype=np.float64)
    closures = [(p.start, p.end) for p in phones if p.viseme in closure_visemes]
    opens = [(p.start, p.end) for p in phones if p.viseme in open_visemes]
    speech = speech_frames(phones, fps, len(opening)) if closed_over_speech else None
    threshold = closed_threshold(opening, closed_fraction, max_closed_gap, speech)
    rate_c, n_c = closure_rate(opening, fps, closures, threshold, tolerance)
    chance = closure_chance(opening, fps, closures, threshold, tolerance)
    contrast, n_o = aperture_contrast(opening, fps, opens, closures)
    conf = offset = best = None
    if envelope is not None:
        mouth = resample_frames(opening, fps, rate, duration=len(envelope) / rate)
        env = np.asarray(envelope, dtype=np.float64)
        conf, offset, best = sync_offset(highpass(mouth, rate, highpass_s), highpass(env, rate, highpass_s),
                                         rate, max_offset_s, null_s, window_s, hop_s)
    lo, hi = speaker_range(opening)
    excess = None if rate_c is None or chance is None else rate_c - chance
    phone_offset, _ = aperture_offset(opening, fps, opens, closures, max_offset_s)
    return {"closure_rate": rate_c, "closure_chance": chance, "closure_excess": excess, "closures": n_c, "aperture_contrast": contrast,
            "open_vowels": n_o, "sync_confidence": conf, "sync_offset_ms": offset, "sync_correlation": best,
            "extra": {"closed_threshold": threshold, "opening_p5": lo, "opening_p95": hi, "phone_offset_ms": phone_offset,
                      **phone_evidence(opening, fps, closures, opens, threshold, tolerance, interval_level)}}


def phone_evidence(opening: np.ndarray, fps: float, closures: Sequence[tuple[float, float]],
                   opens: Sequence[tuple[float, float]], threshold: float, tolerance: int = 1,
                   level: float = 0.9) -> dict:
    """What the two phone-based measures rest on, per phone, and their bootstrap intervals over the
    phones counted (a clip has 3-10 bilabials: one phone more or less closed moves the closure
    excess by 0.1-0.3, and the interval says so): `closure_evidence` rows (hit, chance), the
    openings of the open vowels and of the bilabials, the speaker's range,
    `closure_excess_interval` / `aperture_contrast_interval` at `level`, and where the phones were:
    `bilabial_hits` (start, end, 1 if closed) and `open_vowel_spans` (start, end)."""
    located = closure_rows(opening, fps, closures, threshold, tolerance)
    evidence = np.array([[hit, chance] for _, _, hit, chance in located if chance is not None]).reshape(-1, 2)
    lo, hi = speaker_range(opening)
    opened = [(s, e, v) for s, e in opens if (v := phone_opening(opening, fps, s, e)) is not None]
    open_values = np.asarray([v for *_, v in opened])
    close_values = np.asarray([v for s, e in closures if (v := phone_opening(opening, fps, s, e)) is not None])
    span = hi - lo if np.isfinite(lo) else float("nan")
    contrast_interval = (None, None)
    if np.isfinite(span) and span > 1e-3:
        contrast_interval = bootstrap_interval(lambda o, c: contrast_of(o, c, span), [open_values, close_values], level)
    return {"closure_evidence": evidence.round(4).tolist(), "open_vowel_openings": open_values.round(4).tolist(),
            "bilabial_openings": close_values.round(4).tolist(), "opening_range": span,
            "closure_excess_interval": list(bootstrap_interval(excess_of, [evidence], level)),
            "aperture_contrast_interval": list(contrast_interval), "interval_level": level,
            # where each phone was (seconds) and whether the lips closed on it: the plot's and the reader's
            "bilabial_hits": [[round(s, 3), round(e, 3), int(hit)] for s, e, hit, _ in located],
            "open_vowel_spans": [[round(s, 3), round(e, 3)] for s, e, _ in opened]}


# --------------------------------------------------------------------------- I/O

def uniform_frames(values: np.ndarray, times: np.ndarray, fps: float) -> tuple[float, np.ndarray]:
    """Per-frame values at presentation `times` (variable frame rate: some files drop or repeat
    frames) onto a constant-rate grid k / rate, each grid point holding the frame on screen then.
    The rate is the typical frame interval's (1 / median step), else `fps`."""
    from tasks.media import typical_rate

    values = np.asarray(values, dtype=np.float64)
    rate = typical_rate(times, fps)
    if abs(rate - fps) < 0.01 * fps:  # the container's nominal rate, where it agrees
        rate = float(fps)
    if len(times) > 1 and np.allclose(np.diff(times), 1.0 / rate, atol=0.25 / rate) and abs(times[0]) < 0.5 / rate:
        return rate, values  # already constant-rate
    count = int(np.floor(times[-1] * rate + 1e-6)) + 1
    grid = np.arange(count) / rate
    index = np.clip(np.searchsorted(times, grid + 0.25 / rate, side="right") - 1, 0, len(values) - 1)
    return rate, values[index]


def video_fps(path: Path | str) -> tuple[float, int]:
    import cv2

    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise RuntimeError(f"OpenCV cannot open {path}")
    fps, frames = capture.get(cv2.CAP_PROP_FPS), int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    capture.release()
    return float(fps), frames


def mouth_track(video_path: Path | str, track: int | None = None, backend=None, options=None,
                smoothed: bool = False, equalisation: dict | None = None, landmarker: str = "dlib",
                jitter: dict | None = None, progress: bool | str = False, speaking: SpeakingFaces | None = None) -> MouthTrack:
    """Re-detect the faces of a video (the face stage's `analyze`, dlib by default) and return the
    per-frame mouth opening of face track `track`, or of the largest track (frames on screen x
    median inter-ocular distance). `smoothed`: use the stage's smoothed landmarks, not the raw ones.
    `equalisation`: the landmarker fits on the face contrast-equalised with these settings
    (`tasks.evaluate.landmarks.Equalisation`); None (the measure's setting, conf/evaluate
    `lipsync_equalisation`): on the frame as it is. Tried for dim, backlit lips and left out: it
    reads some shut lips shut and others open (docs/lipsync.md, "Poor light").
    `jitter` (conf/evaluate `lipsync_jitter`): each landmark the median of the fits from a grid of
    boxes around the tracked one (`tasks.evaluate.landmarks.Jitter`); None: the one fit.
    `landmarker` (conf/evaluate `lipsync_landmarker`): "dlib", the opening from the 68 points; "mesh",
    from MediaPipe's face mesh fitted on a crop placed by those 68 points (`tasks.evaluate.mesh`).
    `progress`: a bar over the frames, labelled with it when it is a string (the stages' long videos).
    `speaking`: who speaks when, on which face (`SpeakingFaces`): where two or more speakers' faces
    are found, the reading follows whoever speaks (track `SPEAKING_FACES`)."""
    return mouth_tracks(video_path, (landmarker,), track, backend, options, smoothed, equalisation, jitter,
                        progress, speaking)[landmarker]


LANDMARKERS = ("dlib", "mesh")
SPEAKING_FACES = -2  # MouthTrack.track of a reading that follows whoever speaks (`SpeakingFaces`)


@dataclass(frozen=True)
class SpeakingFaces:
    """Who speaks when, and on which face, for a video of several people: `spans` {speaker: [(start,
    end) s]}, `tracks` {speaker: the face stage's track}, `faces` the face stage's faces.npz arrays
    (frame, track, landmarks). The measure then reads, at each moment, the lips of the face of the
    speaker whose speech is nearest in time (`speaking_owner`), each face re-detected and matched to
    the face stage's track by position (`match_tracks`): one person's lips against everyone's
    phones would count the others' bilabials on a face that is not saying them."""

    spans: dict
    tracks: dict
    faces: dict


def speaking_owner(spans: dict[str, Sequence[tuple[float, float]]], times: np.ndarray) -> list[str]:
    """For each time, the speaker whose speech is nearest (inside a span: distance 0; ties: the
    first speaker in `spans`): whose lips the measure reads then, pauses and silences included."""
    names = list(spans)
    distance = np.full((len(names), len(times)), np.inf)
    for row, name in enumerate(names):
        for start, end in spans[name]:
            distance[row] = np.minimum(distance[row], np.maximum(0.0, np.maximum(start - times, times - end)))
    if not names:
        return [""] * len(times)
    return [names[i] if np.isfinite(distance[i, k]) else "" for k, i in enumerate(np.argmin(distance, axis=0))]


def match_tracks(measured: dict[str, np.ndarray], faces: dict[str, np.ndarray], wanted: dict[str, int],
                 max_distance: float = 0.5) -> dict[str, int]:
    """The measure's own face track for each speaker's face-stage track (`wanted`): the one whose
    landmark centre lies within `max_distance` inter-ocular distances of that track's on the most
    shared frames. `measured` and `faces`: arrays frame, track, landmarks (N, 68, 2)."""
    from tasks.face import geometry as geo

    by_frame = {}
    for row, (frame, track) in enumerate(zip(measured["frame"], measured["track"])):
        if track >= 0:
            by_frame.setdefault(int(frame), []).append(row)
    found = {}
    for speaker, face_track in wanted.items():
        votes: dict[int, int] = {}
        for row in np.flatnonzero(np.asarray(faces["track"]) == face_track):
            points = np.asarray(faces["landmarks"][row], dtype=np.float64)
            if not np.isfinite(points).all():
                continue
            reach, centre = max_distance * geo.interocular(points), points.mean(axis=0)
            for other in by_frame.get(int(faces["frame"][row]), []):
                if np.linalg.norm(np.asarray(measured["landmarks"][other], dtype=np.float64).mean(axis=0) - centre) <= reach:
                    votes[int(measured["track"][other])] = votes.get(int(measured["track"][other]), 0) + 1
        if votes:
            found[speaker] = max(votes, key=votes.get)
    return found


# The closed threshold's absolute cap (inter-ocular units) per landmarker: the scales differ (see
# tasks/evaluate/mesh.py). dlib's 0.08 never binds on the 7 clips' sources or es dubs (thresholds
# 0.04-0.08 from their ranges); 0.08 sits at the 41st percentile of dlib's openings of the 7 sources
# pooled, and the mesh's 41st percentile is 0.059 (docs/lipsync.md, "Face mesh").
MAX_CLOSED_GAP = {"dlib": 0.08, "mesh": 0.06}


def rows_to_read(frame: np.ndarray, track: np.ndarray, times: np.ndarray, matched: dict[str, int],
                 spans: dict[str, Sequence[tuple[float, float]]]) -> tuple[int, np.ndarray]:
    """Which rows of the measure's face analysis (`frame`, `track` per row; `times` per frame) to read
    when speakers' faces are known (`matched`: speaker -> the measure's track): with two or more faces,
    each speaker's face on the frames where that speaker is the one to read (`speaking_owner`; track
    `SPEAKING_FACES`); with one, that face throughout, not the largest (one voice on a photo of two
    people). Returns (track, rows)."""
    frame, track = np.asarray(frame), np.asarray(track)
    if len(set(matched.values())) >= 2:
        owner = np.asarray(speaking_owner({name: spans.get(name, []) for name in matched}, np.asarray(times)))
        rows = np.flatnonzero([matched.get(who, -9) == track_id for who, track_id in zip(owner[frame], track)])
        return SPEAKING_FACES, rows
    face = next(iter(matched.values()))
    return face, np.flatnonzero(track == face)


def mouth_tracks(video_path: Path | str, landmarkers: Sequence[str] = ("dlib",), track: int | None = None, backend=None,
                 options=None, smoothed: bool = False, equalisation: dict | None = None,
                 jitter: dict | None = None, progress: bool | str = False,
                 speaking: SpeakingFaces | None = None) -> dict[str, MouthTrack]:
    """`mouth_track` for several landmarkers from one face analysis (the mesh is placed by the same
    68 points, so each reads the same face on the same frames): {landmarker: MouthTrack}."""
    from tasks.evaluate.landmarks import Equalisation, EqualisedLandmarks, Jitter, JitteredLandmarks
    from tasks.face import geometry as geo
    from tasks.face.backends import DlibBackend
    from tasks.face.pipeline import FaceOptions, analyze, read_frames

    unknown = set(landmarkers) - set(LANDMARKERS)
    if unknown:
        raise ValueError(f"unknown lip-sync landmarker {sorted(unknown)}: choose from {LANDMARKERS}")
    started = time.perf_counter()
    fps, total = video_fps(video_path)
    backend = backend or DlibBackend()
    if equalisation is not None:
        backend = EqualisedLandmarks(backend, Equalisation(**equalisation))
    if jitter is not None:
        backend = JitteredLandmarks(backend, Jitter(**jitter))
    result = analyze(read_frames(str(video_path)), backend, options or FaceOptions(), fps,
                     total=total or None, progress=progress)
    ids = result.track_ids()
    if not ids:
        return {name: MouthTrack(fps, np.full(result.frames, np.nan), -1, 0.0, 0.0, time.perf_counter() - started, name)
                for name in landmarkers}
    landmarks = result.landmarks if smoothed else result.landmarks_raw

    def size(t: int) -> float:
        sel = result.track == t
        return float(sel.sum()) * float(np.median([geo.interocular(l) for l in landmarks[sel][::5]]))

    chosen = max(ids, key=size) if track is None else int(track)
    if chosen not in ids:
        raise ValueError(f"no face track {chosen} in {video_path} (tracks: {ids})")
    times = np.asarray(result.times, dtype=np.float64)
    sel = np.flatnonzero(result.track == chosen)
    if speaking is not None and track is None:
        measured = {"frame": result.frame, "track": result.track, "landmarks": landmarks}
        matched = match_tracks(measured, speaking.faces, {k: v for k, v in speaking.tracks.items() if v is not None})
        if matched:
            chosen, sel = rows_to_read(result.frame, result.track, times, matched, speaking.spans)
    iod = float(np.median([geo.interocular(landmarks[i].astype(np.float64)) for i in sel])) if len(sel) else 0.0
    visibility = float(np.mean(result.visibility[sel])) if len(sel) else 0.0
    face_seconds = time.perf_counter() - started
    tracks = {}
    for name in landmarkers:
        begun = time.perf_counter()
        opening = np.full(result.frames, np.nan)
        if name == "dlib":
            opening[result.frame[sel]] = [geo.mouth_opening(landmarks[i].astype(np.float64)) for i in sel]
        else:
            opening[result.frame[sel]] = mesh_openings(video_path, result.frame[sel], landmarks[sel])
        uniform_fps, opening = uniform_frames(opening, times, fps)
        tracks[name] = MouthTrack(uniform_fps, opening, chosen, iod, visibility,
                                  face_seconds + time.perf_counter() - begun, name)
    return tracks


def mesh_openings(video_path: Path | str, frames: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The face mesh's opening on the given frames of a video, each crop placed by that frame's 68
    points (`tasks.evaluate.mesh`); one more decode of the video."""
    from tasks.evaluate.mesh import face_mesh
    from tasks.face.pipeline import read_frames

    model = face_mesh()
    wanted = {int(f): k for k, f in enumerate(frames)}
    out = np.full(len(frames), np.nan)
    for index, (_, frame) in enumerate(read_frames(str(video_path))):
        k = wanted.get(index)
        if k is not None:
            out[k] = model.fit(frame, landmarks[k].astype(np.float64)).opening
        if index >= max(wanted, default=-1):
            break
    return out


def load_audio(path: Path | str, rate: int = 16_000) -> np.ndarray:
    """Mono float32 samples at `rate` of any file with audio (a video's own track, a wav...)."""
    from tasks.media import extract_audio, read_wav

    with tempfile.TemporaryDirectory(prefix="lipsync-") as tmp:
        wav = extract_audio(Path(path), Path(tmp) / "audio.wav", rate, 1)
        samples, got = read_wav(wav)
    if got != rate:
        raise RuntimeError(f"decoded audio at {got} Hz, expected {rate}")
    return samples.mean(axis=1).astype(np.float32)


def phones_for_audio(samples: np.ndarray, rate: int, language: str, aligner=None, table=None,
                     words: list[tuple[float, float, str]] | None = None) -> tuple[list, int]:
    """Timed phones of speech from the audio alone: Whisper words + espeak phones (AsrAligner).
    `words` ((start, end, text) from a transcript of this same audio) skips the ASR run.
    Returns (phones without silences, words)."""
    from tasks.media import write_wav
    from tasks.visemes.align import AsrAligner
    from tasks.visemes.tables import SILENCE, load_table

    aligner = aligner or AsrAligner()
    table = table or load_table(language)
    with tempfile.TemporaryDirectory(prefix="lipsync-") as tmp:
        wav = write_wav(Path(tmp) / "speech.wav", np.asarray(samples, dtype=np.float32).reshape(-1, 1), rate)
        words = aligner.words(wav, language) if words is None else list(words)
        phones = aligner.align_audio(wav, table, words)
    return [p for p in phones if p.viseme != SILENCE], len(words)


def score(mouth: MouthTrack, samples: np.ndarray, rate: int, language: str, aligner=None, table=None,
          words: list[tuple[float, float, str]] | None = None, stops: dict | None = None, **options) -> LipSyncScores:
    """The three measures for a mouth track against mono audio (same timeline as the video).
    `stops` (conf/evaluate `lipsync_stops`, `tasks.evaluate.stops.StopSnapping`): the ASR's /p b/
    moved onto the audio's own closure and burst; what moved is in `extra.stop_snaps`."""
    from tasks.evaluate.stops import StopSnapping, snap_stops
    from tasks.face.speaking import speech_envelope
    from tasks.visemes.tables import load_table

    started = time.perf_counter()
    table = table or load_table(language)
    phones, n_words = phones_for_audio(samples, rate, language, aligner, table, words)
    phones, snaps = snap_stops(phones, samples, rate, StopSnapping.of(stops))
    sync_rate = options.get("rate", SYNC_RATE)
    duration = mouth.frames / mouth.fps
    grid = np.arange(int(round(duration * sync_rate))) / sync_rate
    envelope = speech_envelope(np.asarray(samples, dtype=np.float64), rate, grid)
    options.setdefault("max_closed_gap", MAX_CLOSED_GAP[mouth.landmarker])
    values = score_arrays(mouth.opening, mouth.fps, envelope, phones, closure_visemes=table.closures, **options)
    values["extra"].update({"landmarker": mouth.landmarker, "track": mouth.track, "iod_px": round(mouth.iod_px, 1), "fps": mouth.fps,
                            "mouth_visibility": round(mouth.visibility, 3),
                            "frames": mouth.frames, "face_seconds": round(mouth.seconds, 2)})
    if stops and stops.get("enabled"):
        values["extra"]["stop_snaps"] = snaps
    return LipSyncScores(face_coverage=mouth.coverage, phones=len(phones), words=n_words,
                         seconds=time.perf_counter() - started, **values)


def measure(video_path: Path | str, audio_path: Path | str | None = None, language: str = "en", *,
            track: int | None = None, mouth: MouthTrack | None = None, aligner=None, backend=None,
            words: list[tuple[float, float, str]] | None = None, equalisation: dict | None = None,
            landmarker: str = "dlib", stops: dict | None = None, jitter: dict | None = None, **options) -> LipSyncScores:
    """Lip sync of a video against audio: `audio_path` (any file ffmpeg decodes) or, when None, the
    video's own audio track, which must start with the video. `language`: the speech's language
    (ISO 639-1; it picks the Whisper language and the viseme table). `track`: a face track id of
    this video (default: the largest face). `mouth`: a `mouth_track` already computed for it.
    `words`: (start, end, text) word timings of this audio from an ASR run already made (the
    evaluate stage's re-transcription), to skip a second one; `aligner`: an AsrAligner to reuse;
    `equalisation`, `landmarker`, `jitter`: see `mouth_track`; `stops`: see `score`.
    `options` go to `score_arrays` (tolerance, closed_fraction, max_offset_s, null_s, ...)."""
    started = time.perf_counter()
    mouth = mouth or mouth_track(video_path, track=track, backend=backend, equalisation=equalisation, landmarker=landmarker,
                                 jitter=jitter)
    samples = load_audio(audio_path if audio_path is not None else video_path)
    result = score(mouth, samples, 16_000, language, aligner=aligner, words=words, stops=stops, **options)
    return dataclasses.replace(result, seconds=time.perf_counter() - started)


# --------------------------------------------------------------------------- stage settings and the source's reading

SETTING_KEYS = ("lipsync_aligner", "lipsync_equalisation", "lipsync_jitter", "lipsync_landmarker", "lipsync_stops")


def setting_values(config: dict) -> dict:
    """The measure's settings in a stage's config, as plain data (to compare two stages' readings)."""
    return {key: config.get(key) for key in SETTING_KEYS}


def measure_settings(config: dict) -> tuple[object, dict, dict | None]:
    """The measure's settings from a stage's config (conf/evaluate's `lipsync_*` keys, which
    conf/reference takes from it): (AsrAligner, `mouth_track` keyword arguments, `stops`)."""
    from tasks.visemes.align import AsrAligner

    aligner = AsrAligner(**dict(config.get("lipsync_aligner") or {}))
    jitter = config.get("lipsync_jitter")
    reading = {"equalisation": config.get("lipsync_equalisation"),
               "landmarker": config.get("lipsync_landmarker") or "dlib",
               "jitter": dict(jitter) if jitter else None}
    stops = config.get("lipsync_stops")
    return aligner, reading, dict(stops) if stops else None


def speaking_faces(face_dir: Path, spans: dict[str, list[tuple[float, float]]]) -> SpeakingFaces | None:
    """Who speaks when on which face, from the face stage's outputs (`face_dir`: tracks.json's
    speaker -> track, faces.npz) and each speaker's speech `spans`; None where no speaker has a face
    or the video has one face track (the measure then reads the largest face)."""
    from tasks.face.schema import read_faces, read_tracks

    tracks = read_tracks(Path(face_dir) / "tracks.json")
    placed = {name: int(track) for name, track in (tracks.speakers or {}).items() if track is not None and name in spans}
    if not placed or len(tracks.tracks) < 2:
        return None
    faces = read_faces(Path(face_dir) / "faces.npz")
    return SpeakingFaces(spans={name: list(spans[name]) for name in placed}, tracks=placed,
                         faces={key: faces[key] for key in ("frame", "track", "landmarks")})


def speaker_spans(segments) -> dict[str, list[tuple[float, float]]]:
    """{speaker: [(start, end)]} of anything with speaker, start and end (speech segments)."""
    spans: dict[str, list[tuple[float, float]]] = {}
    for segment in segments:
        spans.setdefault(segment.speaker, []).append((float(segment.start), float(segment.end)))
    return spans


def words_of(transcript) -> list[tuple[float, float, str]]:
    """(start, end, text) of every word of a Transcript: the measure's ASR words, already heard."""
    return [(w.start, w.end, w.text) for segment in transcript.segments for w in segment.words]


def source_reading(mouth: MouthTrack, scores: LipSyncScores, language: str, settings: dict | None = None):
    """A measured source as the `reference` stage's artifact (tasks.artifacts.SourceLipSync);
    `settings`: the `setting_values` it was read with."""
    from tasks.artifacts import SourceLipSync

    return SourceLipSync(language=language, measured=True, fps=float(mouth.fps), track=int(mouth.track),
                         iod_px=round(float(mouth.iod_px), 2), opening=tuple(_plain(list(mouth.opening))),
                         scores=scores.as_dict(), settings=dict(settings or {}))


def from_source_reading(reading) -> tuple[MouthTrack, LipSyncScores]:
    """The mouth track and scores a SourceLipSync was written from (openings rounded to 4 places)."""
    opening = np.array([np.nan if value is None else value for value in reading.opening], dtype=float)
    mouth = MouthTrack(reading.fps, opening, reading.track, reading.iod_px,
                       float(reading.scores.get("extra", {}).get("mouth_visibility", 1.0)),
                       landmarker=str(reading.scores.get("extra", {}).get("landmarker", "dlib")))
    fields = {f.name for f in dataclasses.fields(LipSyncScores)}
    return mouth, LipSyncScores(**{k: v for k, v in reading.scores.items() if k in fields})
