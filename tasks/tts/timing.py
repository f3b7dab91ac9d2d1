"""Fitting a synthesized segment to the original one's timing, after the synthesis rate did what it could.

Order of means (pure planning here; the WORLD time-stretch is in `tasks.tts.stretch`):
0. the pauses inside the synthesized speech change first (silence costs nothing in intelligibility):
   too short, they are widened, each by at most `max_pause_gain_s`; too long, they are shortened,
   each to no less than `keep_pause_s`, before the synthesis rate goes up (`synthesize_to_fit`);
1. pitch-preserving time-stretch toward the original duration, within [min_time_scale, max_time_scale];
   a dub that is too long may first run `free_after_s` into the silence after the segment, as an end
   that late is still on time and every bit of compression costs intelligibility;
2. still too long: borrow the silence after the original segment, up to the next segment's start
   (the next speaker's turn is never overlapped), then a little before it (`max_early_s`, never
   over the previous dub);
3. still too long: cut with a fade, and report the overrun.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tasks import artifacts

TIMING_SCHEMA = 1


@dataclass(frozen=True)
class Fit:
    start: float            # where the dub starts (s)
    time_scale: float       # output / synthesized duration (<1 faster, >1 slower), pitch kept
    length: float           # seconds placed (after stretching and cutting)
    borrowed_before: float  # seconds taken from the silence before the original start
    borrowed_after: float   # seconds taken from the silence after the original end
    overrun: float          # seconds cut because they did not fit anywhere

    @property
    def end(self) -> float:
        return self.start + self.length


def plan_fit(natural_s: float, start: float, end: float, earliest: float, latest: float,
             min_time_scale: float, max_time_scale: float, max_early_s: float, dead_band_s: float = 0.0,
             free_after_s: float = 0.0) -> Fit:
    """How to place `natural_s` seconds of synthesized speech for an original segment [start, end].

    `earliest` is where the previous dub ends, `latest` where the next segment starts (or the video
    ends). The stretch aims at the original duration within the scale limits; what is left over
    borrows silence after the segment, then before it, and the rest is cut."""
    target = max(end - start, 0.0)
    latest = max(latest, start)
    if natural_s <= 0:
        return Fit(start, 1.0, 0.0, 0.0, 0.0, 0.0)
    allowed = target + min(free_after_s, max(latest - end, 0.0))
    if target <= 0:
        scale = min_time_scale
    elif natural_s > allowed:
        scale = max(allowed / natural_s, min_time_scale)
    else:
        scale = min(max(target / natural_s, 1.0), max_time_scale)
    most_room = latest - start + min(max_early_s, max(start - earliest, 0.0))
    if abs(natural_s * scale - natural_s) <= dead_band_s and natural_s <= most_room:
        scale = 1.0  # not worth a stretch, unless without it the end would be cut
    length = natural_s * scale
    after = min(max(length - target, 0.0), max(latest - end, 0.0))
    before = min(max(length - target - after, 0.0), max_early_s, max(start - earliest, 0.0))
    room = latest - (start - before)
    overrun = max(length - room, 0.0)
    return Fit(round(start - before, 4), round(scale, 4), round(length - overrun, 4), round(before, 4),
               round(after, 4), round(overrun, 4))


def pauses(samples: np.ndarray, rate: int, min_pause_s: float = 0.08, below_peak_db: float = 35.0,
           frame_s: float = 0.01) -> list[tuple[int, int]]:
    """Inner silent runs (sample ranges) of at least `min_pause_s`: frames `below_peak_db` under the
    loudest frame, leading and trailing silence excluded."""
    hop = max(1, int(rate * frame_s))
    count = len(samples) // hop
    if count < 3:
        return []
    frames = np.asarray(samples[:count * hop], np.float64).reshape(count, hop)
    level = 10 * np.log10(np.mean(frames ** 2, axis=1) + 1e-12)
    quiet = level < level.max() - below_peak_db
    out = []
    index = np.flatnonzero(np.diff(np.concatenate([[0], quiet.astype(np.int8), [0]])))
    for a, b in zip(index[::2], index[1::2]):
        if a > 0 and b < count and (b - a) * frame_s >= min_pause_s:
            out.append((int(a * hop), int(b * hop)))
    return out


def insert_pauses(samples: np.ndarray, rate: int, extra_s: float, max_pause_gain_s: float,
                  min_pause_s: float = 0.08) -> tuple[np.ndarray, tuple[tuple[float, float], ...]]:
    """Lengthen the inner pauses by `extra_s` in all (shared in proportion to their length, each at
    most `max_pause_gain_s`); silence is inserted in the middle of each. Returns the samples and
    where (seconds into the synthesized speech) how much silence went in, for stages that replay
    the synthesizer's timing."""
    found = pauses(samples, rate, min_pause_s)
    if extra_s <= 0 or not found:
        return samples, ()
    lengths = np.array([b - a for a, b in found], float)
    shares = np.minimum(lengths / lengths.sum() * extra_s * rate, max_pause_gain_s * rate).astype(int)
    pieces, last = [], 0
    for (a, b), add in zip(found, shares):
        middle = (a + b) // 2
        pieces += [samples[last:middle], np.zeros(add, dtype=samples.dtype)]
        last = middle
    pieces.append(samples[last:])
    inserted = tuple((round((a + b) // 2 / rate, 4), round(int(add) / rate, 4))
                     for (a, b), add in zip(found, shares) if add > 0)
    return np.concatenate(pieces), inserted


def shorten_pauses(samples: np.ndarray, rate: int, excess_s: float, keep_s: float,
                   min_pause_s: float = 0.08) -> tuple[np.ndarray, tuple[tuple[float, float], ...]]:
    """Take up to `excess_s` out of the inner pauses (each keeps at least `keep_s`; every pause gives
    in proportion to what it has above that), cut from the middle of each. Returns the samples and
    where (seconds into the synthesized speech) how much silence went out, as negative lengths: the
    same record as `insert_pauses` (a stage replaying the synthesizer's timing moves what follows)."""
    found = [(a, b) for a, b in pauses(samples, rate, min_pause_s) if (b - a) > keep_s * rate]
    if excess_s <= 0 or not found:
        return samples, ()
    spare = np.array([b - a - keep_s * rate for a, b in found], float)
    share = min(1.0, excess_s * rate / spare.sum())
    pieces, last, removed = [], 0, []
    for (a, b), extra in zip(found, spare):
        cut = int(extra * share)
        if cut <= 0:
            continue
        first = (a + b - cut) // 2
        pieces.append(samples[last:first])
        last = first + cut
        removed.append((round(first / rate, 4), -round(cut / rate, 4)))
    pieces.append(samples[last:])
    return np.concatenate(pieces), tuple(removed)


# --------------------------------------------------------------------------- report (timing.json)

@dataclass(frozen=True)
class SegmentTiming:
    id: int
    speaker: str
    original_start: float
    original_end: float
    start: float
    end: float
    speed: float             # synthesis rate
    time_scale: float        # WORLD stretch
    pauses_added: float      # seconds of silence added inside the dub (negative: taken out)
    borrowed_before: float
    borrowed_after: float
    overrun: float
    # (at, seconds): silence inserted at `at` seconds into the synthesized speech, before the stretch
    # (negative seconds: silence taken out there)
    inserted_pauses: tuple[tuple[float, float], ...] = ()

    @property
    def start_error(self) -> float:
        return abs(self.start - self.original_start)

    @property
    def end_error(self) -> float:
        return abs(self.end - self.original_end)


@dataclass(frozen=True)
class TimingReport:
    language: str
    start_tolerance_s: float
    end_tolerance_s: float
    segments: tuple[SegmentTiming, ...]

    def off_time(self) -> list[SegmentTiming]:
        """The segments that start or end beyond the tolerances."""
        return [s for s in self.segments
                if s.start_error > self.start_tolerance_s + 1e-6 or s.end_error > self.end_tolerance_s + 1e-6]

    def within(self) -> float:
        """Share of segments that start and end within the tolerances."""
        if not self.segments:
            return 1.0
        return 1.0 - len(self.off_time()) / len(self.segments)


def write_report(path, report: TimingReport):
    return artifacts.write(path, report, TIMING_SCHEMA)


def read_report(path) -> TimingReport:
    return artifacts.read(path, TimingReport, TIMING_SCHEMA)
