"""The lipsync stage on a real clip (../shared/media): real face tracks, a synthetic viseme track.

The face stage runs for real; visemes.json is written by hand (a speaker talking from 1.0 s to
4.0 s with an opening and closing mouth), so the test needs no ASR or TTS and runs in well under a
minute. Skipped cleanly where the shared media folder is absent.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.conftest import PROJECT, run_face_stage, shared_media

pytestmark = pytest.mark.slow
CLIP = "video/frontal_man_suit.mp4"
SPEECH = (1.0, 4.0)


def frames_of(path: Path, width: int, height: int) -> np.ndarray:
    from tasks.lipsync.__main__ import decode

    return np.stack([f.copy() for f in decode(path, width, height)])


def write_visemes(root: Path, probe, faces) -> None:
    from tasks.artifacts import Segment
    from tasks.speakers.schema import SpeakerTurn, Speakers
    from tasks.speakers.schema import write as write_speakers
    from tasks.visemes import schema
    from tasks.visemes.calibration import ranges_from_landmarks

    ranges = ranges_from_landmarks(faces["landmarks"])
    t = np.arange(probe.frames) / probe.fps
    speaking = (t >= SPEECH[0]) & (t <= SPEECH[1])
    gap = np.where(speaking, 0.5 - 0.5 * np.cos(2 * np.pi * 2.5 * (t - SPEECH[0])), 0.0)
    params = {"gap": gap, "jaw": 0.8 * gap, "width": 0.5 + 0.1 * gap, "round": np.zeros_like(gap)}
    calibrated = {k: ranges[k][0] + v * (ranges[k][1] - ranges[k][0]) for k, v in params.items()}
    phones = tuple(schema.PhoneInterval(round(a, 3), round(a + 0.1, 3), "a", "AA", "S0")
                   for a in np.arange(SPEECH[0], SPEECH[1] - 0.05, 0.1))
    curves = schema.SpeakerCurves("S0", schema.Calibration("faces.npz:track0", ranges, len(faces["frame"])),
                                  {k: v.round(4).tolist() for k, v in params.items()},
                                  {k: v.round(4).tolist() for k, v in calibrated.items()}, ["AA"] * probe.frames)
    schema.write(root / "data" / "visemes" / "clip" / "es" / "visemes.json",
                 schema.Visemes("es", probe.fps, probe.frames, "test", ["jaw", "width", "round", "gap"], phones, (curves,)))
    # the source says what the dub says, when it says it: no frame where only the source speaks
    write_speakers(root / "data" / "speakers" / "clip" / "speakers.json",
                   Speakers("test", 1, (SpeakerTurn(*SPEECH, "S0"),), (), (Segment(0, *SPEECH, "speech", "S0"),)))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    from tasks import artifacts
    from tasks.artifacts import Probe
    from tasks.face.schema import read_faces

    clip = shared_media(CLIP)
    root = tmp_path_factory.mktemp("lipsync")
    run_face_stage(root, clip, 6.0, debug_video=False)
    probe = artifacts.read(root / "data" / "ingest" / "clip" / "probe.json", Probe)
    write_visemes(root, probe, read_faces(root / "data" / "face" / "clip" / "faces.npz"))
    lipsync = yaml.safe_load((PROJECT / "conf" / "lipsync" / "exemplar.yaml").read_text())
    (root / "params.yaml").write_text(yaml.safe_dump({"lipsync": lipsync}))
    return root


def lipsync(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    return subprocess.run([sys.executable, "-m", "tasks.lipsync", "--video", "clip", "--lang", "es", "--root", str(root)],
                          cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def result(workspace):
    from tasks import artifacts
    from tasks.artifacts import Probe
    from tasks.lipsync import schema

    done = lipsync(workspace)
    assert done.returncode == 0, done.stderr[-3000:]
    out = workspace / "data" / "lipsync" / "clip" / "es"
    probe = artifacts.read(workspace / "data" / "ingest" / "clip" / "probe.json", Probe)
    return out, probe, schema.read(out / "report.json")


def test_output_keeps_size_rate_and_frames(result):
    import av

    out, probe, report = result

    with av.open(str(out / "video.mkv")) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (probe.width, probe.height)
        assert float(stream.average_rate) == pytest.approx(probe.fps, rel=1e-3)
        assert not container.streams.audio
    assert report.frames == probe.frames
    assert len(frames_of(out / "video.mkv", probe.width, probe.height)) == probe.frames
    assert (out / "grid.png").stat().st_size < 1_000_000


def test_only_the_speaking_mouth_changes(workspace, result):
    from tasks.face.schema import read_faces
    from tasks.lipsync.core import psnr

    out, probe, report = result
    source = frames_of(workspace / "data" / "input" / "clip" / "frontal_man_suit.mp4", probe.width, probe.height)
    output = frames_of(out / "video.mkv", probe.width, probe.height)
    faces = read_faces(workspace / "data" / "face" / "clip" / "faces.npz")
    t = np.arange(probe.frames) / probe.fps
    silent = (t < SPEECH[0] - 0.2) | (t > SPEECH[1] + 0.2)
    assert silent.any() and all(np.array_equal(source[i], output[i]) for i in np.flatnonzero(silent))  # bit-identical
    changed = [i for i in range(probe.frames) if not np.array_equal(source[i], output[i])]
    assert len(changed) > 0.8 * ((t >= SPEECH[0]) & (t <= SPEECH[1])).sum()
    h, w = probe.height, probe.width
    for i in changed:
        row = int(np.flatnonzero(faces["frame"] == i)[0])
        lm = faces["landmarks"][row]
        iod = np.linalg.norm(lm[42:48].mean(0) - lm[36:42].mean(0))
        lower = np.zeros((h, w), bool)  # the lower face, from the face stage's landmarks: the only place edits may go
        x0, x1 = int(max(lm[0:17, 0].min() - 0.3 * iod, 0)), int(min(lm[0:17, 0].max() + 0.3 * iod, w))
        y0, y1 = int(max(lm[29, 1], 0)), int(min(lm[0:17, 1].max() + 0.3 * iod, h))
        lower[y0:y1, x0:x1] = True
        assert psnr(output[i][:h], source[i][:h], ~lower) >= 40.0
        assert not (output[i][:h] != source[i][:h])[~lower].any()
    metrics = report.metrics
    assert metrics.psnr_outside_min >= 40.0
    assert metrics.boundary_gradient_ratio < 1.3     # no visible seam
    assert metrics.flicker_ratio < 1.5               # no flicker beyond the source's own
    assert metrics.edit_flicker < 1.0                # the edit's own flicker: under one luma level per frame
    assert 0 < metrics.lips_flicker_ratio < 1.3      # nor of the lips' colour (exemplars lit at other moments)
    track = report.tracks[0]
    assert track.frames_edited == len(changed) and track.untouched["not_speaking"] > 0
    assert track.frames_edited + sum(track.untouched.values()) == track.frames_present
    # lips opened well beyond their exemplar show a wider exemplar's teeth, not its own midline stretched
    assert track.torn_frames <= track.inner_mouths_lent <= track.frames_edited


def test_turned_small_and_covered_faces_are_left_alone(workspace, result, tmp_path):
    """Doctor the face stage's output: a turned head, a covered mouth and a hand over half the mouth."""
    from tasks.face.schema import read_faces, write_faces
    from tasks.lipsync import schema

    out, probe, _ = result
    root = tmp_path / "ws"
    shutil.copytree(workspace, root, symlinks=True, ignore=shutil.ignore_patterns("lipsync"))
    faces = read_faces(root / "data" / "face" / "clip" / "faces.npz")
    first = int(SPEECH[0] * probe.fps) + 5
    turned, covered, half = range(first, first + 4), range(first + 10, first + 14), range(first + 20, first + 30)
    rows = {int(f): i for i, f in enumerate(faces["frame"])}
    for f in turned:
        faces["pose"][rows[f], 0] = 60.0
    for f in covered:
        faces["mouth_mask"][rows[f]] = 255
    for f in half:
        faces["mouth_mask"][rows[f], :, :24] = 255
    write_faces(root / "data" / "face" / "clip" / "faces.npz", {k: v for k, v in faces.items() if k != "schema"})
    done = lipsync(root)
    assert done.returncode == 0, done.stderr[-3000:]
    report = schema.read(root / "data" / "lipsync" / "clip" / "es" / "report.json")
    assert report.tracks[0].untouched["turned"] == len(turned)
    assert report.tracks[0].untouched["occluded"] == len(covered)
    assert report.tracks[0].partly_occluded >= len(half)
    source = frames_of(root / "data" / "input" / "clip" / "frontal_man_suit.mp4", probe.width, probe.height)
    output = frames_of(root / "data" / "lipsync" / "clip" / "es" / "video.mkv", probe.width, probe.height)
    for f in list(turned) + list(covered):
        assert np.array_equal(source[f], output[f])
    h = probe.height
    for f in half:  # the occluder (left half of the mouth box) stays in front: its pixels are the source's
        x0, y0, x1, y1 = (int(v) for v in faces["mouth_box"][rows[f]])
        left = slice(y0, y1), slice(x0, x0 + (x1 - x0) // 2 - 2)
        assert np.array_equal(output[f][:h][left], source[f][:h][left])


def test_two_speakers_in_one_pass(tmp_path):
    """Two faces side by side (the clip and its mirror): each is edited only while its own speaker speaks."""
    import dataclasses

    from tasks import artifacts
    from tasks.artifacts import Probe, Segment
    from tasks.face.__main__ import run as face_run
    from tasks.face.schema import read_faces, read_tracks, write_tracks
    from tasks.ingest import ingest
    from tasks.lipsync import schema as lipsync_schema
    from tasks.media import run_ffmpeg
    from tasks.speakers.schema import SpeakerTurn, Speakers
    from tasks.speakers.schema import write as write_speakers
    from tasks.stage import StageContext
    from tasks.visemes import schema

    clip = shared_media(CLIP)
    root = tmp_path
    (root / "data" / "input" / "pair").mkdir(parents=True)
    pair = root / "data" / "input" / "pair" / "pair.mp4"
    run_ffmpeg("-i", str(clip), "-filter_complex", "[0:v]split[a][b];[b]hflip[c];[a][c]hstack,scale=1000:500[v]", "-map", "[v]",
               "-map", "0:a", "-c:v", "libx264", "-crf", "18", "-c:a", "aac", str(pair))
    ingest(pair, root / "data" / "ingest" / "pair")
    face = yaml.safe_load((PROJECT / "conf" / "face" / "dlib.yaml").read_text())
    face.update(progress=False, debug_video=False, speakers=False)
    face_run(StageContext("face", "pair", None, root, {"face": face}))
    faces = read_faces(root / "data" / "face" / "pair" / "faces.npz")
    tracks = read_tracks(root / "data" / "face" / "pair" / "tracks.json")
    assert len(tracks.tracks) == 2
    left, right = sorted(tracks.tracks, key=lambda t: faces["box"][faces["track"] == t.id][:, 0].mean())
    write_tracks(root / "data" / "face" / "pair" / "tracks.json", dataclasses.replace(tracks, speakers={"L": left.id, "R": right.id}))
    probe = artifacts.read(root / "data" / "ingest" / "pair" / "probe.json", Probe)
    write_visemes(root / "scratch", probe, faces)  # one speaker's curves, reused for both below
    one = schema.read(root / "scratch" / "data" / "visemes" / "clip" / "es" / "visemes.json")
    spans = {"L": (0.5, 2.5), "R": (3.5, 5.5)}
    phones = tuple(schema.PhoneInterval(round(a, 3), round(a + 0.1, 3), "a", "AA", name)
                   for name, (start, end) in spans.items() for a in np.arange(start, end - 0.05, 0.1))
    curves = tuple(dataclasses.replace(one.speakers[0], speaker=name) for name in spans)
    schema.write(root / "data" / "visemes" / "pair" / "es" / "visemes.json", dataclasses.replace(one, phones=phones, speakers=curves))
    # in the source each says what their dub says, when it says it
    write_speakers(root / "data" / "speakers" / "pair" / "speakers.json",
                   Speakers("test", 2, tuple(SpeakerTurn(*spans[name], name) for name in spans), (),
                            tuple(Segment(k, *spans[name], "speech", name) for k, name in enumerate(spans))))
    (root / "params.yaml").write_text(yaml.safe_dump({"lipsync": yaml.safe_load((PROJECT / "conf" / "lipsync" / "exemplar.yaml").read_text())}))
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    done = subprocess.run([sys.executable, "-m", "tasks.lipsync", "--video", "pair", "--lang", "es", "--root", str(root)],
                          cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    report = lipsync_schema.read(root / "data" / "lipsync" / "pair" / "es" / "report.json")
    assert {t.speaker for t in report.tracks} == {"L", "R"} and all(t.frames_edited > 20 for t in report.tracks)
    source = frames_of(pair, probe.width, probe.height)
    output = frames_of(root / "data" / "lipsync" / "pair" / "es" / "video.mkv", probe.width, probe.height)
    h, half = probe.height, probe.width // 2
    t = np.arange(probe.frames) / probe.fps
    for name, side in (("L", slice(0, half)), ("R", slice(half, None))):
        start, end = spans[name]
        changed = np.array([not np.array_equal(source[i][:h, side], output[i][:h, side]) for i in range(probe.frames)])
        assert changed[(t > start + 0.2) & (t < end - 0.2)].mean() > 0.8
        assert not changed[(t < start - 0.2) | (t > end + 0.2)].any()


@pytest.fixture(scope="module")
def still_photo(tmp_path_factory):
    """A real portrait looped into a 5 s video (what a photo input becomes), through the real face
    stage, with the synthetic viseme track above; then the lipsync stage."""
    from tasks import artifacts
    from tasks.artifacts import Probe
    from tasks.face.schema import read_faces
    from tasks.artifacts import Segment
    from tasks.lipsync import schema as lipsync_schema
    from tasks.media import run_ffmpeg
    from tasks.speakers.schema import SpeakerTurn, Speakers
    from tasks.speakers.schema import write as write_speakers

    photo = shared_media("photo/astronaut.png")
    root = tmp_path_factory.mktemp("still")
    clip = root / "astronaut.mp4"
    run_ffmpeg("-loop", "1", "-framerate", "25", "-i", str(photo), "-f", "lavfi", "-i", "anoisesrc=d=5:a=0.01", "-t", "5",
               "-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2,format=yuv420p", "-c:v", "libx264", "-crf", "16", "-c:a", "aac", str(clip))
    run_face_stage(root / "ws", clip, 5.0, debug_video=False)
    ws = root / "ws"
    probe = artifacts.read(ws / "data" / "ingest" / "clip" / "probe.json", Probe)
    write_visemes(ws, probe, read_faces(ws / "data" / "face" / "clip" / "faces.npz"))
    # the source's audio speaks half a second longer each side than the dub: a photo's lips never
    # moved, so nothing is held at rest there
    longer = (SPEECH[0] - 0.5, SPEECH[1] + 0.5)
    write_speakers(ws / "data" / "speakers" / "clip" / "speakers.json",
                   Speakers("test", 1, (SpeakerTurn(*longer, "S0"),), (), (Segment(0, *longer, "speech", "S0"),)))
    (ws / "params.yaml").write_text(yaml.safe_dump({"lipsync": yaml.safe_load((PROJECT / "conf" / "lipsync" / "exemplar.yaml").read_text())}))
    done = lipsync(ws)
    assert done.returncode == 0, done.stderr[-3000:]
    out = ws / "data" / "lipsync" / "clip" / "es"
    return clip, out, probe, lipsync_schema.read(out / "report.json")


def test_a_still_photo_speaks_by_warping_its_one_exemplar(still_photo):
    """The photo's bank is one exemplar; the mouth (re-detected by dlib on the output) opens and
    closes with the target, and no pixel brighter than the photo's own mouth is painted there."""
    from tasks.evaluate.lipsync import mouth_track
    from tasks.visemes import schema

    clip, out, probe, report = still_photo
    track = report.tracks[0]
    assert track.bank_size == 1 and track.held_at_rest == 0
    t = np.arange(probe.frames) / probe.fps
    inside = (t > SPEECH[0] + 0.2) & (t < SPEECH[1] - 0.2)
    assert track.frames_edited >= inside.sum()
    opening = mouth_track(out / "video.mkv").opening[:probe.frames]
    curves = schema.read(out.parent.parent.parent / "visemes" / "clip" / "es" / "visemes.json").speakers[0]
    target = np.asarray(curves.params["gap"])[:probe.frames]
    found = inside & np.isfinite(opening)
    assert found.mean() > 0.9 * inside.mean()
    assert np.corrcoef(opening[found], target[found])[0, 1] > 0.6
    assert np.median(opening[found & (target > 0.9)]) - np.median(opening[found & (target < 0.15)]) > 0.08  # inter-ocular units
    assert np.median(opening[found & (target < 0.15)]) < 0.05            # the lips meet
    source = frames_of(clip, probe.width, probe.height)[:, :probe.height]
    output = frames_of(out / "video.mkv", probe.width, probe.height)[:, :probe.height]
    changed = (source != output).any(axis=0)
    assert changed.any()
    assert output[:, changed].max() <= source[:, changed].max() + 3      # luma: nothing brighter than the photo there
