"""One-Euro filtering of landmark trajectories (Casiez et al., 2012), run forwards and backwards.

At rest the cutoff is low (jitter is removed); when a point moves fast the cutoff rises, so a
mouth closure is not smeared. Running the filter both ways and averaging cancels its lag.
"""
from __future__ import annotations

import math

import numpy as np


def _alpha(cutoff: np.ndarray | float, rate: float) -> np.ndarray | float:
    tau = 1.0 / (2 * math.pi * np.asarray(cutoff))
    return 1.0 / (1.0 + tau * rate)


def one_euro(signal: np.ndarray, rate: float, min_cutoff: float, beta: float, d_cutoff: float = 1.0) -> np.ndarray:
    """Causal One-Euro filter over axis 0 of `signal` (T, ...), sampled at `rate` Hz."""
    signal = np.asarray(signal, dtype=np.float64)
    out = np.empty_like(signal)
    if len(signal) == 0:
        return out
    out[0] = signal[0]
    derivative = np.zeros_like(signal[0])
    a_d = _alpha(d_cutoff, rate)
    for t in range(1, len(signal)):
        raw_d = (signal[t] - out[t - 1]) * rate
        derivative = a_d * raw_d + (1 - a_d) * derivative
        a = _alpha(min_cutoff + beta * np.abs(derivative), rate)
        out[t] = a * signal[t] + (1 - a) * out[t - 1]
    return out


def smooth_landmarks(track: np.ndarray, rate: float, min_cutoff: float = 1.5, beta: float = 3.0,
                     mouth_min_cutoff: float = 3.0, mouth_beta: float = 8.0) -> np.ndarray:
    """Zero-lag One-Euro smoothing of one continuous run of landmarks (T, 68, 2).

    Coordinates are expressed in inter-ocular units first, so the parameters do not depend on the
    face size: `beta` multiplies a speed in inter-ocular distances per second. The 20 mouth points
    get a higher cutoff and speed gain than the rest, so fast articulation passes through.
    """
    from tasks.face.geometry import interocular

    track = np.asarray(track, dtype=np.float64)
    if len(track) < 3:
        return track.copy()
    scale = max(float(np.median([interocular(f) for f in track])), 1e-6)
    unit = track / scale
    out = np.empty_like(unit)
    for points, cutoff, gain in ((slice(0, 48), min_cutoff, beta), (slice(48, 68), mouth_min_cutoff, mouth_beta)):
        forward = one_euro(unit[:, points], rate, cutoff, gain)
        backward = one_euro(unit[::-1, points], rate, cutoff, gain)[::-1]
        out[:, points] = (forward + backward) / 2
    return out * scale
