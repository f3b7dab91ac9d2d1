"""Pure tracking logic: shot cuts, detection-to-track assignment, identities across fragments."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tasks.face.geometry import box_iou


# ---------------------------------------------------------------- shot cuts
def frame_histogram(frame_bgr: np.ndarray, bins: int = 16) -> np.ndarray:
    """A normalised hue-saturation-value histogram of a (small) BGR frame."""
    import cv2

    hsv = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], None, [bins, bins // 2, bins // 2], [0, 180, 0, 256, 0, 256])
    hist = hist.ravel().astype(np.float64)
    return hist / max(hist.sum(), 1e-12)


def histogram_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Hellinger (Bhattacharyya) distance of two normalised histograms: 0 same, 1 disjoint."""
    return float(np.sqrt(max(0.0, 1.0 - np.sqrt(a * b).sum())))


class CutDetector:
    """A shot cut is a frame whose histogram jumps: far above `threshold` and above `ratio` times
    the recent median jump (so a fast pan or a flash in a busy shot is not a cut)."""

    def __init__(self, threshold: float = 0.35, ratio: float = 3.0, window: int = 15, min_gap: int = 5):
        self.threshold, self.ratio, self.window, self.min_gap = threshold, ratio, window, min_gap
        self._previous: np.ndarray | None = None
        self._recent: list[float] = []
        self._since = 10 ** 9

    def update(self, histogram: np.ndarray) -> tuple[bool, float]:
        previous, self._previous = self._previous, histogram
        self._since += 1
        if previous is None:
            return False, 0.0
        jump = histogram_distance(previous, histogram)
        baseline = float(np.median(self._recent)) if self._recent else 0.0
        cut = jump > self.threshold and jump > self.ratio * baseline and self._since >= self.min_gap
        self._recent = (self._recent + [jump])[-self.window:]
        if cut:
            self._since = 0
            self._recent = []
        return cut, jump


def detect_cuts(histograms: list[np.ndarray], **options) -> list[int]:
    """Indices of the frames that start a new shot (frame 0 is never listed)."""
    detector = CutDetector(**options)
    return [i for i, h in enumerate(histograms) if detector.update(h)[0]]


# ---------------------------------------------------------------- assignment
def assign(cost: np.ndarray, max_cost: float) -> list[tuple[int, int]]:
    """Minimum-cost one-to-one matching (Hungarian), keeping only pairs cheaper than `max_cost`."""
    from scipy.optimize import linear_sum_assignment

    cost = np.asarray(cost, dtype=np.float64)
    if cost.size == 0:
        return []
    padded = np.where(np.isfinite(cost), cost, 1e9)
    rows, cols = linear_sum_assignment(padded)
    return [(int(r), int(c)) for r, c in zip(rows, cols) if padded[r, c] < max_cost]


def match_detections(track_boxes: np.ndarray, detections: np.ndarray, min_iou: float = 0.3) -> list[tuple[int, int]]:
    """Pairs (track, detection) by box overlap."""
    if len(track_boxes) == 0 or len(detections) == 0:
        return []
    return assign(1.0 - box_iou(track_boxes, detections), 1.0 - min_iou)


# ---------------------------------------------------------------- identities
@dataclass
class Fragment:
    """One continuous run of a face, between its first detection and its loss (or a cut)."""

    id: int
    frames: list[int] = field(default_factory=list)
    embeddings: list[np.ndarray] = field(default_factory=list)
    detections: int = 0

    @property
    def span(self) -> tuple[int, int]:
        return self.frames[0], self.frames[-1]

    def mean_embedding(self) -> np.ndarray | None:
        if not self.embeddings:
            return None
        return np.mean(self.embeddings, axis=0)


def embedding_distance(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    """Median pairwise Euclidean distance between two sets of face embeddings."""
    if not a or not b:
        return float("inf")
    a_, b_ = np.asarray(a), np.asarray(b)
    return float(np.median(np.linalg.norm(a_[:, None, :] - b_[None, :, :], axis=2)))


def merge_identities(fragments: list[Fragment], max_distance: float, max_overlap: int = 2) -> dict[int, int]:
    """Group fragments into identities by embedding (average linkage, greedy closest-first).

    Two groups never merge if they are on screen at the same time for more than `max_overlap`
    frames (one person is never two faces at once). Returns fragment id -> identity id (the
    identities are numbered 0.. in order of first appearance).
    """
    groups: dict[int, list[Fragment]] = {f.id: [f] for f in fragments}
    frame_sets = {f.id: set(f.frames) for f in fragments}

    def distance(x: int, y: int) -> float:
        ex = [e for f in groups[x] for e in f.embeddings]
        ey = [e for f in groups[y] for e in f.embeddings]
        return embedding_distance(ex, ey)

    while True:
        keys = sorted(groups)
        best, pair = max_distance, None
        for i, x in enumerate(keys):
            for y in keys[i + 1:]:
                if len(frame_sets[x] & frame_sets[y]) > max_overlap:
                    continue
                d = distance(x, y)
                if d < best:
                    best, pair = d, (x, y)
        if pair is None:
            break
        x, y = pair
        groups[x] += groups.pop(y)
        frame_sets[x] |= frame_sets.pop(y)
    ordered = sorted(groups.values(), key=lambda g: min(f.frames[0] for f in g))
    return {f.id: identity for identity, group in enumerate(ordered) for f in group}


def spans(frames: list[int] | np.ndarray, max_gap: int = 1) -> list[tuple[int, int]]:
    """Runs of consecutive frame indices as inclusive (start, end) pairs; gaps up to `max_gap` join."""
    frames = sorted(set(int(f) for f in frames))
    runs: list[tuple[int, int]] = []
    for f in frames:
        if runs and f - runs[-1][1] <= max_gap:
            runs[-1] = (runs[-1][0], f)
        else:
            runs.append((f, f))
    return runs
