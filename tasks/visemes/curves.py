"""Timed phones -> per-frame mouth curves (pure), and the checks the stage reports."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tasks.visemes.coarticulation import Dominance, TimedPhone, blend, fill_silence
from tasks.visemes.smoothing import Smoothing, frame_labels, frame_times, to_frames
from tasks.visemes.tables import SILENCE, VisemeTable

FINE_RATE = 200.0  # Hz, the rate the dominance model is evaluated at


@dataclass
class Curves:
    params: dict[str, np.ndarray]  # 0..1 of the speaker's range, one value per frame
    labels: list[str]
    phones: list[TimedPhone]  # tiled: silences included
    fps: float
    frames: int
    fine: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class Loudness:
    """Louder syllables open the mouth wider: opening parameters are scaled by
    (1 - gain) + gain * loudness, loudness being the smoothed level in 0..1 (closures stay closed)."""

    gain: float = 0.5
    floor_db: float = -30.0  # below the speech's 95th-percentile level: counts as 0
    sigma_s: float = 0.03
    params: tuple[str, ...] = ("jaw", "gap")


def loudness_curve(env: np.ndarray, env_rate: float, times: np.ndarray, model: Loudness = Loudness()) -> np.ndarray:
    """Level of an RMS envelope in 0..1 at `times` (0 at floor_db under the loud speech, 1 at it)."""
    from tasks.visemes.smoothing import gaussian

    env = np.asarray(env, dtype=float)
    if env.size == 0 or not np.any(env > 0):
        return np.ones(len(times))
    db = 20 * np.log10(np.maximum(env, 1e-6))
    top = float(np.percentile(db, 95))
    level = np.clip((db - (top + model.floor_db)) / -model.floor_db, 0.0, 1.0)
    level = gaussian(level, env_rate, model.sigma_s)
    return np.interp(times, np.arange(len(level)) / env_rate, level, right=0.0)


def timeline(phones: list[TimedPhone], fps: float, frames: int) -> tuple[list[TimedPhone], np.ndarray]:
    """(the phones that start within the video, silences filled in between and after them; the
    FINE_RATE grid over the video the curves are blended on)."""
    duration = frames / float(fps)
    tiled = fill_silence([p for p in phones if p.start < duration], max(duration, max((p.end for p in phones), default=0.0)))
    return tiled, np.arange(int(np.ceil(duration * FINE_RATE)) + 1) / FINE_RATE


def compute_curves(phones: list[TimedPhone], table: VisemeTable, fps: float, frames: int,
                   dominance: Dominance = Dominance(), smoothing: Smoothing = Smoothing(),
                   loudness: np.ndarray | None = None, loudness_model: Loudness = Loudness()) -> Curves:
    """`loudness`: optional (envelope, rate) level source, see loudness_curve."""
    tiled, fine_times = timeline(phones, fps, frames)
    fine = blend(tiled, table, fine_times, dominance)
    if loudness is not None and loudness_model.gain > 0:
        env, env_rate = loudness
        level = loudness_curve(env, env_rate, fine_times, loudness_model)
        for name in loudness_model.params:
            if name in fine:
                fine[name] = fine[name] * ((1.0 - loudness_model.gain) + loudness_model.gain * level)
    params = to_frames(fine, FINE_RATE, tiled, fps, frames, table.closures, smoothing)
    return Curves(params, frame_labels(tiled, fps, frames), tiled, fps, frames, fine)


def check(curves: Curves, table: VisemeTable, closure_threshold: float = 0.1, min_pause_s: float = 0.3,
          max_step: float = 0.5) -> dict:
    """The stage's acceptance numbers: closures reached, long pauses closed, largest frame jump."""
    times = frame_times(curves.frames, curves.fps)
    gap = curves.params["gap"]
    half = 0.5 / curves.fps
    bilabials = [p for p in curves.phones if p.viseme in table.closures and p.center < curves.frames / curves.fps]
    closed = 0
    for p in bilabials:
        window = (times >= p.start - half) & (times <= p.end + half)
        if not window.any():
            window[int(np.clip(round(p.center * curves.fps), 0, curves.frames - 1))] = True
        closed += bool((gap[window] <= closure_threshold).any())
    pauses = [p for p in curves.phones if p.viseme == SILENCE and p.end - p.start >= min_pause_s]
    pauses_closed = 0
    for p in pauses:
        window = (times >= p.start) & (times <= p.end)
        pauses_closed += bool((gap[window] <= closure_threshold).any())
    jumps = {name: float(np.max(np.abs(np.diff(c)))) if len(c) > 1 else 0.0 for name, c in curves.params.items()}
    return {
        "bilabials": len(bilabials),
        "bilabials_closed": closed,
        "bilabial_closure_rate": closed / len(bilabials) if bilabials else 1.0,
        "long_pauses": len(pauses),
        "long_pauses_closed": pauses_closed,
        "max_jump": max(jumps.values(), default=0.0),
        "max_jump_per_param": jumps,
        "closure_threshold": closure_threshold,
        "max_step": max_step,
        "ok": closed == len(bilabials) and pauses_closed == len(pauses) and max(jumps.values(), default=0.0) <= max_step + 1e-9,
    }
