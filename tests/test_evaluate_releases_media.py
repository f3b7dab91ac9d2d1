"""The event-based audio-visual offset on real clips (slow): at hand-checked acoustic releases of
/p b m/, the lips re-detected by the measure (dlib) reopen within 40 ms: these sources carry no
audio-visual offset of their own (the envelope and phone offsets read up to +-200 ms on them)."""
from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import shared_media

pytestmark = pytest.mark.slow

# /p b m/ released into a vowel, read by hand on the spectrogram of the audio as extract_audio
# gives it (seconds): frontal_man_suit "biggest", "better"; frontal_man_map "(of) my", "(chase) my"
RELEASES = {"frontal_man_suit": [0.197, 4.015], "frontal_man_map": [0.72, 3.20]}


@pytest.mark.parametrize("clip", sorted(RELEASES))
def test_source_lips_reopen_at_the_acoustic_releases(clip):
    pytest.importorskip("dlib")
    from tasks.evaluate.lipsync import closed_threshold, mouth_track, reopening_offsets

    mouth = mouth_track(shared_media(f"video/{clip}.mp4"))
    offsets = reopening_offsets(mouth.opening, mouth.fps, RELEASES[clip], closed_threshold(mouth.opening))
    assert len(offsets) == len(RELEASES[clip])
    # crossing the closed threshold reads some 10-20 ms after the lips part: suit +39/+22 ms, map -27/-25 ms
    assert np.abs(offsets).max() <= 0.045, offsets
