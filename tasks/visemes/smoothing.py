"""From blended curves to per-frame curves: smoothing that keeps closures and fast releases.

1. a light zero-phase Gaussian on the fine-rate curves (removes the dominance kinks),
2. sampling at the video frame times,
3. closure constraints: every closure phone (p/b/m) closes the lips on the frame nearest its
   centre, and the inside of every pause longer than `min_pause_s` rests closed (at least its
   middle frame; the mouth may stay open `settle_s` after the last sound and before the next, as
   real speakers' mouths do),
4. a closure-preserving slew limit: opening parameters take the lower Lipschitz envelope
   min_j(x_j + step*|k-j|), so closures stay exact, releases are as fast as `max_step` allows and
   no frame-to-frame change exceeds `max_step` (a fraction of the range); the other parameters take
   the mean of the lower and upper envelopes (same bound, peaks kept symmetric).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tasks.visemes.coarticulation import TimedPhone
from tasks.visemes.tables import SILENCE


@dataclass(frozen=True)
class Smoothing:
    sigma_s: float = 0.012  # Gaussian on the fine-rate curves
    max_step: float = 0.5  # largest change between two frames, as a fraction of the 0..1 range
    closed_gap: float = 0.0  # lip gap value that a closure is set to
    closed_jaw_max: float = 0.2  # jaw may not be more open than this during a closure
    min_pause_s: float = 0.3  # pauses at least this long rest with the mouth closed ...
    settle_s: float = 0.1  # ... from this long after the last sound until this long before the next (or on their middle frame)
    opening: tuple[str, ...] = ("jaw", "gap")  # parameters whose minima (closures) are kept exact


def gaussian(curve: np.ndarray, rate: float, sigma_s: float) -> np.ndarray:
    if sigma_s <= 0 or len(curve) < 3:
        return curve.copy()
    from scipy.ndimage import gaussian_filter1d

    return gaussian_filter1d(curve, sigma_s * rate, mode="nearest")


def frame_times(frames: int, fps: float) -> np.ndarray:
    return np.arange(frames) / float(fps)


def lower_envelope(x: np.ndarray, step: float) -> np.ndarray:
    """The largest curve below x whose frame-to-frame change is at most `step` (keeps minima)."""
    y = np.asarray(x, dtype=float).copy()
    for k in range(1, len(y)):
        y[k] = min(y[k], y[k - 1] + step)
    for k in range(len(y) - 2, -1, -1):
        y[k] = min(y[k], y[k + 1] + step)
    return y


def upper_envelope(x: np.ndarray, step: float) -> np.ndarray:
    return -lower_envelope(-np.asarray(x, dtype=float), step)


def slew_limit(x: np.ndarray, step: float, keep_minima: bool) -> np.ndarray:
    if keep_minima:
        return lower_envelope(x, step)
    return 0.5 * (lower_envelope(x, step) + upper_envelope(x, step))


def closure_frames(phones: list[TimedPhone], closures: tuple[str, ...], fps: float, frames: int) -> list[int]:
    """For every closure phone, the frame nearest its centre."""
    out = []
    for phone in phones:
        if phone.viseme in closures:
            out.append(int(np.clip(round(phone.center * fps), 0, frames - 1)))
    return sorted(set(out))


def pause_frames(phones: list[TimedPhone], fps: float, frames: int, min_pause_s: float, settle_s: float) -> np.ndarray:
    """Boolean mask of frames well inside pauses at least `min_pause_s` long: from `settle_s` after
    the last sound to `settle_s` before the next; a pause too short for that window still rests
    on the frame nearest its middle (every long pause closes)."""
    mask = np.zeros(frames, dtype=bool)
    times = frame_times(frames, fps)
    for phone in phones:
        if phone.viseme == SILENCE and phone.end - phone.start >= min_pause_s:
            start = phone.start + (settle_s if phone.start > 0 else 0.0)
            end = phone.end - settle_s
            inside = (times >= start) & (times <= end)
            if not inside.any():
                nearest = int(np.clip(round(phone.center * fps), 0, frames - 1))
                if phone.start <= nearest / fps <= phone.end:
                    inside[nearest] = True
            mask |= inside
    return mask


def to_frames(fine: dict[str, np.ndarray], fine_rate: float, phones: list[TimedPhone], fps: float, frames: int,
              closures: tuple[str, ...], smoothing: Smoothing = Smoothing()) -> dict[str, np.ndarray]:
    """Per-frame curves (values in 0..1) from fine-rate curves sampled from t = 0."""
    fine_times = np.arange(len(next(iter(fine.values())))) / fine_rate
    times = frame_times(frames, fps)
    out = {}
    for name, curve in fine.items():
        smooth = gaussian(curve, fine_rate, smoothing.sigma_s)
        out[name] = np.clip(np.interp(times, fine_times, smooth), 0.0, 1.0)
    closed = closure_frames(phones, closures, fps, frames)
    resting = pause_frames(phones, fps, frames, smoothing.min_pause_s, smoothing.settle_s)
    if "gap" in out:
        out["gap"][closed] = smoothing.closed_gap
        out["gap"][resting] = smoothing.closed_gap
    if "jaw" in out:
        out["jaw"][closed] = np.minimum(out["jaw"][closed], smoothing.closed_jaw_max)
        out["jaw"][resting] = np.minimum(out["jaw"][resting], smoothing.closed_jaw_max)
    for name in out:
        out[name] = np.clip(slew_limit(out[name], smoothing.max_step, name in smoothing.opening), 0.0, 1.0)
    return out


def frame_labels(phones: list[TimedPhone], fps: float, frames: int) -> list[str]:
    """The viseme of the phone under each frame's time (silence where none)."""
    times = frame_times(frames, fps)
    labels = [SILENCE] * frames
    starts = np.array([p.start for p in phones]) if phones else np.zeros(0)
    for k, t in enumerate(times):
        i = int(np.searchsorted(starts, t, side="right")) - 1
        if 0 <= i < len(phones) and phones[i].start <= t < phones[i].end:
            labels[k] = phones[i].viseme
    return labels
