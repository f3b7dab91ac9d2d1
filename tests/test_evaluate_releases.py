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


def _dub_phones(releases: list[float]) -> list[TimedPhone]:
    """A /b/ released into /a/ at each time, a pause between them."""
    phones, cursor = [], 0.0
    for at in releases:
        phones += [TimedPhone(cursor, at - 0.08, "_", "sil"), TimedPhone(at - 0.08, at, "b", "PP"),
                   TimedPhone(at, at + 0.15, "a", "AA")]
        cursor = at + 0.15
    return phones


@pytest.mark.parametrize("delay", [-0.04, 0.0, 0.06])
def test_release_offsets_read_the_lips_at_the_dubs_own_releases(delay):
    from tasks.evaluate.lipsync import MouthTrack, release_offsets

    fps, releases = 25.0, [0.8, 1.6, 2.5]
    mouth = MouthTrack(fps, _mouth(fps, 3.5, [r + delay for r in releases]))
    reading = release_offsets(mouth, _dub_phones(releases), ("PP",), VOWELS)
    assert reading["releases"] == 3 and len(reading["offsets_ms"]) == 3
    assert reading["offset_ms"] == pytest.approx(1000 * (delay + 0.008), abs=1000 * 0.5 / fps)


def test_release_offsets_say_none_where_the_lips_never_reopen():
    from tasks.evaluate.lipsync import MouthTrack, release_offsets

    mouth = MouthTrack(25.0, np.full(80, 0.3))
    reading = release_offsets(mouth, _dub_phones([1.0, 2.0]), ("PP",), VOWELS)
    assert reading == {"releases": 2, "times_s": [1.0, 2.0], "offsets_ms": [], "offset_ms": None}


@pytest.mark.parametrize("aligner,expected", [("kokoro-durations", {"aligner": "kokoro-durations", "releases": 2}),
                                              ("piper-durations", {"aligner": "piper-durations", "releases": 2}),
                                              ("asr-words", {"aligner": "asr-words"})])
def test_dub_releases_only_where_the_synthesizer_timed_the_phones(tmp_path, aligner, expected):
    from tasks.evaluate.lipsync import MouthTrack, dub_releases
    from tasks.visemes.schema import PhoneInterval, Visemes, write

    fps, releases = 25.0, [1.0, 2.0]
    phones = tuple(PhoneInterval(p.start, p.end, p.symbol, p.viseme) for p in _dub_phones(releases))
    path = write(tmp_path / "visemes.json", Visemes("es", fps, 75, aligner, ["gap"], phones, ()))
    mouth = MouthTrack(fps, _mouth(fps, 3.0, [r + 0.02 for r in releases]))
    reading = dub_releases(path, "es", mouth)
    if "releases" in expected:  # the lips reopen 20 ms after each release (+8 ms into the opening)
        assert {k: reading[k] for k in expected} == expected
        assert reading["offset_ms"] == pytest.approx(28, abs=20)
    else:                       # word timings from speech recognition: no exact instants to read at
        assert reading == expected
    assert dub_releases(tmp_path / "missing.json", "es", mouth) == {}
