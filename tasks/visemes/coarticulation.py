"""Cohen-Massaro coarticulation: each timed phone exerts a dominance over time on every mouth
parameter; the parameter at time t is the dominance-weighted average of the phones' targets.

    D_s(t) = a_s,p * exp(-(theta * d_s(t)) ** c)      F_p(t) = sum_s D_s(t) T_s,p / sum_s D_s(t)

with d_s(t) the distance from t to the phone's interval (0 inside it: a plateau, so a short phone
still owns its own interval) and theta the anticipatory rate before the phone (smaller: the mouth
prepares the next sound early) or the carry-over rate after it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tasks.visemes.tables import SILENCE, VisemeTable


@dataclass(frozen=True)
class TimedPhone:
    start: float
    end: float
    symbol: str
    viseme: str
    word: str = ""

    @property
    def center(self) -> float:
        return 0.5 * (self.start + self.end)


@dataclass(frozen=True)
class Dominance:
    anticipation_s: float = 0.07  # 1/theta before a phone: how early it starts to shape the mouth
    carryover_s: float = 0.08  # 1/theta after a phone: how long it lingers
    exponent: float = 1.0  # c in exp(-(theta d)^c)
    reach: float = 6.0  # a phone's influence is cut beyond reach/theta (exp(-6) ~ 0.25 %)


def dominance(t: np.ndarray, start: float, end: float, magnitude: float, model: Dominance,
              rate: float | tuple[float, float] = 1.0) -> np.ndarray:
    """Dominance of one phone [start, end] at times t; `rate` (before, after) sharpens its reach."""
    before_rate, after_rate = rate if isinstance(rate, tuple) else (rate, rate)
    before = before_rate * np.clip(start - t, 0.0, None) / model.anticipation_s
    after = after_rate * np.clip(t - end, 0.0, None) / model.carryover_s
    return magnitude * np.exp(-((before + after) ** model.exponent))


def fill_silence(phones: list[TimedPhone], duration: float) -> list[TimedPhone]:
    """Sorted phones with explicit silence phones in every gap (and before/after the speech)."""
    out: list[TimedPhone] = []
    cursor = 0.0
    for phone in sorted(phones, key=lambda p: p.start):
        if phone.start > cursor + 1e-6:
            out.append(TimedPhone(cursor, phone.start, "_", SILENCE))
        start = max(phone.start, cursor)
        if phone.end > start:
            out.append(TimedPhone(start, phone.end, phone.symbol, phone.viseme, phone.word))
            cursor = phone.end
    if duration > cursor + 1e-6:
        out.append(TimedPhone(cursor, duration, "_", SILENCE))
    merged: list[TimedPhone] = []
    for phone in out:  # one pause, however many silence phones it was given as
        if merged and phone.viseme == SILENCE and merged[-1].viseme == SILENCE:
            merged[-1] = TimedPhone(merged[-1].start, phone.end, "_", SILENCE)
        else:
            merged.append(phone)
    return merged


def reaches(phones: list[TimedPhone], table: VisemeTable, times: np.ndarray, model: Dominance):
    """Per phone that reaches any of `times`: (phone, slice of `times` it reaches, its viseme class,
    its dominance there before the class's per-parameter weight)."""
    reach_before, reach_after = model.reach * model.anticipation_s, model.reach * model.carryover_s
    for phone in phones:
        lo = np.searchsorted(times, phone.start - reach_before)
        hi = np.searchsorted(times, phone.end + reach_after, side="right")
        if hi <= lo:
            continue
        cls = table.classes[phone.viseme]
        yield phone, slice(lo, hi), cls, dominance(times[lo:hi], phone.start, phone.end, 1.0, model, cls.rate)


def blend(phones: list[TimedPhone], table: VisemeTable, times: np.ndarray, model: Dominance = Dominance()) -> dict[str, np.ndarray]:
    """Mouth parameters at `times` from phones that tile the timeline (see fill_silence)."""
    params = table.params
    numerator = {p: np.zeros(len(times)) for p in params}
    denominator = {p: np.full(len(times), 1e-9) for p in params}
    rest = table.target(SILENCE)
    for _, span, cls, shape in reaches(phones, table, times, model):
        for p in params:
            weight = shape * cls.dominance[p]
            numerator[p][span] += weight * cls.target[p]
            denominator[p][span] += weight
    out = {}
    for p in params:
        curve = numerator[p] / denominator[p]
        empty = denominator[p] < 1e-6
        curve[empty] = rest[p]
        out[p] = curve
    return out
