"""speakers: who speaks when (diarization over GE2E speaker embeddings) and one voice profile each.

Pure logic only (no model, no file): speech regions from a frame-level VAD, sliding windows over
them, agglomerative clustering of window embeddings with the number of speakers found by a
similarity threshold (or fixed), frame labelling by window votes, turn smoothing, relabelling of
ASR segments (split at word boundaries where the speaker changes), f0 statistics, a gender guess
and the diarization error rate used to measure all this.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

FRAME_S = 0.01  # every frame-level decision here is on a 10 ms grid


@dataclass(frozen=True)
class Clustering:
    window_s: float = 1.0          # embedding window
    hop_s: float = 0.2             # window step
    threshold: float = 0.75        # window level: average-linkage cosine similarity above which clusters merge
    merge_threshold: float = 0.75  # cluster level: whole-speech embeddings this alike are one speaker
    pitch_merge_similarity: float = 0.7  # ... and this alike when their median f0 also agree within
    pitch_merge_octaves: float = 0.15    # this many octaves
    num_speakers: int | None = None  # fix the count; None finds it with `threshold`
    max_speakers: int = 8
    min_speaker_s: float = 0.6     # a cluster with less speech than this joins its nearest neighbour
    min_turn_s: float = 0.3        # shorter turns are absorbed by their neighbours (interjections of
    interjection_similarity: float = 0.8  # ... a speaker whose own embedding is this close survive)
    min_speech_s: float = 0.15     # VAD: shortest speech run kept
    max_pause_s: float = 0.3       # VAD: pauses up to this length inside speech are bridged


# --------------------------------------------------------------------------- regions and windows

def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[first, last) index runs where a boolean mask is True."""
    mask = np.asarray(mask, bool)
    if not mask.size:
        return []
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


def smooth_mask(mask: np.ndarray, min_run: int, max_gap: int) -> np.ndarray:
    """Bridge False gaps of at most `max_gap` frames inside speech, then drop True runs shorter than `min_run`."""
    out = np.asarray(mask, bool).copy()
    spans = runs(out)
    for (_, end), (start, _) in zip(spans, spans[1:]):
        if start - end <= max_gap:
            out[end:start] = True
    for a, b in runs(out):
        if b - a < min_run:
            out[a:b] = False
    return out


def window_spans(regions: list[tuple[int, int]], window: int, hop: int, total: int) -> list[tuple[int, int]]:
    """Windows of `window` frames every `hop` frames covering each region; a region shorter than a
    window gets one window centred on it (clipped to [0, total))."""
    spans: list[tuple[int, int]] = []
    window = min(window, total) if total > 0 else window
    for a, b in regions:
        if b - a <= window:
            first = max(0, min((a + b) // 2 - window // 2, total - window))
            spans.append((first, first + window))
            continue
        starts = list(range(a, b - window + 1, hop))
        if starts[-1] + window < b:
            starts.append(b - window)
        spans.extend((s, s + window) for s in starts)
    return spans


def cluster_speech(spans: list[tuple[int, int]], labels, cluster: int, speech: np.ndarray) -> np.ndarray:
    """The speech frames inside the windows labelled `cluster`: a region shorter than a window has
    a whole window around it, and the silence there is nobody's voice (nor unvoiced speech)."""
    mask = np.zeros(len(speech), bool)
    for (a, b), label in zip(spans, labels):
        if label == cluster:
            mask[a:b] = True
    return mask & np.asarray(speech, bool)


# --------------------------------------------------------------------------- clustering

def normalize(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, np.float64)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def agglomerate(embeddings: np.ndarray, threshold: float, num_clusters: int | None = None,
                max_clusters: int = 8) -> np.ndarray:
    """Average-linkage clustering on cosine similarity. Labels 0..k-1 ordered by first appearance.

    With `num_clusters` the tree is cut at that count; otherwise it is cut where the linkage
    similarity falls below `threshold` (and at most `max_clusters`)."""
    n = len(embeddings)
    if n == 0:
        return np.zeros(0, int)
    if n == 1:
        return np.zeros(1, int)
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import pdist

    distances = np.clip(pdist(normalize(embeddings), metric="cosine"), 0, 2)
    tree = linkage(distances, method="average")
    if num_clusters:
        labels = fcluster(tree, t=min(num_clusters, n), criterion="maxclust")
    else:
        labels = fcluster(tree, t=1.0 - threshold, criterion="distance")
        if labels.max() > max_clusters:
            labels = fcluster(tree, t=max_clusters, criterion="maxclust")
    return first_appearance_order(labels)


def first_appearance_order(labels) -> np.ndarray:
    labels = np.asarray(labels)
    mapping: dict = {}
    for value in labels:
        mapping.setdefault(value, len(mapping))
    return np.array([mapping[v] for v in labels], int)


def centroids(embeddings: np.ndarray, labels: np.ndarray) -> np.ndarray:
    k = int(labels.max()) + 1 if len(labels) else 0
    return normalize(np.stack([embeddings[labels == c].mean(axis=0) for c in range(k)])) if k else np.zeros((0, embeddings.shape[1]))


def merge_small_clusters(embeddings: np.ndarray, labels: np.ndarray, weights: np.ndarray, min_weight: float,
                         apart: set[tuple[int, int]] = frozenset()) -> np.ndarray:
    """Clusters whose total weight (e.g. seconds of speech) is below `min_weight` join the most similar
    other cluster; never one of the `apart` pairs (an overlap and the speaker inside it)."""
    labels = np.asarray(labels).copy()
    settled: set = set()
    while True:
        present = np.unique(labels)
        totals = {c: float(weights[labels == c].sum()) for c in present if c not in settled}
        if len(present) <= 1 or not totals:
            return first_appearance_order(labels)
        small = min(totals, key=totals.get)
        if totals[small] >= min_weight:
            return first_appearance_order(labels)
        means = {c: normalize(embeddings[labels == c].mean(axis=0)) for c in present}
        allowed = [c for c in present if c != small and (small, c) not in apart and (c, small) not in apart]
        if not allowed:
            settled.add(small)
            continue
        target = max(allowed, key=lambda c: float(means[c] @ means[small]))
        labels[labels == small] = target


def frame_scores(spans: list[tuple[int, int]], window_labels_sim: np.ndarray, total: int) -> np.ndarray:
    """Per frame and cluster: mean similarity of the windows covering the frame (NaN where none)."""
    k = window_labels_sim.shape[1]
    sums = np.zeros((total, k))
    counts = np.zeros(total)
    for (a, b), row in zip(spans, window_labels_sim):
        sums[a:b] += row
        counts[a:b] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts[:, None]


def label_frames(scores: np.ndarray, speech: np.ndarray) -> np.ndarray:
    """Best cluster per speech frame, -1 elsewhere (and where no window covers the frame)."""
    labels = np.full(len(speech), -1, int)
    valid = speech & ~np.isnan(scores).any(axis=1)
    if scores.shape[1]:
        labels[valid] = np.argmax(scores[valid], axis=1)
    return labels


# --------------------------------------------------------------------------- turns

@dataclass(frozen=True)
class Turn:
    start: float
    end: float
    speaker: str
    overlap: bool = False  # True: this speaker talks over another one's (primary) turn here


def turns_from_labels(labels: np.ndarray, frame_s: float = FRAME_S, overlap: bool = False) -> list[Turn]:
    """Consecutive frames of one label (>= 0) become a turn."""
    out = []
    labels = np.asarray(labels)
    for value in sorted(set(labels.tolist()) - {-1}):
        for a, b in runs(labels == value):
            out.append(Turn(round(a * frame_s, 3), round(b * frame_s, 3), f"S{value}", overlap))
    return sorted(out, key=lambda t: (t.start, t.end))


def absorb_short_runs(labels: np.ndarray, min_run: int, keep=None) -> np.ndarray:
    """Relabel speech runs shorter than `min_run` frames with a neighbouring run's label (the longer
    neighbour, across pauses); `keep(first, last, label)` may protect a run (a real interjection)."""
    labels = np.asarray(labels).copy()
    changed = True
    while changed:
        changed = False
        speech_runs = _label_runs(labels)
        for i, (a, b, value) in enumerate(speech_runs):
            if b - a >= min_run:
                continue
            if keep is not None and keep(a, b, value):
                continue
            neighbours = [speech_runs[j] for j in (i - 1, i + 1) if 0 <= j < len(speech_runs) and speech_runs[j][2] != value]
            if not neighbours:
                continue
            best = max(neighbours, key=lambda r: r[1] - r[0])
            if best[1] - best[0] < b - a:
                continue
            labels[a:b] = np.where(labels[a:b] >= 0, best[2], labels[a:b])
            changed = True
            break
    return labels


def _label_runs(labels: np.ndarray) -> list[tuple[int, int, int]]:
    """Runs of one speaker label, where pauses (-1) inside one speaker's run do not split it."""
    out: list[tuple[int, int, int]] = []
    for index in np.flatnonzero(labels >= 0):
        value = int(labels[index])
        if out and out[-1][2] == value:
            out[-1] = (out[-1][0], int(index) + 1, value)
        else:
            out.append((int(index), int(index) + 1, value))
    return out


# --------------------------------------------------------------------------- transcript relabelling

def speaker_at(turns: list[Turn], start: float, end: float, default: str = "S0") -> str:
    """The speaker with the most overlap with [start, end]; else the nearest turn's speaker."""
    overlap: dict[str, float] = {}
    for turn in turns:
        shared = min(end, turn.end) - max(start, turn.start)
        if shared > 0:
            overlap[turn.speaker] = overlap.get(turn.speaker, 0.0) + shared
    if overlap:
        return max(overlap, key=overlap.get)
    if not turns:
        return default
    middle = (start + end) / 2
    return min(turns, key=lambda t: min(abs(t.start - middle), abs(t.end - middle))).speaker


def relabel_segments(segments, turns: list[Turn]):
    """Each ASR segment gets its speaker; a segment whose words change speaker is split at the
    word boundary (new ids are renumbered in order). Segments without words keep one speaker."""
    out = []
    for segment in segments:
        if not segment.words:
            out.append(replace(segment, speaker=speaker_at(turns, segment.start, segment.end)))
            continue
        groups: list[tuple[str, list]] = []
        for word in segment.words:
            who = speaker_at(turns, word.start, word.end)
            if groups and groups[-1][0] == who:
                groups[-1][1].append(word)
            else:
                groups.append((who, [word]))
        groups = _merge_single_word_groups(groups)
        if len(groups) == 1:
            out.append(replace(segment, speaker=groups[0][0]))
            continue
        for who, words in groups:
            text = " ".join(w.text.strip() for w in words if w.text.strip())
            out.append(replace(segment, start=words[0].start, end=words[-1].end, text=text, speaker=who, words=tuple(words)))
    return tuple(replace(s, id=i) for i, s in enumerate(out))


def _merge_single_word_groups(groups):
    """A lone word assigned to another speaker between two runs of the same speaker is a boundary
    error far more often than a real one-word interjection: give it back."""
    merged = list(groups)
    i = 1
    while i < len(merged) - 1:
        if len(merged[i][1]) == 1 and merged[i - 1][0] == merged[i + 1][0]:
            merged[i - 1] = (merged[i - 1][0], merged[i - 1][1] + merged[i][1] + merged[i + 1][1])
            del merged[i:i + 2]
        else:
            i += 1
    return merged


# --------------------------------------------------------------------------- profiles

def f0_stats(f0: np.ndarray) -> dict[str, float]:
    """Median and 5-95 % range (Hz) and log-f0 mean/std of the voiced frames (f0 > 0)."""
    voiced = np.asarray(f0, np.float64)
    voiced = voiced[voiced > 0]
    if voiced.size < 5:
        return {"median": 0.0, "low": 0.0, "high": 0.0, "log_mean": 0.0, "log_std": 0.0, "voiced_frames": int(voiced.size)}
    logs = np.log(voiced)
    return {"median": round(float(np.median(voiced)), 2), "low": round(float(np.percentile(voiced, 5)), 2),
            "high": round(float(np.percentile(voiced, 95)), 2), "log_mean": round(float(logs.mean()), 4),
            "log_std": round(float(logs.std()), 4), "voiced_frames": int(voiced.size)}


def gender_guess(median_f0: float, low: float = 145.0, high: float = 175.0) -> str:
    """'male' below `low` Hz, 'female' above `high`, else 'unknown' (0 Hz: unknown)."""
    if median_f0 <= 0:
        return "unknown"
    if median_f0 < low:
        return "male"
    if median_f0 > high:
        return "female"
    return "unknown"


# --------------------------------------------------------------------------- evaluation

def to_frames(turns: list[Turn], total: int, frame_s: float = FRAME_S) -> dict[str, np.ndarray]:
    """Speaker -> boolean activity per frame."""
    out: dict[str, np.ndarray] = {}
    for turn in turns:
        row = out.setdefault(turn.speaker, np.zeros(total, bool))
        row[int(round(turn.start / frame_s)):int(round(turn.end / frame_s))] = True
    return out


def diarization_error(reference: list[Turn], hypothesis: list[Turn], collar_s: float = 0.0,
                      frame_s: float = FRAME_S, skip_overlap: bool = False) -> dict[str, float]:
    """Diarization error rate (missed + false alarm + confusion) / reference speech, on a frame
    grid, with the best one-to-one speaker mapping (Hungarian), NIST-style: overlapped reference
    speech counts once per speaker. `collar_s` ignores that much either side of reference turn
    boundaries; `skip_overlap` ignores frames where the reference has several speakers."""
    from scipy.optimize import linear_sum_assignment

    end = max([t.end for t in reference + hypothesis] + [0.0])
    total = int(np.ceil(end / frame_s)) + 1
    ref, hyp = to_frames(reference, total, frame_s), to_frames(hypothesis, total, frame_s)
    scored = np.ones(total, bool)
    if collar_s > 0:
        c = int(round(collar_s / frame_s))
        for turn in reference:
            for edge in (int(round(turn.start / frame_s)), int(round(turn.end / frame_s))):
                scored[max(0, edge - c):edge + c] = False
    ref_names, hyp_names = sorted(ref), sorted(hyp)
    R = np.array([ref[n] for n in ref_names]).reshape(len(ref_names), total)
    H = np.array([hyp[n] for n in hyp_names]).reshape(len(hyp_names), total)
    if skip_overlap:
        scored &= R.sum(axis=0) <= 1
    R, H = R[:, scored], H[:, scored]
    n_ref, n_hyp = R.sum(axis=0), H.sum(axis=0)
    reference_speech = float(n_ref.sum())
    if len(ref_names) and len(hyp_names):
        agreement = R.astype(float) @ H.T.astype(float)
        rows, cols = linear_sum_assignment(-agreement)
        correct = float(agreement[rows, cols].sum())
    else:
        correct = 0.0
    missed = float(np.maximum(n_ref - n_hyp, 0).sum())
    false_alarm = float(np.maximum(n_hyp - n_ref, 0).sum())
    confusion = float(np.minimum(n_ref, n_hyp).sum()) - correct
    denominator = max(reference_speech, 1.0)
    return {"der": (missed + false_alarm + confusion) / denominator, "missed": missed / denominator,
            "false_alarm": false_alarm / denominator, "confusion": confusion / denominator,
            "reference_s": reference_speech * frame_s}
