"""Unit tests of the face stage's pure logic: pose, tracking, shot cuts, smoothing, jitter, speakers."""
from __future__ import annotations

import re

import numpy as np
import pytest

from tasks.face import geometry as geo
from tasks.face.smoothing import one_euro, smooth_landmarks
from tasks.face.speaking import associate, lagged_correlation, score_segments, speech_envelope
from tasks.face.tracking import (CutDetector, Fragment, assign, detect_cuts, histogram_distance, match_detections,
                                 merge_identities, spans)


def synthetic_face(centre=(320.0, 240.0), iod=80.0, mouth_open=0.1) -> np.ndarray:
    """A plausible frontal 68-point layout (only the geometry the logic uses needs to be right)."""
    cx, cy = centre
    s = iod / 60.0
    pts = np.zeros((68, 2))
    pts[0:17] = np.c_[np.linspace(-70, 70, 17), 20 + 50 * np.sin(np.linspace(0, np.pi, 17))]
    pts[17:27] = np.c_[np.linspace(-50, 50, 10), np.full(10, -55)]
    pts[27:31] = np.c_[np.zeros(4), np.linspace(-42, 0, 4)]
    pts[31:36] = np.c_[np.linspace(-15, 15, 5), np.full(5, 9)]
    for start, x in ((36, -30), (42, 30)):
        angle = np.linspace(0, 2 * np.pi, 7)[:6]
        pts[start:start + 6] = np.c_[x - 14 * np.cos(angle), -40 - 5 * np.sin(angle)]
    angle = np.linspace(0, 2 * np.pi, 13)[:12]
    pts[48:60] = np.c_[-25 * np.cos(angle), 35 - 10 * np.sin(angle)]
    gap = mouth_open * 60.0
    inner = np.array([[-18, 35], [-8, 35 - gap / 2], [0, 35 - gap / 2], [8, 35 - gap / 2], [18, 35],
                      [8, 35 + gap / 2], [0, 35 + gap / 2], [-8, 35 + gap / 2]], dtype=float)
    pts[60:68] = inner
    return pts * s + [cx, cy]


# ---------------------------------------------------------------- pose
@pytest.mark.parametrize("yaw,pitch,roll", [(0, 0, 0), (25, 0, 0), (-30, 10, 0), (0, -15, 5), (15, 12, -20), (-40, -5, 10)])
def test_head_pose_recovers_known_rotation(yaw, pitch, roll):
    camera = geo.camera_matrix(640, 480)
    rotation = geo.rotation_matrix(yaw, pitch, roll)
    translation = np.array([5.0, -10.0, 600.0])
    landmarks = np.zeros((68, 2))
    landmarks[geo.POSE_POINTS] = geo.project(geo.MODEL_POINTS, rotation, translation, camera)
    angles, rvec, tvec = geo.head_pose(landmarks, camera)
    assert np.allclose(angles, [yaw, pitch, roll], atol=0.5)
    assert np.allclose(tvec, translation, rtol=0.02)
    # the previous frame's pose as a guess gives the same answer
    again, _, _ = geo.head_pose(landmarks, camera, guess=(rvec, tvec))
    assert np.allclose(again, angles, atol=0.1)


@pytest.mark.parametrize("yaw,pitch,roll", [(10, 20, 30), (-35, 5, -12), (0, 0, 90)])
def test_euler_round_trip(yaw, pitch, roll):
    assert np.allclose(geo.euler_angles(geo.rotation_matrix(yaw, pitch, roll)), [yaw, pitch, roll], atol=1e-9)


def test_pose_is_robust_to_landmark_noise():
    camera = geo.camera_matrix(640, 480)
    landmarks = np.zeros((68, 2))
    landmarks[geo.POSE_POINTS] = geo.project(geo.MODEL_POINTS, geo.rotation_matrix(20, -5, 3), np.array([0, 0, 500.0]), camera)
    rng = np.random.default_rng(1)
    angles = [geo.head_pose(landmarks + rng.normal(0, 0.7, landmarks.shape), camera)[0] for _ in range(20)]
    assert np.abs(np.mean(angles, axis=0) - [20, -5, 3]).max() < 3.0


# ---------------------------------------------------------------- geometry
def test_similarity_recovers_transform_and_moves_boxes():
    rng = np.random.default_rng(0)
    source = rng.uniform(0, 100, (13, 2))
    angle = np.radians(12)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    target = 1.3 * source @ rotation.T + [40, -7]
    scale, r, t = geo.similarity(source, target)
    assert scale == pytest.approx(1.3) and np.allclose(r, rotation) and np.allclose(t, [40, -7])
    box = geo.move_box(np.array([0, 0, 10, 20.0]), (2.0, np.eye(2), np.array([5.0, 5.0])))
    assert np.allclose(box, [5, 5, 25, 45])


def test_mouth_opening_and_interocular():
    assert geo.interocular(synthetic_face(iod=80)) == pytest.approx(80, rel=1e-6)
    closed, open_ = geo.mouth_opening(synthetic_face(mouth_open=0.0)), geo.mouth_opening(synthetic_face(mouth_open=0.3))
    assert closed == pytest.approx(0.0, abs=1e-9) and open_ > 0.2


def test_iou_matrix():
    iou = geo.box_iou(np.array([[0, 0, 10, 10], [20, 20, 30, 30]]), np.array([[0, 0, 10, 10], [5, 0, 15, 10], [100, 100, 110, 110]]))
    assert np.allclose(iou, [[1, 1 / 3, 0], [0, 0, 0]])


# ---------------------------------------------------------------- jitter and smoothing
def test_jitter_ignores_head_motion_and_measures_noise():
    base = synthetic_face(iod=100)
    frames = []
    rng = np.random.default_rng(0)
    for t in range(60):  # the head glides and turns in the image plane; the mouth jitters 0.5 px
        angle = np.radians(0.3 * t)
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        moved = (base - base.mean(0)) @ rot.T * (1 + 0.002 * t) + base.mean(0) + [2.0 * t, 0.5 * t]
        moved[48:68] += rng.normal(0, 0.5, (20, 2))
        frames.append(moved)
    still = mouth_jitter_of(frames, noise=False)
    noisy = geo.mouth_jitter(np.array(frames))
    assert still["jitter_px"] < 0.05
    # white noise of sigma 0.5 px per axis: frame-to-frame displacement ~ 0.5 * sqrt(2) * sqrt(2)
    assert noisy["jitter_px"] == pytest.approx(1.0, rel=0.25)
    assert noisy["displacement_px"] == pytest.approx(1.0, rel=0.25)


def mouth_jitter_of(frames, noise):
    base = synthetic_face(iod=100)
    clean = []
    for t in range(len(frames)):
        angle = np.radians(0.3 * t)
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        clean.append((base - base.mean(0)) @ rot.T * (1 + 0.002 * t) + base.mean(0) + [2.0 * t, 0.5 * t])
    return geo.mouth_jitter(np.array(clean))


def test_smoothing_removes_jitter_but_keeps_a_fast_closure():
    rate = 25.0
    rng = np.random.default_rng(3)
    opening = np.r_[np.full(20, 0.3), np.linspace(0.3, 0.0, 3), np.full(20, 0.0)]  # closes in 3 frames
    clean = np.array([synthetic_face(iod=100, mouth_open=o) for o in opening])
    noisy = clean + rng.normal(0, 0.6, clean.shape)
    smooth = smooth_landmarks(noisy, rate)
    err_noisy = np.abs(noisy - clean)[:, 48:68].mean()
    err_smooth = np.abs(smooth - clean)[:, 48:68].mean()
    assert err_smooth < 0.7 * err_noisy
    # the closure is kept: the smoothed mouth is shut within a frame of the true closure
    open_smooth = np.array([geo.mouth_opening(f) for f in smooth])
    assert open_smooth[24] < 0.05 and open_smooth[18] > 0.25


def test_one_euro_passes_constants_and_follows_steps():
    constant = np.full((30, 2), 5.0)
    assert np.allclose(one_euro(constant, 25, 1.0, 0.0), 5.0)
    step = np.r_[np.zeros(10), np.ones(20)]
    out = one_euro(step, 25, 1.0, 50.0)
    assert out[-1] > 0.95


# ---------------------------------------------------------------- tracking
def test_assignment_prefers_global_optimum_and_rejects_costly_pairs():
    cost = np.array([[0.1, 0.2], [0.15, 0.9]])
    assert sorted(assign(cost, 0.5)) == [(0, 1), (1, 0)]
    assert assign(np.array([[0.8]]), 0.5) == []
    assert assign(np.zeros((0, 3)), 0.5) == []


def test_match_detections_by_overlap():
    tracks = np.array([[0, 0, 100, 100], [200, 0, 300, 100]], dtype=float)
    detections = np.array([[205, 5, 305, 105], [500, 500, 600, 600], [3, 2, 98, 103]], dtype=float)
    assert sorted(match_detections(tracks, detections)) == [(0, 2), (1, 0)]


def test_identities_merge_across_gaps_but_never_when_together():
    rng = np.random.default_rng(0)
    person_a, person_b = rng.normal(0, 0.1, 128), rng.normal(0, 0.1, 128)
    def emb(p):
        return [p + rng.normal(0, 0.01, 128) for _ in range(3)]
    fragments = [
        Fragment(0, list(range(0, 50)), emb(person_a), 10),
        Fragment(1, list(range(0, 50)), emb(person_b), 10),       # on screen with A
        Fragment(2, list(range(80, 120)), emb(person_a), 10),     # A again after a cut
        Fragment(3, list(range(130, 140)), emb(person_b), 10),    # B again after being away
    ]
    ids = merge_identities(fragments, max_distance=0.5)
    assert ids[0] == ids[2] and ids[1] == ids[3] and ids[0] != ids[1]
    # two fragments of the same person at the same time stay apart (never one face twice)
    twins = [Fragment(0, list(range(10)), emb(person_a), 5), Fragment(1, list(range(10)), emb(person_a), 5)]
    assert len(set(merge_identities(twins, 0.5).values())) == 2


def test_spans():
    assert spans([5, 1, 2, 3, 7, 8]) == [(1, 3), (5, 5), (7, 8)]
    assert spans([1, 3], max_gap=2) == [(1, 3)]


@pytest.mark.parametrize("cut_at", [10, 25])
def test_cut_detector_finds_a_cut_not_a_gradual_change(cut_at):
    rng = np.random.default_rng(0)
    a, b = rng.dirichlet(np.ones(64)), rng.dirichlet(np.ones(64))
    hist = [a * (1 - 0.01 * i) + 0.01 * i * rng.dirichlet(np.ones(64)) if i < cut_at else b for i in range(40)]
    hist = [h / h.sum() for h in hist]
    assert detect_cuts(hist) == [cut_at]
    fade = [(1 - i / 39) * a + (i / 39) * b for i in range(40)]
    assert detect_cuts(fade) == []
    assert histogram_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_cut_detector_on_real_pixels():
    from tasks.face.tracking import frame_histogram

    rng = np.random.default_rng(0)
    dark = rng.integers(0, 60, (90, 160, 3), dtype=np.uint8)
    bright = rng.integers(150, 255, (90, 160, 3), dtype=np.uint8)
    detector = CutDetector()
    flags = [detector.update(frame_histogram(f))[0] for f in [dark] * 5 + [bright] * 5]
    assert flags == [False] * 5 + [True] + [False] * 4


# ---------------------------------------------------------------- speakers
def test_speech_envelope_follows_bursts():
    rate = 16000
    t = np.arange(2 * rate) / rate
    samples = np.where((t > 0.5) & (t < 1.0), np.sin(2 * np.pi * 800 * t), 0.001 * np.sin(2 * np.pi * 800 * t))
    env = speech_envelope(samples, rate, np.array([0.25, 0.75, 1.5]))
    assert env[1] > env[0] + 30 and env[1] > env[2] + 30


def test_lagged_correlation_finds_shifted_signal():
    rng = np.random.default_rng(0)
    a = rng.normal(size=200)
    b = np.roll(a, 2)
    assert lagged_correlation(a, b, 3) > 0.95
    assert lagged_correlation(a, b, 0) < 0.3


def make_scene(frames=200, fps=25.0, seed=0):
    """Two faces; speaker A's speech drives face 0's mouth, B's drives face 2's; face 1 never speaks."""
    rng = np.random.default_rng(seed)
    env = np.zeros(frames)
    segments = [(0, 0.0, 2.0, "A"), (1, 2.0, 4.0, "B"), (2, 4.0, 6.0, "A"), (3, 6.0, 8.0, "B")]
    openings = {k: np.abs(rng.normal(0, 0.01, frames)) for k in (0, 1, 2)}
    for _, start, end, speaker in segments:
        lo, hi = int(start * fps), int(end * fps)
        syllables = np.abs(np.sin(np.linspace(0, 9 * np.pi, hi - lo))) + rng.normal(0, 0.1, hi - lo)
        env[lo:hi] = syllables
        face = 0 if speaker == "A" else 2
        openings[face][lo:hi] += 0.3 * np.clip(syllables, 0, None)
        other = 2 if face == 0 else 0
        openings[other][lo:hi] += 0.3 * np.abs(np.sin(np.linspace(0, 5 * np.pi, hi - lo) + 1.0))  # mouths move anyway
    openings[1] += 0.05 * rng.random(frames)
    openings[2][:10] = np.nan  # face 2 arrives late
    return segments, openings, env


def test_association_maps_each_speaker_to_its_face_and_leaves_silent_faces_alone():
    segments, openings, env = make_scene()
    scores = score_segments(segments, openings, env, 25.0)
    speakers, table, per_segment = associate(scores, {s[0]: s[2] - s[1] for s in segments})
    assert speakers == {"A": 0, "B": 2}
    assert per_segment == {0: 0, 1: 2, 2: 0, 3: 2}
    assert table["A"][0] > table["A"][1] and table["B"][2] > table["B"][1]


def test_association_needs_a_face_that_moves_with_the_speech():
    segments, openings, env = make_scene()
    silent = {1: openings[1]}  # only the face that never speaks is on screen
    scores = score_segments(segments, silent, env, 25.0)
    speakers, _, per_segment = associate(scores, {s[0]: s[2] - s[1] for s in segments})
    assert speakers == {"A": None, "B": None}
    assert set(per_segment.values()) == {None}


@pytest.mark.parametrize("glimpse_coverage, expected", [
    (0.3, 0),   # the performer, in sync over both segments, beats a face glimpsed moving in one
    (0.56, 0),  # stage_mic_cuts: the audience face is on screen for 56% of the last segment
    (None, 0),  # and wins alone
])
def test_association_prefers_the_face_seen_in_sync_for_longest(glimpse_coverage, expected):
    from tasks.face.speaking import SegmentScore

    scores = [SegmentScore(0, "S0", 0, 0.6, 0.55), SegmentScore(1, "S0", 0, 0.45, 0.52)]
    if glimpse_coverage is not None:
        scores.append(SegmentScore(1, "S0", 5, glimpse_coverage, 0.72))
    speakers, table, _ = associate(scores, {0: 4.9, 1: 3.6})
    assert speakers == {"S0": expected}
    if glimpse_coverage is not None:
        assert table["S0"][5] > table["S0"][0]  # the glimpse has the higher mean, not the evidence


def test_association_ignores_evidence_below_the_score_floor():
    from tasks.face.speaking import SegmentScore

    scores = [SegmentScore(0, "S0", 0, 1.0, 0.1), SegmentScore(0, "S0", 1, 0.2, 0.5)]
    speakers, _, _ = associate(scores, {0: 10.0})
    assert speakers == {"S0": 1}  # long but out of sync loses to brief and in sync


@pytest.mark.parametrize("claims,expected", [
    # head_turns_woman four times over: her voice (S4) is in sync with her face only weakly (0.04 over
    # 31 s), and the next woman's voice (S3) glimpsed her face at 0.86 for 1 s, so S3 took it and S4 had none
    (None, {"S3": 4, "S4": None}),
    ({"S3": 3, "S4": 4}, {"S3": 3, "S4": 4}),       # each alone on screen through their speech: theirs
    ({"S3": 4, "S4": 4}, {"S3": None, "S4": 4}),    # two claim one face: the more evidence (score x seconds) wins
])
def test_a_face_alone_through_a_speakers_speech_is_theirs(claims, expected):
    from tasks.face.speaking import SegmentScore

    scores = [SegmentScore(0, "S3", 3, 1.0, 0.13), SegmentScore(1, "S3", 4, 1.0, 0.86),
              SegmentScore(2, "S4", 4, 1.0, 0.04)]
    speakers, _, _ = associate(scores, {0: 15.5, 1: 1.0, 2: 30.6}, 0.2, claims)
    assert speakers == expected


def test_absent_track_is_not_a_candidate():
    segments, openings, env = make_scene()
    gone = openings[0].copy()
    gone[:] = np.nan
    scores = score_segments(segments, {0: gone}, env, 25.0)
    assert scores == []


def test_insightface_backend_without_its_folder_is_a_one_line_stage_error(tmp_path):
    from tasks.face.__main__ import build_backend
    from tasks.stage import StageError

    config = {"backend": {"_target_": "tasks.face.backends.InsightFaceBackend", "model_dir": str(tmp_path / "absent")}}
    with pytest.raises(StageError, match="InsightFace model folder not found"):
        build_backend(config)


def test_face_configs_name_known_options():
    import dataclasses

    import yaml

    from tasks.face.pipeline import FaceOptions
    from tests.conftest import PROJECT

    known = {f.name for f in dataclasses.fields(FaceOptions)}
    for path in sorted((PROJECT / "conf" / "face").glob("*.yaml")):
        config = yaml.safe_load(path.read_text())
        assert set(config["tracking"]) <= known, path.name
        assert config["backend"]["_target_"].startswith("tasks.face.backends.")


# ---------------------------------------------------------------- jitter metric against articulation
def test_jitter_separates_landmark_noise_from_articulation():
    rate, frames = 25.0, 100
    rng = np.random.default_rng(1)
    clean = []
    for t in range(frames):  # the head glides; the mouth opens and closes at 4 Hz (fast speech)
        opening = 0.25 + 0.2 * np.sin(2 * np.pi * 4.0 * t / rate)
        clean.append(synthetic_face(centre=(300 + 1.5 * t, 240 + 0.4 * t), iod=100, mouth_open=opening))
    clean = np.array(clean)
    speaking = geo.mouth_jitter(clean)
    assert speaking["displacement_px"] > 3.0  # articulation moves the lips several pixels a frame
    assert speaking["jitter_px"] < 0.05 * speaking["displacement_px"]
    noisy = clean.copy()
    noisy[:, 48:68] += rng.normal(0, 0.5, noisy[:, 48:68].shape)
    # the noise alone would displace a point by 0.5 * sqrt(2) * sqrt(2) = 1 px per frame
    assert geo.mouth_jitter(noisy)["jitter_px"] == pytest.approx(1.0, abs=0.3)


def test_local_fit_weights_reproduce_a_parabola():
    weights = geo.local_fit_weights(7, 4)
    t = np.arange(-3, 4, dtype=float)
    assert weights.sum() == pytest.approx(1.0)
    assert float(weights @ (3 + 2 * t - 0.5 * t ** 2 + 0.1 * t ** 4)) == pytest.approx(3.0)


# ---------------------------------------------------------------- detector plumbing
def test_nms_keeps_the_best_of_overlapping_boxes():
    from tasks.face.mtcnn import nms

    boxes = np.array([[0, 0, 100, 100], [5, 5, 105, 105], [200, 200, 260, 260], [210, 210, 240, 240]], float)
    scores = np.array([0.9, 0.95, 0.8, 0.7])
    assert sorted(nms(boxes, scores, 0.5).tolist()) == [1, 2, 3]
    assert sorted(nms(boxes, scores, 0.5, by_min=True).tolist()) == [1, 2]  # the small box lies inside


def test_mtcnn_boxes_are_reframed_like_dlib_boxes():
    from tasks.face.backends import mtcnn_to_dlib_box

    out = mtcnn_to_dlib_box(np.array([[100, 100, 200, 240, 0.99]]), dy=0.075, width=1.06, height=0.8)[0]
    assert out[4] == pytest.approx(0.99)
    assert (out[0] + out[2]) / 2 == pytest.approx(150) and out[2] - out[0] == pytest.approx(106)
    assert (out[1] + out[3]) / 2 == pytest.approx(170 + 0.075 * 140) and out[3] - out[1] == pytest.approx(112)


def test_unknown_dlib_detector_is_a_stage_error():
    from tasks.face.backends import DlibBackend
    from tasks.stage import StageError

    with pytest.raises(StageError, match="unknown dlib detector"):
        DlibBackend(detector="sift")


# ---------------------------------------------------------------- tracking between detections
def textured(shape=(360, 640), seed=0) -> np.ndarray:
    import cv2

    noise = np.random.default_rng(seed).uniform(0, 255, shape).astype(np.float32)
    return np.clip(cv2.GaussianBlur(noise, (0, 0), 2.0) * 3 - 255, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("shift,zoom", [((6.0, -3.0), 1.0), ((0.0, 0.0), 1.02), ((-4.0, 2.0), 0.985)])
def test_optical_flow_carries_the_box_with_the_face(shift, zoom):
    import cv2

    from tasks.face.pipeline import FaceOptions, _Active, _Tracker

    image = textured()
    box = np.array([250.0, 100.0, 370.0, 240.0])
    centre = (box[:2] + box[2:]) / 2
    matrix = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), 0.0, zoom)
    matrix[:, 2] += shift
    moved = cv2.warpAffine(image, matrix, (image.shape[1], image.shape[0]), flags=cv2.INTER_CUBIC)
    tracker = _Tracker(None, FaceOptions(max_scale_step=1.05), image.shape[1], image.shape[0])
    track = _Active(Fragment(0), np.zeros((68, 2)), box.copy(), 0)
    carried = tracker._carry(track, image, moved)
    assert (carried[:2] + carried[2:]) / 2 == pytest.approx(centre + shift, abs=0.5)
    assert (carried[2] - carried[0]) / (box[2] - box[0]) == pytest.approx(zoom, abs=0.01)


def test_optical_flow_limits_the_change_of_size_per_frame():
    import cv2

    from tasks.face.pipeline import FaceOptions, _Active, _Tracker

    image = textured(seed=2)
    box = np.array([250.0, 100.0, 370.0, 240.0])
    matrix = cv2.getRotationMatrix2D((310.0, 170.0), 0.0, 1.2)  # the face comes 20% nearer at once
    moved = cv2.warpAffine(image, matrix, (image.shape[1], image.shape[0]), flags=cv2.INTER_CUBIC)
    tracker = _Tracker(None, FaceOptions(max_scale_step=1.03), image.shape[1], image.shape[0])
    track = _Active(Fragment(0), np.zeros((68, 2)), box.copy(), 0)
    carried = tracker._carry(track, image, moved)
    assert (carried[2] - carried[0]) / (box[2] - box[0]) == pytest.approx(1.03, abs=0.005)


# ---------------------------------------------------------------- hands over the mouth
def test_hidden_lips_uses_the_mouth_line_when_lips_are_not_red():
    from tasks.face.visibility import hidden_lips

    pale_lips = np.zeros(40)  # this face's lips are no redder than its skin
    darkness = np.full(40, 0.45)
    darkness[10:20] = 0.05  # the dark line between the lips disappears under a hand
    hidden = hidden_lips(pale_lips, darkness)
    assert hidden[10:20].all() and not hidden[:10].any() and not hidden[20:].any()
    assert not hidden_lips(pale_lips, np.full(40, 0.05)).any()  # a cue the face never shows is unused


@pytest.mark.parametrize("size,stride,shape", [(2, 2, (1, 3, 13, 17)), (3, 2, (4, 5, 11, 11)), (3, 2, (2, 2, 10, 9))])
def test_strided_max_pool_matches_ceil_mode_pooling(size, stride, shape):
    torch = pytest.importorskip("torch")
    from tasks.face.mtcnn import max_pool_ceil

    x = torch.randn(*shape)
    expected = torch.nn.functional.max_pool2d(x, size, stride, ceil_mode=True)
    assert torch.equal(max_pool_ceil(x, size, stride), expected)


def test_frontality_from_five_points():
    from tasks.face.backends import frontality

    frontal = [[100, 100], [160, 100], [130, 130], [108, 160], [152, 160]]
    three_quarter = [[100, 100], [140, 100], [130, 130], [105, 160], [140, 160]]
    profile = [[100, 100], [120, 100], [90, 130], [95, 160], [115, 160]]  # the nose beyond the near eye
    rolled = np.array(frontal, float) @ np.array([[0.8, -0.6], [0.6, 0.8]]).T  # tilting the head changes nothing
    values = frontality(np.array([frontal, three_quarter, profile, rolled], float))
    assert values[0] == pytest.approx(1.0) and values[3] == pytest.approx(1.0)
    assert 0.3 < values[1] < 0.7 and values[2] == 0.0


def test_features_foreign_in_every_frame_belong_to_the_face():
    from tasks.face import visibility as vis

    frames = 40
    masks = np.zeros((frames, *vis.MASK_SHAPE), np.uint8)
    masks[:, 20:26, 10:30] = 255  # a moustache: foreign in every frame, same place
    masks[10:20, 5:25, 15:35] = 255  # a microphone passing in front for ten frames
    covered = (masks > 0).reshape(frames, -1).sum(axis=1) / 600.0  # a 600-pixel mouth region
    visibility = (1.0 - covered).astype(np.float32)
    occluder = np.where(covered > 0.15, vis.OBJECT, vis.NONE).astype(np.int8)
    assert (occluder == vis.OBJECT).all()  # the moustache alone covers 20% of the region
    vis.discount_own_features(masks, visibility, occluder)
    assert (occluder[10:20] == vis.OBJECT).all() and (occluder[:10] == vis.NONE).all()
    assert (masks[:, 20:26, 10:15] == 0).all() and (masks[10:20, 5:20, 20:35] == 255).all()
    assert visibility[0] == pytest.approx(1.0) and visibility[15] < 0.6


def _faces_over_speech(kinds: dict[int, str], frames: int = 100, seed: int = 3) -> dict[int, np.ndarray]:
    """Mouth openings (inter-ocular distances) of faces that talk, stay still (a frozen frame: jitter
    only), appear for a moment, or talk but are seen through half of the speech only."""
    rng = np.random.default_rng(seed)
    out = {}
    for track, kind in kinds.items():
        talk = 0.03 + 0.12 * np.abs(np.sin(np.linspace(0, 12 * np.pi, frames))) + rng.normal(0, 0.005, frames)
        series = {"talks": talk, "still": 0.04 + rng.normal(0, 0.003, frames), "glimpse": talk.copy(),
                  "half": talk.copy()}[kind]
        if kind == "glimpse":
            series[3:] = np.nan
        if kind == "half":
            series[::2] = np.nan
        out[track] = series
    return out


@pytest.mark.parametrize("kinds, expected", [
    ({0: "talks"}, {"S0": 0}),                               # alone on screen
    ({0: "talks", 1: "still"}, {"S0": 0}),                   # beside a frozen face: still the only one moving
    ({0: "still", 1: "talks", 2: "still"}, {"S0": 1}),
    ({0: "talks", 1: "talks"}, {}),                          # two moving mouths: the sync evidence decides
    ({0: "still"}, {}),                                      # a still face is no one's by itself
    ({0: "half", 1: "still"}, {}),                           # seen through half of the speech only
    ({0: "talks", 1: "glimpse"}, {"S0": 0}),                 # a face on screen for 3 frames does not count
])
def test_the_only_face_that_moves_through_a_speakers_speech_is_claimed(kinds, expected):
    from tasks.face.speaking import sole_moving_faces

    openings = _faces_over_speech(kinds)
    speaking = {"S0": np.ones(100, bool), "S1": np.zeros(100, bool)}   # S1 never speaks: no claim
    assert sole_moving_faces(openings, speaking, min_coverage=0.8, min_motion=0.02) == expected


@pytest.mark.parametrize("kinds, expected", [
    ({0: "still", 1: "still"}, True),     # a photo of two people
    ({0: "still"}, True),                 # a portrait
    ({0: "still", 1: "talks"}, False),    # one mouth moves: the sync evidence and the sole face decide
    ({0: "talks"}, False),
    ({}, False),                          # no face on screen: nothing to place
])
def test_a_picture_where_no_mouth_moves_through_the_speech_is_still(kinds, expected):
    from tasks.face.speaking import still_faces

    speaking = {"S0": np.r_[np.ones(50, bool), np.zeros(50, bool)], "S1": np.r_[np.zeros(50, bool), np.ones(50, bool)]}
    assert still_faces(_faces_over_speech(kinds), speaking, min_motion=0.02) is expected
    steady = {t: np.tile([3.0, 2.0], (100, 1)) + np.random.default_rng(t).normal(0, 0.002, (100, 2)) for t in kinds}
    assert still_faces(_faces_over_speech(kinds), speaking, heads=steady) is expected             # a photo
    swaying = {t: np.tile([3.0, 2.0], (100, 1)) + np.random.default_rng(t).normal(0, 0.02, (100, 2)) for t in kinds}
    assert still_faces(_faces_over_speech(kinds), speaking, heads=swaying) is False  # still people listening
    assert still_faces(_faces_over_speech(kinds), {"S0": np.zeros(100, bool)}) is False  # nobody speaks


def test_speakers_are_placed_in_the_stereo_image_from_their_channels():
    from tasks.face.speaking import speaker_pans

    rate = 1000
    rng = np.random.default_rng(0)
    stereo = np.zeros((3 * rate, 2))
    stereo[:rate, 0] = rng.normal(0, 0.1, rate)            # S0 on the left channel
    stereo[:rate, 1] = rng.normal(0, 0.01, rate)           # ... heard 20 dB lower on the right
    stereo[2 * rate:] = rng.normal(0, 0.1, (rate, 2))      # S1 in the middle
    pans = speaker_pans(stereo, rate, [(0, 0.0, 1.0, "S0"), (1, 2.0, 3.0, "S1")])
    assert pans["S0"] == pytest.approx(20.0, abs=1.0) and abs(pans["S1"]) < 1.0


FACES_X = {4: 900.0, 7: 300.0}   # track 7 on the left, 4 on the right


@pytest.mark.parametrize("speakers, pans, expected, basis", [
    (["S1", "S0"], None, {"S1": 7, "S0": 4}, "order"),                            # first to speak: the left face
    (["S1", "S0"], {"S0": 8.0, "S1": -6.0}, {"S0": 7, "S1": 4}, "stereo"),        # S0 louder on the left
    (["S1", "S0"], {"S0": 1.0, "S1": -1.0}, {"S1": 7, "S0": 4}, "order"),         # 2 dB apart: a mono mix, no cue
    (["S0", "S1", "S2"], None, {"S0": 7, "S1": 4, "S2": None}, "order"),          # more voices than faces
    (["S0"], None, {"S0": 7}, "order"),
])
def test_still_faces_take_speakers_left_to_right(speakers, pans, expected, basis):
    from tasks.face.speaking import placed_by_layout

    assert placed_by_layout(speakers, FACES_X, pans) == (expected, basis)
    assert placed_by_layout(speakers, {}, pans)[0] == {s: None for s in speakers}   # no face at all
    assert placed_by_layout(speakers, {3: 500.0}, pans) == ({s: 3 for s in speakers}, "one face")   # a portrait speaks every voice


@pytest.mark.parametrize("chosen, expected", [
    ({"S1": 0}, {"S0": None, "S1": 0}),            # a face chosen for S1 is taken from S0
    ({"S0": 1, "S1": 0}, {"S0": 1, "S1": 0}),      # swapped
    ({"S0": None}, {"S0": None, "S1": None}),      # a voice with no face (off screen)
    ({}, {"S0": 0, "S1": None}),
])
def test_the_users_choice_of_faces_goes_over_the_association(chosen, expected):
    from tasks.face.speaking import with_chosen_faces

    assert with_chosen_faces({"S0": 0, "S1": None}, chosen, [0, 1]) == expected


@pytest.mark.parametrize("chosen, message", [
    ({"S7": 0}, "S7, not a speaker here (speakers: S0, S1)"),
    ({"S0": 3}, "face track 3, not a track here (tracks: 0, 1; see contact_sheet.png)"),
    ({"S0": "left"}, "a face track id (a number of contact_sheet.png) or null per speaker, not S0: 'left'"),
])
def test_a_choice_of_faces_naming_what_is_not_there_is_refused(chosen, message):
    from tasks.face.speaking import with_chosen_faces

    with pytest.raises(ValueError, match=re.escape(message)):
        with_chosen_faces({"S0": 0, "S1": None}, chosen, [0, 1])


def _analysis_of(openings: dict[int, np.ndarray], centres_x: dict[int, float], fps: float = 25.0):
    """A FaceAnalysis with one face row per track per frame: its mouth opening and a box at `centres_x`."""
    from tasks.face.pipeline import FaceAnalysis

    frames = len(next(iter(openings.values())))
    tracks = sorted(openings)
    n = frames * len(tracks)
    track = np.repeat(tracks, frames).astype(np.int32)
    box = np.stack([[centres_x[t] - 50, 100, centres_x[t] + 50, 200] for t in track]).astype(np.float32)
    zeros = lambda *shape, dtype=np.float32: np.zeros((n, *shape), dtype)  # noqa: E731
    return FaceAnalysis(640 * 2, 360, fps, frames, np.arange(frames) / fps, [], np.tile(np.arange(frames), len(tracks)),
                        track.copy(), track, box, zeros(68, 2), zeros(68, 2), zeros(dtype=bool), zeros(3), zeros(3), zeros(3),
                        np.ones(n, np.float32), zeros(dtype=np.int8), zeros(4, dtype=np.int32), zeros(32, 48, dtype=np.uint8),
                        np.concatenate([openings[t] for t in tracks]).astype(np.float32), {}, {})


@pytest.mark.parametrize("stereo_side, expected, basis", [
    (None, {"S0": 2, "S1": 5}, "still picture: order"),        # mono: S0 speaks first, so the left face
    ("S1 left", {"S1": 2, "S0": 5}, "still picture: stereo"),  # S1 on the left channel: the left face
])
def test_a_photo_of_two_people_gives_each_voice_a_face(stereo_side, expected, basis):
    """Two still faces (a photo): the envelope correlation of jitter is chance, so the voices are
    placed by layout, each on its own face, and the segments follow their speakers."""
    from tasks.face.pipeline import FaceOptions, attach_speakers

    rate, seconds = 8000, 4.0
    openings = _faces_over_speech({2: "still", 5: "still"})   # 100 frames at 25 fps
    result = _analysis_of(openings, {2: 200.0, 5: 900.0})
    rng = np.random.default_rng(1)
    voice = rng.normal(0, 0.1, int(seconds * rate))
    stereo = np.stack([voice, voice], axis=1)
    if stereo_side:
        stereo[int(2.0 * rate):, 1] *= 0.05                      # S1 (2-4 s) quiet on the right
    segments = [(0, 0.1, 1.8, "S0"), (1, 2.0, 3.9, "S1")]
    attach_speakers(result, segments, (voice, rate), FaceOptions(), (stereo, rate))
    assert result.speakers == expected
    assert set(result.speaker_basis.values()) == {basis}
    assert [s["track"] for s in result.segments] == [expected["S0"], expected["S1"]]


def test_a_talking_face_is_placed_by_its_motion_not_by_layout():
    from tasks.face.pipeline import FaceOptions, attach_speakers

    rate = 8000
    openings = _faces_over_speech({2: "still", 5: "talks"})
    result = _analysis_of(openings, {2: 200.0, 5: 900.0})
    voice = np.random.default_rng(1).normal(0, 0.1, 4 * rate)
    attach_speakers(result, [(0, 0.1, 3.9, "S0")], (voice, rate), FaceOptions())
    assert result.speakers == {"S0": 5} and result.speaker_basis == {"S0": "sole moving face"}
    options = FaceOptions(speaking={**FaceOptions().speaking, "sole_face_min_coverage": 0})
    attach_speakers(result, [(0, 0.1, 3.9, "S0")], (voice, rate), options)
    assert result.speakers["S0"] != 2   # the still face is never given by layout beside a moving one


def test_chosen_faces_carry_to_the_segments_and_say_why():
    from tasks.face.pipeline import choose_faces

    result = _analysis_of(_faces_over_speech({0: "still", 1: "still"}), {0: 200.0, 1: 900.0})
    result.speakers, result.speaker_basis = {"S0": 0, "S1": 1}, {"S0": "still picture: order", "S1": "still picture: order"}
    result.segments = [{"id": 0, "speaker": "S0", "track": 0}, {"id": 1, "speaker": "S1", "track": 1}]
    choose_faces(result, {"S0": 1})
    assert result.speakers == {"S0": 1, "S1": None}
    assert result.speaker_basis == {"S0": "chosen, still picture"}   # still a photo
    assert [s["track"] for s in result.segments] == [1, None]
    result.speaker_basis = {"S0": "sync"}
    choose_faces(result, {"S1": 0})
    assert result.speaker_basis == {"S0": "sync", "S1": "chosen"}   # S0 keeps face 1
