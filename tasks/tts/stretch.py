"""Pitch-preserving time-stretch: WORLD analysis, frames resampled along time, resynthesis.

The f0 of each output frame is the nearest input frame's (voicing decisions stay sharp), the spectral
envelope and aperiodicity are interpolated between neighbouring frames; pitch and formants are
untouched, only the speaking rate changes.
"""
from __future__ import annotations

import numpy as np


def frame_positions(frames: int, time_scale: float) -> np.ndarray:
    """Input frame position (fractional) for each output frame when stretching by `time_scale`."""
    count = max(1, int(round(frames * time_scale)))
    return np.clip(np.arange(count) / time_scale, 0, frames - 1)


def stretch_frames(f0: np.ndarray, sp: np.ndarray, ap: np.ndarray, time_scale: float):
    """WORLD parameters (f0 per frame, envelope and aperiodicity frames x bins) for `time_scale` times the duration."""
    if abs(time_scale - 1.0) < 1e-6 or len(f0) < 2:
        return f0, sp, ap
    positions = frame_positions(len(f0), time_scale)
    low = np.floor(positions).astype(int)
    high = np.minimum(low + 1, len(f0) - 1)
    weight = (positions - low)[:, None]
    new_f0 = f0[np.rint(positions).astype(int)]
    new_sp = np.ascontiguousarray(sp[low] * (1 - weight) + sp[high] * weight)
    new_ap = np.ascontiguousarray(ap[low] * (1 - weight) + ap[high] * weight)
    return np.ascontiguousarray(new_f0), new_sp, new_ap


def world_stretch(samples: np.ndarray, rate: int, time_scale: float, analysis_rate: int = 24000,
                  frame_ms: float = 5.0) -> np.ndarray:
    """`samples` spoken `time_scale` times as long (pitch kept), at `rate`."""
    import pyworld

    from tasks.media import resample

    samples = np.asarray(samples, np.float32)
    if abs(time_scale - 1.0) < 1e-3 or len(samples) < rate * 0.05:
        return samples
    x = resample(samples, rate, analysis_rate).astype(np.float64)
    f0, t = pyworld.harvest(x, analysis_rate, f0_floor=60.0, f0_ceil=500.0, frame_period=frame_ms)
    sp = pyworld.cheaptrick(x, f0, t, analysis_rate)
    ap = pyworld.d4c(x, f0, t, analysis_rate)
    f0, sp, ap = stretch_frames(f0, sp, ap, time_scale)
    y = pyworld.synthesize(f0, sp, ap, analysis_rate, frame_ms)
    return np.clip(resample(y.astype(np.float32), analysis_rate, rate), -1, 1).astype(np.float32)
