"""Overlapped speech: finding where two people talk at once, from pitch cues, and labelling both.

A window embedding of two voices at once is not the mean of the two speakers' embeddings: GE2E puts
it about as far from each of them as they are from each other, so a stretch where someone talks over
another speaker clusters as a speaker of its own, and when the second voice never talks alone there
is no centroid to compare it with. What does tell two voices apart is their pitch: within one
recording, a cluster whose speech is voiced much more often than another cluster's (voicing is the
union of both voices) and whose f0 track jumps far more often (the tracker hops between the two
voices' f0) while its embedding stays close, is that other speaker plus someone else. Its frames are
then labelled with both: the mixture cluster keeps its own name (the voice only heard there) and the
other speaker also speaks there.

Pitch-aware merging guards the other way: two clusters whose embeddings are nearly alike and whose
median f0 agree are one speaker split by noisy short windows (a single speaker must stay one).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Overlap:
    enabled: bool = True
    min_similarity: float = 0.6   # whole-speech cosine: a mixture still sounds partly like the speaker inside it
    voicing_gain: float = 0.15    # mixture frames are voiced this much more often (share of frames) ...
    jump_gain: float = 0.04       # ... and the f0 track jumps (>10 % between frames) this much more often
    min_frames: int = 50          # cues from fewer frames (0.5 s) than this decide nothing
    score_margin: float = 0.15    # a frame of the inner speaker whose window similarity to the mixture is
                                  # within this of its own speaker's is overlapped too


@dataclass(frozen=True)
class PitchCues:
    voiced: float   # share of the frames with f0 > 0
    jumps: float    # share of consecutive voiced frame pairs whose f0 changes by more than `jump`
    median_f0: float
    frames: int


def pitch_cues(f0: np.ndarray, mask: np.ndarray, jump: float = 0.1) -> PitchCues:
    """Pitch statistics of the frames where `mask` is True (f0 in Hz per frame, 0 = unvoiced)."""
    f0 = np.asarray(f0, np.float64)
    mask = np.asarray(mask, bool)[:len(f0)]
    index = np.flatnonzero(mask)
    if not index.size:
        return PitchCues(0.0, 0.0, 0.0, 0)
    values = f0[index]
    adjacent = np.diff(index) == 1
    before, after = values[:-1][adjacent], values[1:][adjacent]
    both = (before > 0) & (after > 0)
    jumps = float(np.mean(np.abs(np.log(after[both] / before[both])) > jump)) if both.any() else 0.0
    voiced = values[values > 0]
    return PitchCues(float(np.mean(values > 0)), jumps, float(np.median(voiced)) if voiced.size else 0.0, int(index.size))


def is_mixture(mixture: PitchCues, speaker: PitchCues, similarity: float, overlap: Overlap) -> bool:
    """Does the cluster with cues `mixture` sound like the one with cues `speaker` plus another voice?"""
    if not overlap.enabled or min(mixture.frames, speaker.frames) < overlap.min_frames:
        return False
    return (similarity >= overlap.min_similarity and mixture.voiced - speaker.voiced >= overlap.voicing_gain
            and mixture.jumps - speaker.jumps >= overlap.jump_gain)


def mixtures(cues: dict[int, PitchCues], similarity: np.ndarray, overlap: Overlap) -> dict[int, int]:
    """Mixture cluster -> the cluster speaking inside it (the most similar one that qualifies).
    A cluster found to speak inside another is never a mixture itself."""
    found: dict[int, int] = {}
    for a in sorted(cues):
        inside = [b for b in sorted(cues) if b != a and is_mixture(cues[a], cues[b], float(similarity[a, b]), overlap)]
        if inside:
            found[a] = max(inside, key=lambda b: float(similarity[a, b]))
    return {a: b for a, b in found.items() if a not in found.values()}


def extend_mixtures(labels: np.ndarray, scores: np.ndarray, mixture_of: dict[int, int], margin: float) -> np.ndarray:
    """Frames labelled with a mixture's inner speaker whose score (frames x clusters window similarity)
    for the mixture is within `margin` of the speaker's own become mixture frames: the window
    similarity drifts across a boundary, and the inner speaker is talking on both sides of it."""
    labels = np.asarray(labels).copy()
    for mixture, speaker in mixture_of.items():
        close = (labels == speaker) & (scores[:, mixture] >= scores[:, speaker] - margin)
        labels[close] = mixture
    return labels


def overlap_labels(labels: np.ndarray, mixture_of: dict[int, int]) -> np.ndarray:
    """Per frame, the second speaker talking there (-1 where one speaker or none)."""
    labels = np.asarray(labels)
    second = np.full(len(labels), -1, int)
    for mixture, speaker in mixture_of.items():
        second[labels == mixture] = speaker
    return second


def same_voice(similarity: float, f0_a: float, f0_b: float, min_similarity: float, max_octaves: float) -> bool:
    """Two clusters are one voice when their embeddings are this alike and their median pitch agrees."""
    if f0_a <= 0 or f0_b <= 0:
        return False
    return bool(similarity >= min_similarity and abs(np.log2(f0_a / f0_b)) <= max_octaves)
