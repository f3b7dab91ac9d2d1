"""A synthesizer's bilabials moved onto its own audio's lip releases.

Kokoro's phone boundaries come from its duration predictor, not from where its decoder's audio
releases the lips: on the 7 Spanish dubs its /p/ ends 26-37 ms before the audible burst on the
frontal clips (37-43 ms after it on stage_mic_cuts), its /m/ 20-40 ms (median) off the murmur's end.
The mouth closes where the phones say, so it parted before the burst. Each /p b/ goes onto the
nearest closure of the audio released (`tasks.visemes.releases`) within a small window of its end,
each /m/ onto the nearest murmur; the phone before it ends at the closure's start, the one after
starts at the release. Where nothing clear is found the phone keeps its time.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tasks.visemes.coarticulation import TimedPhone
from tasks.visemes.releases import NasalReleases, NasalSnapping, StopReleases, StopSnapping, closing_ends, nearest_release


@dataclass(frozen=True)
class BilabialReleases:
    """conf/visemes `bilabial_releases`."""

    enabled: bool = False
    stops: tuple[str, ...] = ("p", "b")  # first letter of the phones moved onto a silent closure and burst
    nasals: tuple[str, ...] = ("m",)     # ... onto a murmur and its oral release
    window_s: float = 0.06      # how far the found release may be from the phone's end
    min_phone_s: float = 0.02   # the bilabial and its neighbours keep at least this
    stop_detection: dict = field(default_factory=dict)   # tasks.visemes.releases.StopSnapping fields
    nasal_detection: dict = field(default_factory=dict)  # ... NasalSnapping fields

    @classmethod
    def of(cls, config: dict | None) -> "BilabialReleases":
        values = dict(config or {})
        for key in ("stops", "nasals"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)


def snap_bilabials(phones: list[TimedPhone], samples: np.ndarray, rate: int, settings: BilabialReleases
                   ) -> tuple[list[TimedPhone], list[dict]]:
    """`phones` (in time order, one audio) with each /p b/ and /m/ moved onto its audio's release
    (see the module); returns (phones, one record per bilabial: symbol, before [start, end], after
    [start, end] or None where it kept its time)."""
    out = list(phones)
    if not settings.enabled or not any(p.symbol[:1] in settings.stops + settings.nasals for p in out):
        return out, []
    finders = []
    if settings.stops:
        stop = StopSnapping.of({**settings.stop_detection, "window_s": settings.window_s})
        finders.append((settings.stops, StopReleases(samples, rate, stop)))
    if settings.nasals:
        nasal = NasalSnapping.of({**settings.nasal_detection, "window_s": settings.window_s})
        finders.append((settings.nasals, NasalReleases(samples, rate, nasal)))
    closing = closing_ends(phones)
    records = []
    for i, phone in enumerate(phones):
        finder = next((f for symbols, f in finders if phone.symbol[:1] in symbols), None)
        if finder is None:
            continue
        record = {"symbol": phone.symbol, "before": [round(phone.start, 3), round(phone.end, 3)], "after": None}
        records.append(record)
        closure = nearest_release(finder, i, phone.end, closing)
        if closure is None:
            continue
        start, end = finder.placed(closure)
        placed = with_neighbours(out, i, start, end, settings.min_phone_s)  # earlier moves kept
        if placed is not None:
            out = placed
            record["after"] = [round(out[i].start, 3), round(out[i].end, 3)]
    return out, records


def with_neighbours(phones: list[TimedPhone], index: int, start: float, end: float, min_s: float) -> list[TimedPhone] | None:
    """`phones[index]` set to [start, end], the phone just before it (touching it, or reached) ending
    at `start` and the one just after starting at `end`; the start is held back and the end forward so that
    each neighbour keeps `min_s`; None where the bilabial itself would keep less."""
    out = list(phones)
    phone = phones[index]
    previous = phones[index - 1] if index > 0 and phones[index - 1].end >= min(phone.start, start) - 1e-3 else None
    following = (phones[index + 1] if index + 1 < len(phones) and phones[index + 1].start <= max(phone.end, end) + 1e-3
                 else None)
    if previous is not None:
        start = max(start, previous.start + min_s)
    if following is not None:
        end = min(end, following.end - min_s)
    if end - start < min_s:
        return None
    out[index] = TimedPhone(start, end, phone.symbol, phone.viseme, phone.word)
    if previous is not None:
        out[index - 1] = TimedPhone(previous.start, start, previous.symbol, previous.viseme, previous.word)
    if following is not None:
        out[index + 1] = TimedPhone(end, following.end, following.symbol, following.viseme, following.word)
    return out
