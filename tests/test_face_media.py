"""Face stage on real media (../shared/media): skipped cleanly where that folder is absent."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from tests.conftest import PROJECT, run_face_stage, shared_media

pytestmark = pytest.mark.slow


def report_module():
    spec = importlib.util.spec_from_file_location("face_report", PROJECT / "scripts" / "face_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_stage_writes_typed_artifacts(tmp_path):
    from tasks.face.schema import read_faces, read_tracks

    out = run_face_stage(tmp_path, shared_media("video/frontal_woman_glasses.mp4"), 4.8)
    tracks = read_tracks(out / "tracks.json")
    faces = read_faces(out / "faces.npz")
    assert [t.id for t in tracks.tracks] == [0]
    assert tracks.speakers == {"S0": 0} and tracks.tracks[0].speaker == "S0"
    assert tracks.tracks[0].spans == ((0, tracks.frames - 1),)
    assert faces["landmarks"].shape == (tracks.frames, 68, 2) and faces["mouth_mask"].shape[1:] == (32, 48)
    assert np.abs(faces["pose"][:, :2]).mean() < 20  # a frontal face
    assert (out / "debug.mp4").stat().st_size > 10_000 and (out / "contact_sheet.png").stat().st_size > 1_000


def test_stage_mic_cuts_keeps_the_performer_across_cuts(tmp_path):
    module = report_module()
    report = module.run_clip(shared_media("video/stage_mic_cuts.mp4"), tmp_path)
    result = report["_result"]
    assert len(result.cuts) >= 3
    shot = np.searchsorted(result.cuts, np.arange(result.frames), side="right")
    performer = max(result.track_ids(), key=lambda t: (result.track == t).sum())
    shots = set(shot[result.frame[result.track == performer]].tolist())
    assert len(shots) >= 2, "the performer's identity must survive the cuts"
    # six people on screen for more than a second (counted by eye, see scripts/face_report.py):
    # the performer, a man in profile, and four faces in the audience, three of them turned
    assert len(result.track_ids()) == module.EXPECTED["stage_mic_cuts"]
    audience = [t for t in result.track_ids() if set(shot[result.frame[result.track == t]].tolist()) == {3}]
    assert len(audience) == 4


def test_mtcnn_finds_turned_faces_that_hog_misses():
    from tasks.face.pipeline import _scaled, detection_scale, read_frames

    module = report_module()
    frames = [f for i, (_, f) in enumerate(read_frames(str(shared_media("video/stage_mic_cuts.mp4")))) if i in (30, 240)]
    found = {}
    for detector in ("hog", "mtcnn"):
        backend, options = module.configured(detector)
        scale = detection_scale(640, 360, options, backend.detect_window)
        found[detector] = [len(backend.detect(_scaled(frame, scale))) for frame in frames]
    assert found["mtcnn"][0] >= 1 and found["hog"][0] == 0  # the man in profile
    assert found["mtcnn"][1] >= 4 > found["hog"][1]  # the audience, mostly in 3/4 view


def test_composite_maps_each_speaker_to_its_own_face(tmp_path):
    module = report_module()
    video = shared_media("video")
    composite, turns = module.side_by_side(video / "frontal_man_suit.mp4", video / "frontal_woman_flag.mp4",
                                           tmp_path / "sbs.mp4")
    report = module.run_clip(composite, tmp_path, segments=turns)
    result = report["_result"]
    assert len(result.track_ids()) == 2
    side = {t: "LEFT" if result.box[result.track == t][:, [0, 2]].mean() < result.width / 2 else "RIGHT"
            for t in result.track_ids()}
    assert {speaker: side[t] for speaker, t in result.speakers.items()} == {"LEFT": "LEFT", "RIGHT": "RIGHT"}


def test_still_portrait_mouth_jitter_below_one_percent():
    module = report_module()
    report = module.still_jitter(shared_media("photo/obama.jpg"), frames=30)
    assert report["displacement_iod"] < 0.01, report


@pytest.mark.parametrize("clip", ["frontal_man_suit.mp4", "head_turns_woman.mp4"])
def test_single_speaker_clips_one_continuous_speaking_track(tmp_path, clip):
    module = report_module()
    report = module.run_clip(shared_media(f"video/{clip}"), tmp_path)
    result = report["_result"]
    assert result.track_ids() == [0]
    assert report["continuity"][0]["coverage_of_clip"] > 0.97
    assert result.speakers == {"S0": 0}
    # noise in the mouth landmarks beyond what head motion and articulation explain (geometry.mouth_jitter)
    assert report["jitter"][0]["jitter_iod"] < 0.01, report["jitter"]


def paste_hand(frame: np.ndarray, landmarks: np.ndarray, colour: np.ndarray, rng) -> np.ndarray:
    """A skin-coloured hand-like shape (palm and four fingers, shaded, textured, soft-edged) laid
    over the mouth, fingers across the lips as when a speaker covers their mouth."""
    import cv2

    from tasks.face.geometry import interocular

    iod = interocular(landmarks)
    mouth = landmarks[48:68].mean(axis=0)
    shape = np.zeros(frame.shape[:2], np.uint8)
    palm_centre = (int(mouth[0] + 0.9 * iod), int(mouth[1] + 0.25 * iod))
    cv2.ellipse(shape, palm_centre, (int(0.7 * iod), int(0.55 * iod)), 10, 0, 360, 255, -1)
    for k in range(4):  # fingers reaching left across the mouth
        y = int(mouth[1] - 0.35 * iod + k * 0.24 * iod)
        cv2.line(shape, palm_centre[:1] + (y,), (int(mouth[0] - 0.75 * iod + 0.08 * iod * abs(k - 1.5)), y), 255,
                 max(3, int(0.2 * iod)))
    alpha = cv2.GaussianBlur(shape.astype(np.float32) / 255.0, (7, 7), 0)[..., None]
    rows = np.linspace(1.05, 0.85, frame.shape[0], dtype=np.float32)[:, None, None]
    hand = np.clip(colour * rows + rng.normal(0, 4, frame.shape), 0, 255)
    return (alpha * hand + (1 - alpha) * frame).astype(np.uint8)


def test_hand_over_the_mouth_lowers_visibility_and_masks_the_mouth():
    from tasks.face import visibility as vis
    from tasks.face.pipeline import analyze, read_frames

    module = report_module()
    backend, options = module.configured()
    clip = shared_media("video/frontal_man_suit.mp4")
    frames = [f for _, f in zip(range(90), read_frames(str(clip)))]
    clean = analyze(iter(frames), backend, options, 22.13, progress=False)
    rng = np.random.default_rng(0)
    covered = range(35, 65)
    edited = []
    for index, (stamp, frame) in enumerate(frames):
        if index in covered:
            row = np.flatnonzero(clean.frame == index)[0]
            landmarks = clean.landmarks_raw[row].astype(np.float64)
            cheek = frame[int(landmarks[29][1]) - 4:int(landmarks[29][1]) + 4,
                          int(landmarks[2][0] + landmarks[31][0]) // 2 - 4:int(landmarks[2][0] + landmarks[31][0]) // 2 + 4]
            frame = paste_hand(frame, landmarks, np.median(cheek.reshape(-1, 3), axis=0) * 1.05, rng)
        edited.append((stamp, frame))
    result = analyze(iter(edited), backend, options, 22.13, progress=False)
    assert result.track_ids() == [0], "the hand must not break or duplicate the track"
    hidden = np.isin(result.frame, list(covered)[3:-3])
    free = ~np.isin(result.frame, range(covered.start - 5, covered.stop + 5))
    assert np.median(result.visibility[hidden]) < 0.5
    assert np.median(result.visibility[free]) > 0.8
    assert np.isin(result.occluder[hidden], [vis.SKIN, vis.OBJECT]).mean() > 0.8
    assert (result.occluder[free] == vis.NONE).mean() > 0.8
    assert (result.mouth_mask[hidden] > 0).mean(axis=(1, 2)).mean() > 0.15  # the mask marks the covered mouth


def test_a_photo_of_two_people_gives_each_channel_of_a_stereo_recording_its_face():
    """two_people.jpg speaking two_speakers_stereo_en.wav (one man on the left channel, one on the
    right, over each other): no mouth moves, so the voices are placed by where they sit in the
    stereo image. The diarized turns are as the speakers stage found them: S0 where both talk, S1
    where only the left channel does."""
    import cv2
    import soundfile

    from tasks.face.pipeline import analyze

    module = report_module()
    backend, options = module.configured()
    photo = cv2.imread(str(shared_media("photo/two_people.jpg")))
    stereo, rate = soundfile.read(str(shared_media("audio/two_speakers_stereo_en.wav")), dtype="float32")
    fps = 25.0
    frames = ((k / fps, photo.copy()) for k in range(int(len(stereo) / rate * fps)))
    segments = [(0, 0.0, 1.6, "S0"), (1, 1.6, 4.54, "S1")]
    result = analyze(frames, backend, options, fps, segments=segments, audio=(stereo.mean(axis=1), rate),
                     progress=False, stereo=(stereo, rate))
    assert len(result.track_ids()) == 2
    left = min(result.track_ids(), key=lambda t: result.box[result.track == t][:, 0].mean())
    right = max(result.track_ids(), key=lambda t: result.box[result.track == t][:, 0].mean())
    assert result.speakers == {"S1": left, "S0": right}
    assert result.speaker_basis == {"S0": "still picture: stereo", "S1": "still picture: stereo"}
