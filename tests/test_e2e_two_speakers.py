"""Two people in one frame, taking turns: one pass must diarize them, give each a voice of their
own, map each to their own face, and move each face only while its own speaker speaks.

The composite is built here from two real clips: the man speaks first while the woman's first
frame is held, then she speaks while his last frame is held.
"""
from __future__ import annotations

import json

import pytest

from tasks.face.schema import read_faces
from tasks.media import run_ffmpeg
from tests.conftest import make_workspace, run_dub, shared_media

pytestmark = pytest.mark.slow
FIRST_SPEAKER_S = 6.1  # frontal_man_suit's length: the woman starts speaking here


@pytest.fixture(scope="module")
def composite(tmp_path_factory):
    left, right = shared_media("video/frontal_man_suit.mp4"), shared_media("video/frontal_woman_flag.mp4")
    path = tmp_path_factory.mktemp("media") / "two_speakers.mp4"
    run_ffmpeg("-i", str(left), "-i", str(right), "-filter_complex",
               "[0:v]fps=25,scale=590:590,setsar=1,tpad=stop_mode=clone:stop_duration=5[l];"
               f"[1:v]fps=25,setsar=1,tpad=start_mode=clone:start_duration={FIRST_SPEAKER_S}[r];"
               "[l][r]hstack=inputs=2,format=yuv420p[v];"
               "[0:a]aresample=44100,aformat=channel_layouts=stereo[a0];"
               "[1:a]aresample=44100,aformat=channel_layouts=stereo[a1];[a0][a1]concat=n=2:v=0:a=1[a]",
               "-map", "[v]", "-map", "[a]", "-c:v", "libx264", "-crf", "18", "-c:a", "aac", str(path))
    return path


@pytest.fixture(scope="module")
def dubbed(tmp_path_factory, composite):
    workspace = make_workspace(tmp_path_factory.mktemp("workspace"))
    result = run_dub(workspace, f"input={composite}", "langs=[es]")
    assert result.returncode == 0, result.stderr[-3000:]
    return workspace / "data"


def read(data, path):
    return json.loads((data / path).read_text())


def test_two_speakers_two_faces_each_mapped_to_its_own(dubbed):
    speakers = read(dubbed, "speakers/two_speakers/speakers.json")
    assert speakers["num_speakers"] == 2
    first = {t["speaker"] for t in speakers["turns"] if t["end"] <= FIRST_SPEAKER_S}
    second = {t["speaker"] for t in speakers["turns"] if t["start"] >= FIRST_SPEAKER_S - 0.3}
    assert len(first) == 1 and len(second) == 1 and first != second
    tracks = read(dubbed, "face/two_speakers/tracks.json")
    assert len(tracks["tracks"]) == 2
    mapping = tracks["speakers"]
    assert sorted(mapping.values()) == [0, 1], mapping
    faces = read_faces(dubbed / "face" / "two_speakers" / "faces.npz")
    centre_x = (faces["box"][:, 0] + faces["box"][:, 2]) / 2
    for speaker, left_half in ((next(iter(first)), True), (next(iter(second)), False)):
        rows = faces["track"] == mapping[speaker]
        assert rows.any() and bool((centre_x[rows] < 590).all()) == left_half, speaker


def test_each_speaker_gets_a_voice_of_their_own(dubbed):
    rows = read(dubbed, "tts/two_speakers/es/segments.json")["segments"]
    voices = {row["speaker"]: row["voice"] for row in rows}
    assert len(voices) == 2 and len(set(voices.values())) == 2, voices


def test_each_face_moves_only_while_its_speaker_speaks(dubbed):
    report = read(dubbed, "lipsync/two_speakers/es/report.json")
    assert report["frames"] == 277 and not report["unmatched_speakers"]
    for track in report["tracks"]:
        assert track["frames_edited"] > 80, track
        assert track["untouched"]["not_speaking"] > 100, track  # the other half of the clip
        assert track["frames_edited"] + sum(track["untouched"].values()) == track["frames_present"]
    assert report["metrics"]["psnr_outside_mean"] >= 40


def test_the_lip_sync_measure_reads_each_speakers_lips_while_they_speak(dubbed):
    """Two people in frame: the source's and the dub's lips are each read on the face of whoever
    speaks at that moment (not the larger face against both voices), and both read bilabials."""
    from tasks.evaluate.lipsync import SPEAKING_FACES

    reference = read(dubbed, "reference/two_speakers/report.json")
    assert reference["track"] == SPEAKING_FACES
    assert reference["scores"]["closures"] >= 3 and reference["scores"]["face_coverage"] > 0.9
    metrics = read(dubbed, "evaluate/two_speakers/es/metrics.json")
    assert metrics["lipsync_closure_excess"] is not None and metrics["source_lipsync_closure_excess"] is not None
    assert metrics["lipsync_track"] == SPEAKING_FACES and metrics["source_lipsync_track"] == SPEAKING_FACES
