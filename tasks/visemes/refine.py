"""Phone boundaries refined on real speech: a broad-class forced alignment on the audio.

Whisper gives word timings only, and coarse ones (tens of ms, sometimes a whole syllable off);
spreading a word's phones by typical durations puts vowels where consonants are. Here every
phone is a left-to-right state with a minimum duration and an expected *sonority* (loud voiced
vowels high, nasals and liquids lower, fricatives and stop closures low, pauses zero, see
conf/visemes/tables/sonority.yaml), and a Viterbi pass finds the boundaries that best explain
the audio's sonority curve:

    sonority(t) = level(t) * (v0 + (1 - v0) * voiced(t)) * (l0 + (1 - l0) * low_share(t))

level: energy in dB mapped to 0..1 over `range_db` under the loud speech; voiced: WORLD's DIO f0
found (pyworld); low_share: the part of the energy under 1 kHz (vowels and nasals keep theirs
there, fricatives do not). A time prior keeps each phone near where the word timings put it
(free within `tolerance_s`, then a quadratic cost), and an optional pause between words lets a
breath or hesitation take its own time instead of stretching a phone over it.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import yaml

from tasks.visemes.coarticulation import TimedPhone
from tasks.visemes.tables import SILENCE, TABLES_DIR, VisemeTable

FEATURE_RATE = 100.0  # Hz: one sonority value every 10 ms


@dataclass(frozen=True)
class Refinement:
    sigma: float = 0.25  # spread of the sonority around a class's expected value
    tolerance_s: float = 0.06  # a phone may move this far from its word-timing place for free
    prior_s: float = 0.08  # ... beyond it the cost grows as (excess / prior_s)^2
    prior_weight: float = 1.0
    pause_cost: float = 0.3  # per frame of an inserted pause between words (stops pauses everywhere)
    phrase_gap_s: float = 0.25  # words further apart than this are aligned separately
    margin_s: float = 0.1  # a phrase may start/end this much outside its word timings
    range_db: float = 35.0  # sonority level 0 this far under the loud (95th percentile) speech
    voicing_floor: float = 0.35  # v0: sonority of an unvoiced frame relative to a voiced one
    low_floor: float = 0.4  # l0: sonority of a frame with no energy under 1 kHz
    # below this spread between loud (95th percentile) and quiet (10th) frames, music or noise
    # fills every gap and the sonority cannot show the phones: the word timings are kept
    min_dynamic_range_db: float = 20.0


@lru_cache(maxsize=4)
def load_sonority(directory: Path = TABLES_DIR) -> tuple[dict[str, tuple[float, float]], dict[str, str]]:
    """(class -> (sonority, min seconds), symbol -> class) from sonority.yaml."""
    data = yaml.safe_load((Path(directory) / "sonority.yaml").read_text(encoding="utf-8"))
    classes = {name: (float(spec["sonority"]), float(spec["min_s"])) for name, spec in data["classes"].items()}
    symbols = {unicodedata.normalize("NFD", str(s))[:1]: name for name, group in data["symbols"].items() for s in group}
    return classes, symbols


def broad_class(phone: TimedPhone, table: VisemeTable, symbols: dict[str, str]) -> str:
    if phone.viseme == SILENCE:
        return "pause"
    found = symbols.get(unicodedata.normalize("NFD", phone.symbol)[:1])
    if found:
        return found
    return "vowel" if phone.viseme in table.vowels else "fricative"


def sonority(samples: np.ndarray, rate: int, model: Refinement = Refinement()) -> np.ndarray:
    """Sonority in 0..1 at FEATURE_RATE (frame k centred on k / FEATURE_RATE)."""
    import pyworld

    x = np.asarray(samples, dtype=np.float64).ravel()
    hop = int(round(rate / FEATURE_RATE))
    n = int(np.ceil(len(x) / hop)) if len(x) else 0
    if n == 0:
        return np.zeros(0)
    window = int(0.025 * rate)
    padded = np.pad(x, (window // 2, window))
    index = np.arange(n)[:, None] * hop + np.arange(window)[None, :]
    spectrum = np.abs(np.fft.rfft(padded[index] * np.hanning(window), axis=1)) ** 2
    freqs = np.fft.rfftfreq(window, 1.0 / rate)
    total = spectrum.sum(axis=1) + 1e-12
    low = spectrum[:, (freqs >= 80) & (freqs <= 1000)].sum(axis=1) / total
    db = 10 * np.log10(total)
    level = np.clip((db - (np.percentile(db, 95) - model.range_db)) / model.range_db, 0.0, 1.0)
    f0, times = pyworld.dio(x, rate, frame_period=1000.0 / FEATURE_RATE)
    voiced = np.interp(np.arange(n) / FEATURE_RATE, times, (f0 > 0).astype(float))
    out = level * (model.voicing_floor + (1 - model.voicing_floor) * voiced) * (model.low_floor + (1 - model.low_floor) * low)
    top = float(np.percentile(out, 95))
    return np.clip(out / top, 0.0, 1.0) if top > 0 else out


def dynamic_range_db(env: np.ndarray) -> float:
    """Loud (95th percentile) minus quiet (10th percentile) level of an RMS envelope, in dB."""
    env = np.asarray(env, dtype=float)
    if env.size == 0 or not np.any(env > 0):
        return 0.0
    db = 20 * np.log10(np.maximum(env, 1e-6))
    return float(np.percentile(db, 95) - np.percentile(db, 10))


def phrases(phones: list[TimedPhone], gap_s: float) -> list[list[TimedPhone]]:
    out: list[list[TimedPhone]] = []
    for phone in phones:
        if out and phone.start - out[-1][-1].end < gap_s:
            out[-1].append(phone)
        else:
            out.append([phone])
    return out


def viterbi(emission: np.ndarray, minimum: np.ndarray, optional: np.ndarray) -> np.ndarray | None:
    """Best left-to-right path through units (rows of `emission`, log scores per frame), each held
    at least `minimum[u]` frames; optional units may be skipped. Returns the unit of every frame,
    or None when the frames are too few."""
    units, frames = emission.shape
    sub_unit = np.repeat(np.arange(units), minimum)
    first = np.concatenate([[0], np.cumsum(minimum)[:-1]])
    last = first + minimum - 1
    states = len(sub_unit)
    entry = np.full(states, -1)  # the substate each one is entered from (the chain or the previous unit)
    entry[1:] = np.arange(states - 1)
    skip = np.full(states, -1)  # entered from two units back when the unit between is optional
    for u in range(2, units):
        if optional[u - 1] and not optional[u]:
            skip[first[u]] = last[u - 2]
    loops = np.zeros(states, dtype=bool)
    loops[last] = True
    score = np.full(states, -np.inf)
    score[first[0]] = emission[0, 0]
    if optional[0] and units > 1:
        score[first[1]] = emission[1, 0]
    back = np.zeros((frames, states), dtype=np.int32)
    for t in range(1, frames):
        stay = np.where(loops, score, -np.inf)
        advance = np.where(entry >= 0, score[np.maximum(entry, 0)], -np.inf)
        jump = np.where(skip >= 0, score[np.maximum(skip, 0)], -np.inf)
        best = np.maximum(np.maximum(stay, advance), jump)
        back[t] = np.where(best == stay, np.arange(states), np.where(best == advance, entry, skip))
        score = best + emission[sub_unit, t]
    ends = [last[-1]] + ([last[-2]] if optional[-1] and units > 1 else [])
    end = max(ends, key=lambda s: score[s])
    if not np.isfinite(score[end]):
        return None
    path = np.empty(frames, dtype=int)
    state = end
    for t in range(frames - 1, -1, -1):
        path[t] = sub_unit[state]
        state = back[t, state]
    return path


def refine(phones: list[TimedPhone], table: VisemeTable, son: np.ndarray, model: Refinement = Refinement(),
           directory: Path = TABLES_DIR) -> list[TimedPhone]:
    """The same phones with boundaries re-placed on the sonority curve (pauses are left as gaps)."""
    classes, symbols = load_sonority(directory)
    spoken = [p for p in phones if p.viseme != SILENCE]
    out: list[TimedPhone] = []
    previous_end = 0.0
    groups = phrases(spoken, model.phrase_gap_s)
    for index, group in enumerate(groups):
        next_start = groups[index + 1][0].start if index + 1 < len(groups) else len(son) / FEATURE_RATE
        lo = max(previous_end, group[0].start - model.margin_s)
        hi = min(next_start, group[-1].end + model.margin_s)
        placed = align_phrase(group, table, son, lo, hi, model, classes, symbols)
        out.extend(placed)
        previous_end = max(previous_end, placed[-1].end if placed else previous_end)
    return out


def align_phrase(group: list[TimedPhone], table: VisemeTable, son: np.ndarray, lo: float, hi: float, model: Refinement,
                 classes: dict, symbols: dict) -> list[TimedPhone]:
    k0, k1 = int(np.floor(lo * FEATURE_RATE)), min(len(son), int(np.ceil(hi * FEATURE_RATE)))
    times = np.arange(k0, k1) / FEATURE_RATE
    units: list[tuple[float, float, float, int, bool, int | None]] = []  # sonority, start, end, min frames, optional, phone

    def add_pause(start: float, end: float) -> None:
        units.append((classes["pause"][0], start, end, 1, True, None))

    add_pause(lo, group[0].start)
    for i, phone in enumerate(group):
        if i and phone.word != group[i - 1].word:
            add_pause(group[i - 1].end, phone.start)
        target, min_s = classes[broad_class(phone, table, symbols)]
        units.append((target, phone.start, phone.end, max(1, int(round(min_s * FEATURE_RATE))), False, i))
    add_pause(group[-1].end, hi)
    minimum = np.array([u[3] for u in units])
    if len(times) < minimum[[not u[4] for u in units]].sum() + 1:
        return list(group)
    observed = son[k0:k1]
    emission = np.empty((len(units), len(times)))
    for row, (target, start, end, _, optional, _) in enumerate(units):
        fit = -0.5 * ((observed - target) / model.sigma) ** 2
        if optional:
            emission[row] = fit - model.pause_cost
            continue
        excess = np.maximum(0.0, np.maximum(start - times, times - end) - model.tolerance_s)
        emission[row] = fit - model.prior_weight * (excess / model.prior_s) ** 2
    path = viterbi(emission, minimum, np.array([u[4] for u in units]))
    if path is None:
        return list(group)
    out = []
    for row, unit in enumerate(units):
        if unit[5] is None:
            continue
        frames = np.flatnonzero(path == row)
        phone = group[unit[5]]
        start, end = times[frames[0]] - 0.5 / FEATURE_RATE, times[frames[-1]] + 0.5 / FEATURE_RATE
        out.append(TimedPhone(float(max(start, lo)), float(min(end, hi)), phone.symbol, phone.viseme, phone.word))
    return out
