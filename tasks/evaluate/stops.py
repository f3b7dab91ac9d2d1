"""The lip-sync measure's stop bilabials (/p b/) moved onto the audio's own closure and burst.

The measure's phones are Whisper word timings with espeak phones spread inside each word
(`tasks.visemes.align.AsrAligner`). Whisper often starts a word about 200 ms early after a comma,
which puts a word-initial /p/ on the loud end of the word before it, while the audio has the /p/'s
silent closure and burst a few frames later (stage_mic_cuts' second "por", docs/lipsync.md). A stop
leaves evidence in the audio alone: a stretch of near silence (the lips shut, no air out), in the
whole band and in the high band, ended by an onset (the burst and the vowel). Each ASR /p b/ is
moved onto the nearest such closure within a window, ending at the burst (the lips part there; the
vowel may follow some 10-30 ms later); where none is clear, it keeps the ASR time.
/m/ sounds through its closure, so it has no silence; its evidence is the nasal murmur instead
(`snap_nasals`): a voiced stretch whose energy above about 500 Hz falls well under the local
vowels' while the low band stays near theirs (the mouth is shut, the sound leaves by the nose, and
the nasal tract passes little above its first resonance), ended by the oral release, where the
upper band comes back. Each ASR /m/ goes onto the nearest such murmur within a window, the same way.

Audio only: nothing here knows the synthesizer, so the measure stays independent of it.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
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


def snap_each(phones: list, symbols: Sequence[str], candidates, placed) -> tuple[list, list[dict]]:
    """`phones` with each phone whose symbol starts with one of `symbols` moved onto the nearest of
    `candidates(phone)` (closures, by release against the phone's end) that no other ASR stop or nasal
    ends nearer to, spanning `placed(closure)` = (start, end); the rest of its word moves with it
    (`moved_with_word`). Returns (phones, one record per such phone: symbol, word, ASR [start, end],
    snapped [start, end] or None where it kept the ASR time)."""
    out = list(phones)
    closing_ends = [(i, p.end) for i, p in enumerate(phones) if p.symbol[:1] in CLOSING]
    moves = []
    for i, phone in enumerate(phones):
        if phone.symbol[:1] not in symbols:
            continue
        current = out[i]
        record = {"symbol": phone.symbol, "word": phone.word, "asr": [round(current.start, 3), round(current.end, 3)],
                  "snapped": None}
        moves.append(record)
        found = [c for c in candidates(current) if nearest_closing(c, i, current.end, closing_ends)]
        if not found:
            continue
        start, end = placed(min(found, key=lambda c: abs(c.release - current.end)))
        out = moved_with_word(out, i, start, end)
        record["snapped"] = [round(start, 3), round(end, 3)]
    return out, moves


def snap_stops(phones: Sequence, samples: np.ndarray, rate: int, settings: StopSnapping) -> tuple[list, list[dict]]:
    """The phones with every stop of `settings.phones` moved onto the nearest closure of the audio
    (its end on the closure's burst, `burst_onset`; its start on the silence's start, at most
    `max_closure_s` before the burst).
    A closure counts when voicing starts within `voice_s` of its release (a vowel after the burst,
    not a pause before a fricative) and no other ASR stop (p t k b d g) ends nearer to its release
    (the /d/ of "cuando" keeps its own closure from the /p/ of "preciso" after it). The other phones
    of the stop's word move with it (those after it share the rest of the word, keeping at least
    half their former span; those before it likewise). Returns (phones, one record per stop:
    symbol, word, ASR [start, end], snapped [start, end] or None where it kept the ASR time).
    With `settings.nasals` enabled the /m/ are then moved onto their murmurs (`snap_nasals`), with
    records of their own."""
    out = list(phones)
    if not settings.enabled or not out:
        return out, []
    out, moves = _snap_stop_closures(out, samples, rate, settings)
    if settings.nasals.enabled:
        out, nasal_moves = snap_nasals(out, samples, rate, settings.nasals)
        moves += nasal_moves
    return out, moves


def _snap_stop_closures(phones: list, samples: np.ndarray, rate: int, settings: StopSnapping) -> tuple[list, list[dict]]:
    full_db, high_db = band_energy_db(samples, rate, HOP_RATE, settings.window_rms_s)
    burst_rate = 1.0 / settings.burst_hop_s
    fine_full, fine_high = band_energy_db(samples, rate, burst_rate, settings.burst_window_s)

    def candidates(phone) -> list[Closure]:
        return [c for c in closures_near(full_db, high_db, phone.end, settings)
                if voice_onset(samples, rate, c.release, settings.voice_s, settings.voicing) is not None]

    def placed(closure: Closure) -> tuple[float, float]:
        burst = burst_onset(fine_full, fine_high, closure, settings, burst_rate)
        return max(closure.start, burst - settings.max_closure_s), burst

    return snap_each(phones, settings.phones, candidates, placed)


def nearest_closing(found: Closure, index: int, end: float, closing_ends: Sequence[tuple[int, float]]) -> bool:
    """Whether no other ASR stop or nasal (`closing_ends`: (index, end)) ends nearer to the found
    closure's release than phone `index`, ending at `end`, does."""
    return not any(j != index and abs(other - found.release) < abs(end - found.release) for j, other in closing_ends)


def band_levels_db(samples: np.ndarray, rate: int, bands: Sequence[tuple[float, float]], hop_rate: float = HOP_RATE,
                   frame_s: float = 0.02) -> np.ndarray:
    """Energy (dB) in each frequency band (Hz, [low, high)) of Hann-windowed `frame_s` frames, frame k
    centred on k / hop_rate; shape (frames, bands)."""
    samples = np.asarray(samples, dtype=np.float64).ravel()
    hop = rate / hop_rate
    n = int(np.ceil(len(samples) / hop)) if len(samples) else 0
    size = int(frame_s * rate)
    padded = np.pad(samples, (size // 2, size))
    index = (np.arange(n) * hop).astype(int)[:, None] + np.arange(size)[None, :]
    power = np.abs(np.fft.rfft(padded[index] * np.hanning(size), axis=1)) ** 2
    freqs = np.fft.rfftfreq(size, 1.0 / rate)
    return np.stack([10.0 * np.log10(power[:, (freqs >= lo) & (freqs < hi)].sum(axis=1) + 1e-10) for lo, hi in bands], axis=1)


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


def snap_nasals(phones: Sequence, samples: np.ndarray, rate: int, settings: NasalSnapping) -> tuple[list, list[dict]]:
    """The phones with every nasal of `settings.phones` moved onto the nearest murmur of the audio
    (`murmurs_near`; the phone ends at the release and starts at the murmur's start, at most
    `max_murmur_s` before it), where no other ASR stop or nasal ends nearer to the release (the /n/
    of "nombre" keeps its own murmur). The rest of the word moves with it (`moved_with_word`).
    Returns (phones, one record per nasal as `snap_stops`)."""
    out = list(phones)
    if not settings.enabled or not any(p.symbol[:1] in settings.phones for p in out):
        return out, []
    samples = np.asarray(samples, dtype=np.float64).ravel()
    levels = band_levels_db(samples, rate, (settings.low_hz, settings.high_hz), HOP_RATE, settings.frame_s)
    low_db, high_db = levels[:, 0], levels[:, 1]
    return snap_each(out, settings.phones,
                     lambda phone: murmurs_near(low_db, high_db, samples, rate, phone.end, settings),
                     lambda murmur: (max(murmur.start, murmur.release - settings.max_murmur_s), murmur.release))


def moved_with_word(phones: list, index: int, start: float, end: float) -> list:
    """`phones[index]` set to [start, end]; the phones of its word before it mapped linearly from
    [word start, old start] onto [.., start] and those after it from [old end, word end] onto
    [end, ..], each part keeping at least half its length (where the stop moves into it)."""
    stop = phones[index]
    same = [j for j, p in enumerate(phones) if p.word == stop.word and j != index]
    before = [j for j in same if j < index]
    after = [j for j in same if j > index]
    out = list(phones)
    out[index] = replace(stop, start=start, end=end)
    if before:
        old_lo, old_hi = phones[before[0]].start, stop.start
        new_lo = min(old_lo, start - 0.5 * (old_hi - old_lo))
        for j in before:
            out[j] = replace(phones[j], start=_map(phones[j].start, old_lo, old_hi, new_lo, start),
                             end=_map(phones[j].end, old_lo, old_hi, new_lo, start))
    if after:
        old_lo, old_hi = stop.end, phones[after[-1]].end
        new_hi = max(old_hi, end + 0.5 * (old_hi - old_lo))
        for j in after:
            out[j] = replace(phones[j], start=_map(phones[j].start, old_lo, old_hi, end, new_hi),
                             end=_map(phones[j].end, old_lo, old_hi, end, new_hi))
    return out


def _map(t: float, old_lo: float, old_hi: float, new_lo: float, new_hi: float) -> float:
    if old_hi - old_lo <= 1e-9:
        return new_lo
    return new_lo + (t - old_lo) * (new_hi - new_lo) / (old_hi - old_lo)
