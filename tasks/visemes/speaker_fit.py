"""Per-speaker viseme targets learned from the source video: how far this speaker opens on each
viseme class, fitted on their own phones against their own measured mouth.

The dominance blend is linear in the class targets: with phones fixed, the curve of one parameter
is F(t) = sum_v B_v(t) T_v, where B_v(t) is class v's share of the dominance at t (times the
loudness factor, through the Gaussian and the frame sampling; frames that the smoothing forces
closed are 0 whatever the targets). So the targets that best explain a measured curve y (put on
the table prediction's scale: on_scale_of) are a least-squares problem; it is ridge-regularised toward the
language table's targets T0,

    T = argmin |y - B T|^2 + strength * |T - T0|^2,

so a class seen on few frames keeps (nearly) its table value: a class needs about `strength`
frames of full dominance to move halfway from the table to what the speaker shows.
The slew limit and the clip to 0..1 are left out of B (they rarely bind on these curves).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from tasks.visemes.coarticulation import Dominance, TimedPhone, reaches
from tasks.visemes.curves import FINE_RATE, Loudness, loudness_curve, timeline
from tasks.visemes.smoothing import Smoothing, closure_frames, frame_times, gaussian, pause_frames
from tasks.visemes.tables import VisemeTable


@dataclass(frozen=True)
class SpeakerFit:
    """Settings of the fit (conf/visemes/default.yaml `speaker_fit`)."""

    enabled: bool = False
    params: tuple[str, ...] = ("gap",)
    strength: float = 20.0  # ridge toward the table, in frames of full dominance
    min_frames: int = 50  # measured frames with speech under them below which nothing is fitted
    range_percentiles: tuple[float, float] = (5.0, 95.0)  # matched to the table's prediction (on_scale_of)


def basis(phones: list[TimedPhone], table: VisemeTable, fps: float, frames: int, param: str,
          model: Dominance = Dominance(), smoothing: Smoothing = Smoothing(),
          loudness: tuple[np.ndarray, float] | None = None, loudness_model: Loudness = Loudness()) -> tuple[list[str], np.ndarray]:
    """(classes, B): B[k, v] is what class v's target contributes to `param` on frame k, so that
    the stage's curve (before its slew limit and clip) is B @ targets."""
    tiled, fine_times = timeline(phones, fps, frames)
    classes = list(table.classes)
    index = {name: i for i, name in enumerate(classes)}
    weights = np.zeros((len(fine_times), len(classes)))
    total = np.full(len(fine_times), 1e-9)
    for phone, span, cls, shape in reaches(tiled, table, fine_times, model):
        weight = shape * cls.dominance[param]
        weights[span, index[phone.viseme]] += weight
        total[span] += weight
    shares = weights / total[:, None]
    empty = total < 1e-6
    shares[empty] = 0.0
    shares[empty, index["sil"]] = 1.0  # as blend: the rest shape where no phone reaches
    if loudness is not None and loudness_model.gain > 0 and param in loudness_model.params:
        level = loudness_curve(loudness[0], loudness[1], fine_times, loudness_model)
        shares *= ((1.0 - loudness_model.gain) + loudness_model.gain * level)[:, None]
    times = frame_times(frames, fps)
    out = np.empty((frames, len(classes)))
    for i in range(len(classes)):
        out[:, i] = np.interp(times, fine_times, gaussian(shares[:, i], FINE_RATE, smoothing.sigma_s))
    if param in ("gap", "jaw"):
        forced = np.zeros(frames, dtype=bool)
        forced[closure_frames(tiled, table.closures, fps, frames)] = True
        forced |= pause_frames(tiled, fps, frames, smoothing.min_pause_s, smoothing.settle_s)
        # closed frames hold closed_gap (0) and the jaw at most closed_jaw_max: both ~ independent of the targets
        out[forced] = 0.0
    return classes, out


def on_scale_of(measured: np.ndarray, reference: np.ndarray, rows: np.ndarray, percentiles: tuple[float, float] = (5.0, 95.0)) -> np.ndarray:
    """The measured curve mapped so that its percentiles on `rows` fall on the reference curve's:
    the calibration already scales the curves to the speaker's range, so the fit learns only how
    the classes open relative to each other, and a speaker who moves as the table predicts keeps
    the table's targets (mapped onto 0..1 instead, the fit would also rescale every target)."""
    ok = rows & np.isfinite(measured)
    if ok.sum() < 2:
        return np.full(len(measured), np.nan)
    low, high = np.percentile(measured[ok], percentiles)
    ref_low, ref_high = np.percentile(reference[ok], percentiles)
    return ref_low + (measured - low) / max(high - low, 1e-9) * (ref_high - ref_low)


def fit_targets(design: np.ndarray, observed: np.ndarray, prior: np.ndarray, strength: float) -> np.ndarray:
    """Ridge toward `prior` on the rows where `observed` is finite; targets clipped to 0..1."""
    rows = np.isfinite(observed)
    x, y = design[rows], observed[rows]
    gram = x.T @ x + strength * np.eye(x.shape[1])
    return np.clip(np.linalg.solve(gram, x.T @ y + strength * prior), 0.0, 1.0)


def evidence(design: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Per class, the frames of full dominance it had on `rows` (the diagonal the ridge weighs)."""
    return (design[rows] ** 2).sum(axis=0)


def with_targets(table: VisemeTable, param: str, targets: dict[str, float]) -> VisemeTable:
    """A copy of `table` whose classes aim `param` at `targets` (classes not named keep theirs)."""
    classes = {name: (replace(cls, target={**cls.target, param: float(targets[name])}) if name in targets else cls)
               for name, cls in table.classes.items()}
    return replace(table, classes=classes, unknown=set())


def fit_param(classes: list[str], design: np.ndarray, curve: np.ndarray, rows: np.ndarray, table: VisemeTable,
              param: str, settings: SpeakerFit) -> dict[str, float] | None:
    """class -> fitted target of `param` from the frames `rows` of `curve` (raw units, NaN where not
    measured) and its basis `design`; None with fewer than min_frames usable frames under speech."""
    use = rows & np.isfinite(curve)
    if (use & (design.sum(axis=1) > 0)).sum() < settings.min_frames:
        return None
    prior = np.array([table.classes[c].target[param] for c in classes])
    observed = np.where(use, on_scale_of(curve, design @ prior, use, settings.range_percentiles), np.nan)
    targets = fit_targets(design, observed, prior, settings.strength)
    return {c: round(float(t), 4) for c, t in zip(classes, targets)}


def fit_speaker(phones: list[TimedPhone], table: VisemeTable, fps: float, frames: int, measured: dict[str, np.ndarray],
                settings: SpeakerFit, rows: np.ndarray | None = None, **curve_settings) -> dict[str, dict[str, float]]:
    """param -> class -> fitted target, from frames `rows` (default: all) of the `measured` curves
    (raw units per frame, NaN where unmeasured); `curve_settings` as `basis` takes them."""
    out = {}
    for param in settings.params:
        curve = np.asarray(measured.get(param, []), dtype=float)
        if curve.shape != (frames,):
            continue
        classes, design = basis(phones, table, fps, frames, param, **curve_settings)
        fitted = fit_param(classes, design, curve, np.ones(frames, bool) if rows is None else rows, table, param, settings)
        if fitted is not None:
            out[param] = fitted
    return out


def time_folds(frames: int, blocks: int, guard: int):
    """(train, test) masks: `blocks` contiguous test blocks in turn; the fit sees none of the test
    block nor `guard` frames either side of it (neighbouring frames share the same movement)."""
    edges = np.linspace(0, frames, blocks + 1).astype(int)
    for start, stop in zip(edges[:-1], edges[1:]):
        test = np.zeros(frames, dtype=bool)
        test[start:stop] = True
        train = np.ones(frames, dtype=bool)
        train[max(0, start - guard):min(frames, stop + guard)] = False
        yield train, test
