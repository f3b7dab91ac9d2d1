"""Unit tests of the event-based audio-visual offset (tasks/evaluate/lipsync.py): bilabial releases
from timed phones, and the delay from each release to the lips reopening on the frames."""
from __future__ import annotations

import numpy as np
import pytest

from tasks.evaluate.lipsync import bilabial_releases, closed_threshold, reopening_offsets
from tasks.visemes.coarticulation import TimedPhone

VOWELS = ("AA", "E", "I", "O", "U", "AX")


def test_releases_are_bilabials_opening_straight_into_a_vowel():
    phones = [TimedPhone(0.10, 0.20, "m", "PP"), TimedPhone(0.20, 0.35, "a", "AA"),     # m -> a: 0.20
              TimedPhone(0.35, 0.45, "p", "PP"), TimedPhone(0.45, 0.50, "w", "U"),      # p -> w: vowel class here
              TimedPhone(0.60, 0.70, "m", "PP"), TimedPhone(0.70, 0.80, "k", "KK"),     # m -> k: no sharp release
              TimedPhone(0.90, 1.00, "b", "PP"), TimedPhone(1.00, 1.40, "_", "sil"),    # before a pause
              TimedPhone(1.40, 1.50, "e", "E"),
              TimedPhone(1.60, 1.70, "b", "PP"), TimedPhone(1.80, 1.90, "o", "O")]      # 0.1 s gap: not straight
    assert bilabial_releases(phones, ("PP",), VOWELS) == pytest.approx([0.20, 0.45])
    assert bilabial_releases(phones, ("PP",), VOWELS, max_gap_s=0.15) == pytest.approx([0.20, 0.45, 1.70])


def _mouth(fps: float, seconds: float, reopen_at: list[float], closed_s: float = 0.12) -> np.ndarray:
    """Lips open at 0.3, shut for `closed_s` before each reopening instant, then open in 40 ms."""
    t = np.arange(int(seconds * fps)) / fps
    gap = np.full(len(t), 0.3)
    for at in reopen_at:
        gap[(t >= at - closed_s) & (t < at)] = 0.0
        rising = (t >= at) & (t < at + 0.04)
        gap[rising] = 0.3 * (t[rising] - at) / 0.04
    return gap


@pytest.mark.parametrize("fps", [25.0, 30.0])
@pytest.mark.parametrize("delay", [-0.06, 0.0, 0.05])
def test_reopening_offsets_recover_a_known_delay(fps, delay):
    releases = [0.8, 1.6, 2.5]
    gap = _mouth(fps, 3.5, [r + delay for r in releases])
    offsets = reopening_offsets(gap, fps, releases, closed_threshold(gap))
    assert len(offsets) == 3
    # the crossing of the closed threshold (20% of the range) lies 8 ms into a 40 ms opening;
    # frames sample it every 33-40 ms
    assert np.median(offsets) == pytest.approx(delay + 0.008, abs=0.5 / fps)


def test_reopening_offsets_skip_jitter_missing_faces_and_far_closures():
    fps = 25.0
    gap = _mouth(fps, 3.0, [1.0])
    gap[50:52] = [0.15, 0.12]       # a dip that never closes: no event at 2.0 s
    gap[60:63] = np.nan              # no face around 2.45 s
    releases = [1.0, 2.05, 2.45, 1.5]  # 1.5: the only reopening is 0.5 s away
    offsets = reopening_offsets(gap, fps, releases, closed_threshold(gap), reach_s=0.2)
    assert offsets == pytest.approx([0.01], abs=0.005)


def test_reopening_needs_a_real_opening_not_a_flicker_over_the_threshold():
    fps = 25.0
    t = np.arange(75) / fps
    gap = np.where((t > 0.8) & (t < 1.6), 0.0, 0.3)
    gap[25] = 0.04                   # one frame barely above the closed level at 1.0 s
    releases = [1.0]
    assert reopening_offsets(gap, fps, releases, 0.03).size == 0
    # the real reopening: 0 at 1.56 s, 0.3 at 1.60 s, through 0.03 at 1.564 s
    assert reopening_offsets(gap, fps, [1.6], 0.03) == pytest.approx([-0.036], abs=1e-3)
