"""Where the lips part in speech audio: a stop's silent closure ended by its burst, a nasal's murmur
ended by the oral release. Audio only (nothing here knows a synthesizer or a measure).

Used by the lip-sync measure (`tasks.evaluate.stops`: the ASR's /p b m/ moved onto the audio's own
releases) and by the visemes stage (`tasks.visemes.bilabials`: the synthesizer's /p b m/ likewise, since
its phone boundaries are not where its own audio releases the lips).

A stop leaves a stretch of near silence (the lips shut, no air out), in the whole band and in the high
band, ended by an onset (the burst and the vowel). /m/ sounds through its closure, so it has no silence;
its evidence is the nasal murmur: a voiced stretch whose energy above about 500 Hz falls well under the
local vowels' while the low band stays near theirs (the mouth is shut, the sound leaves by the nose),
ended by the oral release, where the upper band comes back.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

HOP_RATE = 200.0  # Hz: energy frames every 5 ms
# phones with a closure of their own (stops, as tasks.visemes.align, and nasals, whose murmur dips too)
CLOSING = set("pbtdkgɡʔmnɲŋɱ")


@dataclass(frozen=True)
class StopSnapping:
    """conf/evaluate `lipsync_stops`."""

    enabled: bool = False
    phones: tuple[str, ...] = ("p", "b")  # first letter of the phone symbols moved (stops with a silent closure)
    window_s: float = 0.2        # how far the closure's release may be from the ASR phone's end
    level_s: float = 0.4         # the local speech level: 90th percentile of the energy within +- this
    dip_db: float = 20.0         # closure: this far under the local level, in the whole band and the high band
    vowel_db: float = 6.0        # the onset reaches within this of the local level (a vowel)...
    rise_s: float = 0.05         # ...within this after the silence ends
    min_closure_s: float = 0.025  # shorter silences are noise between words
    voice_s: float = 0.08        # voicing (the vowel) starts within this after the release: not a pause before /s/
    voicing: float = 0.5         # normalised autocorrelation peak (80-400 Hz) that counts as voiced
    max_closure_s: float = 0.15  # the snapped phone covers at most this before the release (a pause is longer)
    window_rms_s: float = 0.01   # RMS window of the energy frames
    # the snapped phone ends at the burst, the lips opening: the first fine frame (burst_window_s RMS
    # every burst_hop_s) that rises burst_rise_db above the closure's floor (its floor_quantile level
    # over the silence's last floor_s) in either band. The silence's end can be later: it is where the
    # level comes back within dip_db of the local level, which a weak burst may not reach (then it is
    # the vowel's onset)
    burst_rise_db: float = 15.0
    burst_hop_s: float = 0.002
    burst_window_s: float = 0.004
    floor_quantile: float = 0.2
    floor_s: float = 0.04

    # the /m/ onto its murmur: its own switch, effective only while this section is enabled
    nasals: "NasalSnapping" = field(default_factory=lambda: NasalSnapping())

    @classmethod
    def of(cls, config: dict | None) -> "StopSnapping":
        values = dict(config or {})
        if "phones" in values:
            values["phones"] = tuple(values["phones"])
        values["nasals"] = NasalSnapping.of(values.get("nasals"))
        return cls(**values)


@dataclass(frozen=True)
class NasalSnapping:
    """conf/evaluate `lipsync_stops.nasals`."""

    enabled: bool = False
    phones: tuple[str, ...] = ("m",)  # first letter of the nasal symbols moved (the bilabial one)
    window_s: float = 0.15       # how far the murmur's release may be from the ASR phone's end
    level_s: float = 0.4         # the local speech level: 90th percentile of each band within +- this
    low_hz: tuple[float, float] = (80.0, 500.0)    # the murmur's band: stays strong
    high_hz: tuple[float, float] = (500.0, 4000.0)  # the oral resonances' band: falls in a murmur
    high_dip_db: float = 15.0    # murmur: the high band this far under its local level...
    low_drop_db: float = 10.0    # ...while the low band stays within this of its own
    vowel_db: float = 10.0       # the release: the high band back within this of its local level...
    rise_s: float = 0.04         # ...within this after the murmur ends
    min_murmur_s: float = 0.03
    max_murmur_s: float = 0.08   # the snapped phone covers at most this before the release
    voicing: float = 0.5         # normalised autocorrelation peak (80-400 Hz) that counts as voiced
    frame_s: float = 0.02        # spectrum window (every 5 ms)

    @classmethod
    def of(cls, config: dict | None) -> "NasalSnapping":
        values = dict(config or {})
        for key in ("phones", "low_hz", "high_hz"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)


@dataclass(frozen=True)
class Closure:
    """A closure found in the audio from `start` to `release` (s), then an onset: a stop's silence
    or a nasal's murmur."""

    start: float
    release: float


def burst_onset(full_db: np.ndarray, high_db: np.ndarray, closure: Closure, settings: StopSnapping,
                hop_rate: float) -> float:
    """The time (s) the closure's silence is broken: the first frame of the fine energies (`hop_rate`)
    within [release - floor_s, release + rise_s] that rises `burst_rise_db` above the closure's floor
    in either band, counted from where both bands have first come down to within half that of their
    floors (the previous sound's decay is over). The floor of a band is its `floor_quantile` level
    over the silence's last `floor_s` (the floor just before the burst: background that steps up
    inside a long closure is not taken for it). The release itself where nothing rises (a burst
    too weak to tell)."""
    lo = int(round(max(closure.start, closure.release - settings.floor_s) * hop_rate))
    silence_end = int(round(closure.release * hop_rate))
    hi = min(len(full_db), int(round((closure.release + settings.rise_s) * hop_rate)) + 1)
    if silence_end - lo < 2 or hi <= silence_end:
        return closure.release
    bands = np.stack([full_db[lo:hi], high_db[lo:hi]])
    floors = np.quantile(bands[:, :silence_end - lo], settings.floor_quantile, axis=1)[:, None]
    above = bands - floors
    settled = np.flatnonzero((above <= settings.burst_rise_db / 2).all(axis=0))
    if not len(settled):
        return closure.release
    rising = np.flatnonzero(above[:, settled[0]:].max(axis=0) >= settings.burst_rise_db)
    if not len(rising):
        return closure.release
    return float(lo + settled[0] + rising[0]) / hop_rate


def band_energy_db(samples: np.ndarray, rate: int, hop_rate: float = HOP_RATE, window_s: float = 0.01
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Short-time RMS in dB of the whole band and of the pre-emphasised signal (first difference:
    +6 dB per octave, so a fricative's hiss stays loud where a closure is silent), frame k centred
    on k / hop_rate."""
    from tasks.visemes.align import envelope

    samples = np.asarray(samples, dtype=np.float64).ravel()
    high = np.concatenate([[0.0], np.diff(samples)])
    full_db = 20.0 * np.log10(envelope(samples, rate, hop_rate, window_s) + 1e-7)
    high_db = 20.0 * np.log10(envelope(high, rate, hop_rate, window_s) + 1e-7)
    return full_db, high_db


def voice_onset(samples: np.ndarray, rate: int, start: float, span_s: float, threshold: float,
                step_s: float = 0.005, window_s: float = 0.03, low_hz: float = 80.0, high_hz: float = 400.0
                ) -> float | None:
    """The first time within [start, start + span_s] (s) where a `window_s` frame is voiced: the
    peak of its normalised autocorrelation at pitch lags (`low_hz` to `high_hz`) reaches
    `threshold` (about 1 in a vowel, low in silence and in hiss). None when none is."""
    samples = np.asarray(samples, dtype=np.float64).ravel()
    for t in np.arange(start, start + span_s + 1e-9, step_s):
        if voicing_peak(samples, rate, float(t), window_s, low_hz, high_hz) >= threshold:
            return float(t)
    return None


def voicing_peak(samples: np.ndarray, rate: int, start: float, window_s: float = 0.03, low_hz: float = 80.0,
                 high_hz: float = 400.0) -> float:
    """The peak of the normalised autocorrelation at pitch lags (`low_hz` to `high_hz`) of the
    `window_s` frame from `start` (s): about 1 in a vowel or a murmur, low in silence and hiss; 0
    where the frame does not fit in the audio."""
    size = int(window_s * rate)
    lags = np.arange(int(rate / high_hz), int(rate / low_hz) + 1)
    a = int(round(start * rate))
    frame = samples[max(a, 0):a + size + lags[-1]]
    if a < 0 or len(frame) < size + lags[-1]:
        return 0.0
    head = frame[:size] - frame[:size].mean()
    energy = float((head ** 2).sum())
    if energy <= 1e-12:
        return 0.0
    tails = np.stack([frame[lag:lag + size] for lag in lags])
    tails = tails - tails.mean(axis=1, keepdims=True)
    return float(np.max(tails @ head / np.sqrt(energy * np.maximum((tails ** 2).sum(axis=1), 1e-12))))


def closures_near(full_db: np.ndarray, high_db: np.ndarray, at: float, settings: StopSnapping,
                  hop_rate: float = HOP_RATE) -> list[Closure]:
    """Closures whose release lies within `settings.window_s` of `at` (s): runs of frames at least
    `dip_db` under the local level in both bands, `min_closure_s` or longer, whose next
    `rise_s` reach within `burst_db` of the local level in the whole band."""
    n = len(full_db)
    centre = int(round(at * hop_rate))
    levels = local_levels((full_db, high_db), centre, int(round(settings.level_s * hop_rate)))
    if levels is None:
        return []
    level_full, level_high = levels
    silent = (full_db <= level_full - settings.dip_db) & (high_db <= level_high - settings.dip_db)
    window = int(round(settings.window_s * hop_rate))
    rise = max(1, int(round(settings.rise_s * hop_rate)))
    return released_runs(silent, range(max(0, centre - window - 1), min(n - 1, centre + window + 1)), at,
                         settings.window_s, settings.min_closure_s, hop_rate,
                         lambda last: full_db[last + 1:last + 1 + rise].max() >= level_full - settings.vowel_db)


def local_levels(bands: Sequence[np.ndarray], centre: int, reach: int) -> list[float] | None:
    """Each band's local speech level (dB): its 90th percentile over frames `centre` +- `reach`;
    None where fewer than two frames are there."""
    lo, hi = max(0, centre - reach), min(len(bands[0]), centre + reach + 1)
    if hi - lo < 2:
        return None
    return [float(np.percentile(band[lo:hi], 90)) for band in bands]


def released_runs(mask: np.ndarray, ends: range, at: float, window_s: float, min_s: float, hop_rate: float,
                  reopens) -> list[Closure]:
    """The runs of `mask` (frames at `hop_rate`) that end at a frame of `ends` (the frame after them
    is not in the run), last `min_s` or longer, release within `window_s` of `at` (s) and pass
    `reopens(last frame of the run)`, as closures from their first frame to the frame after them."""
    shortest = max(1, int(round(min_s * hop_rate)))
    out = []
    for last in ends:
        if not mask[last] or mask[last + 1]:
            continue
        first = last
        while first > 0 and mask[first - 1]:
            first -= 1
        release = (last + 1) / hop_rate
        if last - first + 1 < shortest or abs(release - at) > window_s or not reopens(last):
            continue
        out.append(Closure(first / hop_rate, release))
    return out


def band_levels_db(samples: np.ndarray, rate: int, bands: Sequence[tuple[float, float]], hop_rate: float = HOP_RATE,
                   frame_s: float = 0.02, block: int = 2000) -> np.ndarray:
    """Energy (dB) in each frequency band (Hz, [low, high)) of Hann-windowed `frame_s` frames, frame k
    centred on k / hop_rate; shape (frames, bands)."""
    samples = np.asarray(samples, dtype=np.float64).ravel()
    hop = rate / hop_rate
    n = int(np.ceil(len(samples) / hop)) if len(samples) else 0
    size = int(frame_s * rate)
    padded = np.pad(samples, (size // 2, size))
    freqs = np.fft.rfftfreq(size, 1.0 / rate)
    window = np.hanning(size)
    out = np.zeros((n, len(bands)))
    for first in range(0, n, block):  # a block of frames at a time: all of a 195 s voice at once took 0.6 GB
        index = (np.arange(first, min(first + block, n)) * hop).astype(int)[:, None] + np.arange(size)[None, :]
        power = np.abs(np.fft.rfft(padded[index] * window, axis=1)) ** 2
        out[first:first + len(index)] = np.stack([10.0 * np.log10(power[:, (freqs >= lo) & (freqs < hi)].sum(axis=1) + 1e-10)
                                                  for lo, hi in bands], axis=1)
    return out


def murmurs_near(low_db: np.ndarray, high_db: np.ndarray, samples: np.ndarray, rate: int, at: float,
                 settings: NasalSnapping, hop_rate: float = HOP_RATE) -> list[Closure]:
    """Nasal murmurs whose release lies within `settings.window_s` of `at` (s): runs of voiced frames,
    `min_murmur_s` or longer, whose high band is `high_dip_db` under its local level while the low
    band stays within `low_drop_db` of its own, and whose high band comes back within `vowel_db` of
    its level within `rise_s` after the run (the oral release into a vowel)."""
    n = len(low_db)
    centre = int(round(at * hop_rate))
    levels = local_levels((low_db, high_db), centre, int(round(settings.level_s * hop_rate)))
    if levels is None:
        return []
    level_low, level_high = levels
    window = int(round(settings.window_s * hop_rate))
    longest = int(round(settings.max_murmur_s * hop_rate))
    first_frame, last_frame = max(0, centre - window - longest), min(n - 1, centre + window + 1)
    frame = int(0.03 * rate) / rate  # voicing_peak's window, centred on the energy frame
    murmur = np.zeros(n, dtype=bool)
    for k in range(first_frame, last_frame + 1):
        murmur[k] = (high_db[k] <= level_high - settings.high_dip_db and low_db[k] >= level_low - settings.low_drop_db
                     and voicing_peak(samples, rate, k / hop_rate - frame / 2, frame) >= settings.voicing)
    rise = max(1, int(round(settings.rise_s * hop_rate)))
    return released_runs(murmur, range(first_frame, last_frame), at, settings.window_s, settings.min_murmur_s, hop_rate,
                         lambda last: high_db[last + 1:last + 1 + rise].max() >= level_high - settings.vowel_db)


def nearest_closing(found: Closure, index: int, end: float, closing_ends: Sequence[tuple[int, float]]) -> bool:
    """Whether no other ASR stop or nasal (`closing_ends`: (index, end)) ends nearer to the found
    closure's release than phone `index`, ending at `end`, does."""
    return not any(j != index and abs(other - found.release) < abs(end - found.release) for j, other in closing_ends)


def closing_ends(phones: Sequence) -> list[tuple[int, float]]:
    """(index, end) of every phone with a closure of its own (stops and nasals, `CLOSING`)."""
    return [(i, p.end) for i, p in enumerate(phones) if p.symbol[:1] in CLOSING]


def nearest_release(releases, index: int, end: float, closing: Sequence[tuple[int, float]]) -> "Closure | None":
    """The closure of `releases` (StopReleases / NasalReleases) released nearest `end`, the end of
    phone `index`, among those no other closing phone (`closing`: `closing_ends`) ends nearer to;
    None where there is none."""
    found = [c for c in releases.near(end) if nearest_closing(c, index, end, closing)]
    return min(found, key=lambda c: abs(c.release - end)) if found else None


class StopReleases:
    """The closures of one audio that a stop can sit on (`near`) and the span it then takes (`placed`)."""

    def __init__(self, samples: np.ndarray, rate: int, settings: StopSnapping):
        self.samples, self.rate, self.settings = samples, rate, settings
        self.full_db, self.high_db = band_energy_db(samples, rate, HOP_RATE, settings.window_rms_s)
        self.burst_rate = 1.0 / settings.burst_hop_s
        self.fine_full, self.fine_high = band_energy_db(samples, rate, self.burst_rate, settings.burst_window_s)

    def near(self, at: float) -> list[Closure]:
        """Closures released within the window of `at` (s) into voicing within `voice_s` (a vowel
        after the burst, not a pause before a fricative)."""
        s = self.settings
        return [c for c in closures_near(self.full_db, self.high_db, at, s)
                if voice_onset(self.samples, self.rate, c.release, s.voice_s, s.voicing) is not None]

    def placed(self, closure: Closure) -> tuple[float, float]:
        """(start, end) of a stop on `closure`: ending at its burst, starting on the silence's start
        at most `max_closure_s` before."""
        burst = burst_onset(self.fine_full, self.fine_high, closure, self.settings, self.burst_rate)
        return max(closure.start, burst - self.settings.max_closure_s), burst


class NasalReleases:
    """The murmurs of one audio that a nasal can sit on (`near`) and the span it then takes (`placed`)."""

    def __init__(self, samples: np.ndarray, rate: int, settings: NasalSnapping):
        self.samples, self.rate, self.settings = np.asarray(samples, dtype=np.float64).ravel(), rate, settings
        levels = band_levels_db(self.samples, rate, (settings.low_hz, settings.high_hz), HOP_RATE, settings.frame_s)
        self.low_db, self.high_db = levels[:, 0], levels[:, 1]

    def near(self, at: float) -> list[Closure]:
        return murmurs_near(self.low_db, self.high_db, self.samples, self.rate, at, self.settings)

    def placed(self, murmur: Closure) -> tuple[float, float]:
        """(start, end) of a nasal on `murmur`: ending at the release, starting on the murmur's start
        at most `max_murmur_s` before."""
        return max(murmur.start, murmur.release - self.settings.max_murmur_s), murmur.release
