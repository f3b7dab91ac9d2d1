"""Pure functions of the lipsync stage: nothing here reads a file or runs a model.

Mouth-shape features are the visemes stage's own measures (gap, width, jaw in inter-ocular units,
`tasks.visemes.calibration.mouth_measures`) mapped onto 0..1 of the speaker's calibrated range, so a
bank exemplar and a visemes target frame are directly comparable.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

FEATURES = ("gap", "width", "jaw")


# ---------------------------------------------------------------- mouth-shape features
def shape_features(landmarks: np.ndarray, ranges: dict[str, Sequence[float]]) -> np.ndarray:
    """(N, 68, 2) landmarks -> (N, 3) gap/width/jaw as 0..1 of the speaker's range (may leave 0..1)."""
    from tasks.visemes.calibration import mouth_measures

    measures = mouth_measures(np.asarray(landmarks, dtype=float).reshape(-1, 68, 2))
    return np.stack([normalise(measures[name], ranges[name]) for name in FEATURES], axis=1)


def normalise(values: np.ndarray, span: Sequence[float]) -> np.ndarray:
    low, high = float(span[0]), float(span[1])
    return (np.asarray(values, dtype=float) - low) / max(high - low, 1e-6)


# ---------------------------------------------------------------- selection over the sequence
def viterbi(unary: np.ndarray, transition: Callable[[int], np.ndarray] | np.ndarray | None = None) -> np.ndarray:
    """Minimum-cost path through T frames x K states.

    unary (T, K): cost of state k at frame t. transition: (K, K) array (cost prev -> next) or a
    callable t -> (K, K) for the step into frame t (t >= 1). Returns the state index per frame.
    """
    unary = np.asarray(unary, dtype=float)
    frames, states = unary.shape
    if frames == 0:
        return np.zeros(0, dtype=int)
    cost = unary[0].copy()
    back = np.zeros((frames, states), dtype=int)
    for t in range(1, frames):
        step = transition(t) if callable(transition) else (np.zeros((states, states)) if transition is None else transition)
        total = cost[:, None] + np.asarray(step, dtype=float)
        back[t] = np.argmin(total, axis=0)
        cost = total[back[t], np.arange(states)] + unary[t]
    path = np.zeros(frames, dtype=int)
    path[-1] = int(np.argmin(cost))
    for t in range(frames - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def path_cost(unary: np.ndarray, transition: np.ndarray, path: Sequence[int]) -> float:
    total = sum(float(unary[t, k]) for t, k in enumerate(path))
    return total + sum(float(transition[a, b]) for a, b in zip(path[:-1], path[1:]))


class BankIndex:
    """Exemplars indexed by mouth shape (0..1 features) and head pose (yaw, pitch degrees)."""

    def __init__(self, features: np.ndarray, poses: np.ndarray, weights: Sequence[float] = (1.0, 0.5, 0.5),
                 pose_weight: float = 0.5, pose_scale: float = 10.0, closure_weight: float = 0.0, closure_level: float = 0.05,
                 tear_weight: float = 0.0):
        self.features = np.asarray(features, dtype=float).reshape(-1, len(FEATURES))
        self.poses = np.asarray(poses, dtype=float).reshape(-1, 2)
        self.weights = np.asarray(weights, dtype=float)
        self.pose_weight = float(pose_weight)
        self.pose_scale = float(pose_scale)
        self.closure_weight, self.closure_level = float(closure_weight), float(closure_level)
        self.tear_weight = float(tear_weight)

    def __len__(self) -> int:
        return len(self.features)

    def cost(self, targets: np.ndarray, poses: np.ndarray) -> np.ndarray:
        """(T, 3) targets and (T, 2) poses -> (T, K) unary cost of every exemplar."""
        targets = np.asarray(targets, dtype=float).reshape(-1, len(FEATURES))
        poses = np.asarray(poses, dtype=float).reshape(-1, 2)
        shape = (((targets[:, None, :] - self.features[None]) ** 2) * self.weights).sum(-1)
        pose = (((poses[:, None, :] - self.poses[None]) / self.pose_scale) ** 2).sum(-1)
        # a closure asks for lips that really touch: a warp that closes an open exemplar's landmarks
        # can leave its teeth showing, so open exemplars cost extra there (linear, not squared)
        closing = (targets[:, 0] <= self.closure_level)[:, None] * np.clip(self.features[None, :, 0], 0, None)
        # opening an exemplar wider than it is tears its mouth along the midline (a band of its own
        # stretched, darkened pixels); closing one squeezes real pixels away: the first costs more
        tearing = np.clip(targets[:, None, 0] - self.features[None, :, 0], 0, None) ** 2
        return shape + self.pose_weight * pose + self.closure_weight * closing + self.tear_weight * tearing

    def nearest(self, targets: np.ndarray, poses: np.ndarray, k: int = 1) -> np.ndarray:
        """(T, k) indices of the k cheapest exemplars per frame, best first."""
        cost = self.cost(targets, poses)
        k = min(k, cost.shape[1])
        part = np.argpartition(cost, k - 1, axis=1)[:, :k]
        order = np.argsort(np.take_along_axis(cost, part, axis=1), axis=1)
        return np.take_along_axis(part, order, axis=1)


def select(index: BankIndex, targets: np.ndarray, poses: np.ndarray, source_frames: np.ndarray,
           descriptors: np.ndarray | None = None, smoothness: float = 1.0, hold_cost: float = 0.02,
           candidates: int = 24) -> np.ndarray:
    """Exemplar per frame over a whole run of frames (Viterbi over the `candidates` best per frame).

    The step cost is 0 from an exemplar to its own successor in the source (real motion), `hold_cost`
    for staying on one exemplar, else `smoothness` x (shape change beyond the targets' own change +
    appearance distance).
    """
    targets = np.asarray(targets, dtype=float)
    if len(targets) == 0 or len(index) == 0:
        return np.zeros(0, dtype=int)
    unary_all = index.cost(targets, poses)
    cand = index.nearest(targets, poses, candidates)
    unary = np.take_along_axis(unary_all, cand, axis=1)
    source_frames = np.asarray(source_frames)

    # a change of mouth shape that the targets themselves make is articulation, not a jump: only the
    # shape change beyond the targets' own costs (else short closures are smoothed away)
    moves = np.sqrt((np.diff(targets, axis=0) ** 2 * index.weights).sum(-1))

    def transition(t: int) -> np.ndarray:
        a, b = cand[t - 1], cand[t]
        shape = np.sqrt((((index.features[a][:, None] - index.features[b][None]) ** 2) * index.weights).sum(-1))
        shape = np.maximum(shape - moves[t - 1], 0.0)
        if descriptors is not None:
            shape = shape + (1.0 - np.clip(descriptors[a] @ descriptors[b].T, -1, 1))
        step = smoothness * shape
        step[source_frames[b][None, :] == source_frames[a][:, None] + 1] = 0.0
        step[a[:, None] == b[None, :]] = hold_cost
        return step

    path = viterbi(unary, transition)
    return cand[np.arange(len(targets)), path]


# ---------------------------------------------------------------- spans
def active_frames(intervals: Sequence[tuple[float, float]], fps: float, frames: int, merge_gap_s: float = 0.4,
                  pad_s: float = 0.05) -> np.ndarray:
    """Frames in which a speaker speaks: phone intervals (s), gaps shorter than merge_gap_s joined."""
    active = np.zeros(frames, dtype=bool)
    spans = sorted((float(a), float(b)) for a, b in intervals)
    merged: list[list[float]] = []
    for start, end in spans:
        if merged and start - merged[-1][1] <= merge_gap_s:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    for start, end in merged:
        # frame f shows [f / fps, (f + 1) / fps): it is active when that overlaps the speech
        first = max(0, int(np.floor(round((start - pad_s) * fps, 6))))
        last = min(frames - 1, int(np.ceil(round((end + pad_s) * fps, 6))) - 1)
        active[first:last + 1] = True
    return active


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Inclusive (first, last) of every run of True."""
    mask = np.asarray(mask, dtype=bool)
    edges = np.diff(np.concatenate([[0], mask.astype(int), [0]]))
    return [(int(a), int(b) - 1) for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1))]


def ramp(mask: np.ndarray, frames: int, cuts: Sequence[int] = ()) -> np.ndarray:
    """0..1 weight per frame that fades in/out over `frames` at the ends of each run of `mask`; not
    at an end that lies within `frames` of a shot cut (frame `c` starts a new shot): the cut hides
    the change there, and a fade would wash out the first or last phones (a bilabial opening the
    shot, shown at a third over the original open mouth, reads as open)."""
    out = np.zeros(len(mask))
    cuts = np.asarray(sorted(cuts), dtype=int)
    for first, last in runs(mask):
        length = last - first + 1
        t = np.arange(length)
        fade_in = not ((cuts <= first) & (cuts > first - frames)).any()
        fade_out = not ((cuts > last) & (cuts <= last + frames)).any()
        rise = (t + 1) if fade_in else np.full(length, frames)
        fall = (length - t) if fade_out else np.full(length, frames)
        out[first:last + 1] = np.clip(np.minimum(rise, fall) / max(frames, 1), 0, 1)
    return out


# ---------------------------------------------------------------- colour and masks
def colour_transfer(source: np.ndarray, target: np.ndarray, region: np.ndarray, gain_limits=(0.7, 1.4)) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel gain and offset so that `source` pixels in `region` match `target`'s mean/std there.

    source, target (H, W, C) float; region (H, W) bool. Returns (gain (C,), offset (C,)):
    corrected = source * gain + offset.
    """
    region = np.asarray(region, dtype=bool)
    channels = source.shape[-1]
    if region.sum() < 8:
        return np.ones(channels), np.zeros(channels)
    s, t = source[region].astype(float), target[region].astype(float)
    gain = np.clip(t.std(0) / np.maximum(s.std(0), 1e-3), *gain_limits)
    offset = t.mean(0) - gain * s.mean(0)
    return gain, offset


def lips_ring(points: np.ndarray, shape: tuple[int, int], erode_px: int = 1) -> np.ndarray:
    """Mask of the lips themselves in an image of `shape`: inside the outer lip contour (landmarks
    48-59, the first 12 `points`), outside the inner one (60-67), eroded by `erode_px` so that a
    point placed a pixel off takes in no skin or teeth."""
    import cv2

    points = np.round(np.asarray(points, dtype=float)).astype(np.int32)
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [points[:12]], 1)
    cv2.fillPoly(mask, [points[12:20]], 0)
    if erode_px > 0:
        mask = cv2.erode(mask, np.ones((2 * erode_px + 1, 2 * erode_px + 1), np.uint8))
    return mask > 0


def feather(mask: np.ndarray, radius: float) -> np.ndarray:
    """Binary mask -> 0..1 alpha that is 0 on and outside the mask's edge and reaches 1 `radius` px inside."""
    import cv2

    mask = (np.asarray(mask) > 0).astype(np.uint8)
    if radius <= 0:
        return mask.astype(np.float32)
    padded = cv2.copyMakeBorder(mask, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    inside = cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]
    t = np.clip((inside - 1) / radius, 0, 1)  # 0 on the edge pixels themselves
    return (t * t * (3 - 2 * t)).astype(np.float32)  # smoothstep


# ---------------------------------------------------------------- measures
def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None, cap: float = 99.0) -> float:
    """PSNR in dB of a against b (8-bit) over `mask` (True = counted); `cap` when identical or empty."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        a, b = a[mask], b[mask]
    if a.size == 0:
        return cap
    mse = float(((a - b) ** 2).mean())
    return cap if mse <= 0 else min(cap, 10 * np.log10(255.0 ** 2 / mse))


def boundary_gradient(image: np.ndarray, alpha: np.ndarray, band: tuple[float, float] = (0.02, 0.98)) -> float:
    """Mean gradient magnitude of a grey image over the blend's transition band (band[0] < alpha < band[1])."""
    import cv2

    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    grey = grey.astype(np.float32)
    gx, gy = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    where = (alpha > band[0]) & (alpha < band[1])
    return float(np.hypot(gx, gy)[where].mean()) if where.any() else 0.0


def detail(image: np.ndarray, mask: np.ndarray) -> float:
    """Fine detail of a grey image over `mask`: the energy of its finest scale (3x3 Laplacian) over
    that of its edges (Sobel gradient), so that a contrast gain leaves it as it is and a blur (each
    bilinear resampling) lowers it."""
    import cv2

    grey = (image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)).astype(np.float32)
    fine = cv2.Laplacian(grey, cv2.CV_32F, ksize=1)[mask]
    gx, gy = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)[mask], cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)[mask]
    edges = float((gx ** 2 + gy ** 2).mean()) if mask.any() else 0.0
    return float((fine ** 2).mean()) / edges if edges > 0 else 0.0


def flicker(means: Sequence[float]) -> float:
    """Mean absolute frame-to-frame change of a per-frame value (e.g. the mean luma of the edited region)."""
    values = np.asarray(means, dtype=float)
    return float(np.abs(np.diff(values)).mean()) if len(values) > 1 else 0.0
