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

The detection (closures, bursts, murmurs) lives in `tasks.visemes.releases`, shared with the visemes
stage; audio only: nothing here knows the synthesizer, so the measure stays independent of it.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np

from tasks.visemes.releases import NasalReleases, NasalSnapping, StopReleases, StopSnapping, closing_ends, nearest_release


def snap_each(phones: list, symbols: Sequence[str], releases) -> tuple[list, list[dict]]:
    """`phones` with each phone whose symbol starts with one of `symbols` moved onto the closure of
    `releases` (StopReleases / NasalReleases) that `nearest_release` picks for it, spanning
    `releases.placed(closure)`; the rest of its word moves with it (`moved_with_word`). Returns
    (phones, one record per such phone: symbol, word, ASR [start, end], snapped [start, end] or None
    where it kept the ASR time)."""
    out = list(phones)
    closing = closing_ends(phones)
    moves = []
    for i, phone in enumerate(phones):
        if phone.symbol[:1] not in symbols:
            continue
        current = out[i]
        record = {"symbol": phone.symbol, "word": phone.word, "asr": [round(current.start, 3), round(current.end, 3)],
                  "snapped": None}
        moves.append(record)
        closure = nearest_release(releases, i, current.end, closing)
        if closure is None:
            continue
        start, end = releases.placed(closure)
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
    out, moves = snap_each(out, settings.phones, StopReleases(samples, rate, settings))
    if settings.nasals.enabled:
        out, nasal_moves = snap_nasals(out, samples, rate, settings.nasals)
        moves += nasal_moves
    return out, moves


def snap_nasals(phones: Sequence, samples: np.ndarray, rate: int, settings: NasalSnapping) -> tuple[list, list[dict]]:
    """The phones with every nasal of `settings.phones` moved onto the nearest murmur of the audio
    (`murmurs_near`; the phone ends at the release and starts at the murmur's start, at most
    `max_murmur_s` before it), where no other ASR stop or nasal ends nearer to the release (the /n/
    of "nombre" keeps its own murmur). The rest of the word moves with it (`moved_with_word`).
    Returns (phones, one record per nasal as `snap_stops`)."""
    out = list(phones)
    if not settings.enabled or not any(p.symbol[:1] in settings.phones for p in out):
        return out, []
    return snap_each(out, settings.phones, NasalReleases(samples, rate, settings))


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
