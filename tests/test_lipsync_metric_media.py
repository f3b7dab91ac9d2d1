"""The lip-sync measures on real clips: a clip's own audio must score above the same audio delayed
by 0.5 s and above another clip's audio (the validation of issue 6, on the two clips of
`scripts/lipsync_validate.py` with the widest margins, to stay fast)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import shared_media

pytestmark = pytest.mark.slow

RATE = 16_000
CLIPS = {  # clip: (other clip whose audio is swapped in, fps, seconds)
    "frontal_woman_glasses": ("head_turns_woman", 25.0, 4.9),
    "frontal_man_suit": ("frontal_man_map", 30.0, 6.1),  # variable frame rate: 135 frames in 6.1 s
}


@pytest.fixture(scope="module", params=sorted(CLIPS))
def clip(request):
    from tasks.evaluate import lipsync as ls

    name = request.param
    other, fps, seconds = CLIPS[name]
    video = shared_media(f"video/{name}.mp4")
    return video, shared_media(f"video/{other}.mp4"), fps, seconds, ls.mouth_track(video)


def test_mouth_track_of_a_frontal_speaker(clip):
    _, _, fps, seconds, mouth = clip
    assert mouth.fps == pytest.approx(fps)
    assert mouth.frames / mouth.fps == pytest.approx(seconds, abs=0.15)
    assert mouth.coverage > 0.95 and mouth.visibility > 0.5
    assert mouth.iod_px > 40
    lo, hi = np.nanpercentile(mouth.opening, [5, 95])
    assert 0.0 <= lo < 0.1 and hi - lo > 0.08  # a speaking mouth opens and closes


def shipped_stop_snapping() -> dict:
    """The measure as the evaluate stage runs it: conf/evaluate's stop snapping."""
    import yaml

    conf = yaml.safe_load((Path(__file__).resolve().parent.parent / "conf" / "evaluate" / "default.yaml").read_text())
    return conf["lipsync_stops"]


def test_own_audio_scores_above_shifted_and_swapped(clip, tmp_path):
    from tasks.evaluate import lipsync as ls
    from tasks.media import write_wav
    from tasks.visemes.align import AsrAligner

    video, other, _, _, mouth = clip
    aligner = AsrAligner()
    stops = shipped_stop_snapping()
    own = ls.measure(video, None, "en", mouth=mouth, aligner=aligner, stops=stops)  # the video's own audio track
    samples = ls.fit_length(ls.load_audio(video), int(round(mouth.frames / mouth.fps * RATE)))
    shifted = ls.score(mouth, ls.shift_audio(samples, RATE, 0.5), RATE, "en", aligner=aligner, stops=stops)
    swapped_wav = write_wav(tmp_path / "swapped.wav", ls.fit_length(ls.load_audio(other), len(samples)).reshape(-1, 1), RATE)
    swapped = ls.measure(video, swapped_wav, "en", mouth=mouth, aligner=aligner, stops=stops)

    assert own.words >= 8 and own.closures >= 2 and own.open_vowels >= 5
    assert own.face_coverage > 0.95
    # bilabial closures: every p/b/m of the own audio meets closed lips, well above chance
    assert own.closure_rate >= 0.9
    assert own.closure_excess > 0.3
    assert own.aperture_contrast > 0.2
    for bad in (shifted, swapped):
        assert own.closure_excess > bad.closure_excess + 0.3
        assert own.aperture_contrast > bad.aperture_contrast + 0.2
        assert own.sync_confidence > bad.sync_confidence
    assert abs(own.sync_offset_ms) <= 100  # a real recording is in sync within a few frames
    assert own.as_dict()["sync_offset_ms"] == own.sync_offset_ms


def test_a_clip_without_a_face_gives_no_scores(generated_clip):
    """A test pattern with a tone: no face, no speech; every measure is None, nothing raises."""
    import json

    from tasks.evaluate import lipsync as ls

    result = ls.measure(generated_clip, None, "en")
    assert result.face_coverage == 0.0
    assert result.closure_rate is None and result.aperture_contrast is None and result.sync_confidence is None
    json.dumps(result.as_dict(), allow_nan=False)


def test_face_mesh_tells_shut_lips_from_open_ones_on_a_dim_backlit_face():
    """backlit_webcam's source: shut lips at frames 78-80 (by eye), wide open at 157-160. The mesh,
    placed by dlib's 68 points, reads them on either side of its speaker's closed threshold."""
    from tasks.evaluate import lipsync as ls

    video = shared_media("video/backlit_webcam.mp4")
    tracks = ls.mouth_tracks(video, ("dlib", "mesh"))
    mesh, dlib = tracks["mesh"], tracks["dlib"]
    assert mesh.landmarker == "mesh" and mesh.track == dlib.track
    assert np.array_equal(np.isfinite(mesh.opening), np.isfinite(dlib.opening))  # the same face, frames
    threshold = ls.closed_threshold(mesh.opening, max_closed_gap=ls.MAX_CLOSED_GAP["mesh"])
    assert np.nanmax(mesh.opening[78:81]) < min(threshold, 0.04)
    assert np.nanmin(mesh.opening[157:161]) > 0.2
