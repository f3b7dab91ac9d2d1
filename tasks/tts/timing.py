"""Fitting a synthesized segment to the original one's timing, after the synthesis rate did what it could.

Order of means (pure planning here; the WORLD time-stretch is in `tasks.tts.stretch`):
1. pitch-preserving time-stretch toward the original duration, within [min_time_scale, max_time_scale];
2. still too long: borrow the silence after the original segment, up to the next segment's start
   (the next speaker's turn is never overlapped), then a little before it (`max_early_s`, never
   over the previous dub);
3. still too long: cut with a fade, and report the overrun.
"""
from __future__ import annotations

from dataclasses import dataclass

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
             min_time_scale: float, max_time_scale: float, max_early_s: float) -> Fit:
    """How to place `natural_s` seconds of synthesized speech for an original segment [start, end].

    `earliest` is where the previous dub ends, `latest` where the next segment starts (or the video
    ends). The stretch aims at the original duration within the scale limits; what is left over
    borrows silence after the segment, then before it, and the rest is cut."""
    target = max(end - start, 0.0)
    latest = max(latest, start)
    if natural_s <= 0:
        return Fit(start, 1.0, 0.0, 0.0, 0.0, 0.0)
    scale = min(max(target / natural_s, min_time_scale), max_time_scale) if target > 0 else min_time_scale
    length = natural_s * scale
    after = min(max(length - target, 0.0), max(latest - end, 0.0))
    before = min(max(length - target - after, 0.0), max_early_s, max(start - earliest, 0.0))
    room = latest - (start - before)
    overrun = max(length - room, 0.0)
    return Fit(round(start - before, 4), round(scale, 4), round(length - overrun, 4), round(before, 4),
               round(after, 4), round(overrun, 4))


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
    borrowed_before: float
    borrowed_after: float
    overrun: float

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

    def within(self) -> float:
        """Share of segments that start and end within the tolerances."""
        if not self.segments:
            return 1.0
        good = [s for s in self.segments
                if s.start_error <= self.start_tolerance_s + 1e-6 and s.end_error <= self.end_tolerance_s + 1e-6]
        return len(good) / len(self.segments)


def write_report(path, report: TimingReport):
    return artifacts.write(path, report, TIMING_SCHEMA)


def read_report(path) -> TimingReport:
    return artifacts.read(path, TimingReport, TIMING_SCHEMA)
