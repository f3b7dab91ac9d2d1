"""The lipsync stage's pure logic, on small tables: features, Viterbi, bank index, spans, colour,
masks, measures, the mesh warp, the I420 paste and the report artifact."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from tasks.lipsync import core

RANGES = {"gap": [0.0, 0.4], "width": [0.6, 1.0], "jaw": [1.0, 1.4], "round": [0.0, 1.0]}


def face(gap: float = 0.1, width: float = 0.8, jaw: float = 1.2, iod: float = 100.0, shift=(300.0, 200.0)) -> np.ndarray:
    """68 landmarks with a known inner-lip gap, mouth width and nose-chin distance (inter-ocular units)."""
    lm = np.zeros((68, 2))
    ring = np.stack([np.cos(np.linspace(0, 2 * np.pi, 6, endpoint=False)), np.sin(np.linspace(0, 2 * np.pi, 6, endpoint=False))], 1) * 8
    lm[36:42] = ring + (-iod / 2, 0)
    lm[42:48] = ring + (iod / 2, 0)
    lm[27:36] = [(0, 10 * i) for i in range(9)]
    lm[33] = (0, 0.6 * iod)
    mouth_y = 0.95 * iod
    lm[0:17] = [(-0.9 * iod + 0.1125 * iod * i, 0.3 * iod + 0.05 * iod * min(i, 16 - i)) for i in range(17)]
    lm[8] = (0, lm[33, 1] + jaw * iod)
    for i, x in zip(range(48, 60), np.linspace(-1, 1, 12)):
        lm[i] = (x * width * iod / 2, mouth_y + (0.1 * iod if i > 54 else -0.1 * iod if 48 < i < 54 else 0))
    lm[48], lm[54] = (-width * iod / 2, mouth_y), (width * iod / 2, mouth_y)
    lm[60], lm[64] = (-0.3 * iod, mouth_y), (0.3 * iod, mouth_y)
    for top, bottom, x in ((61, 67, -0.15), (62, 66, 0.0), (63, 65, 0.15)):
        lm[top] = (x * iod, mouth_y - gap * iod / 2)
        lm[bottom] = (x * iod, mouth_y + gap * iod / 2)
    return lm + shift


@pytest.mark.parametrize("gap,width,jaw,expected", [
    (0.0, 0.6, 1.0, (0.0, 0.0, 0.0)),
    (0.4, 1.0, 1.4, (1.0, 1.0, 1.0)),
    (0.2, 0.8, 1.2, (0.5, 0.5, 0.5)),
    (0.1, 0.7, 1.3, (0.25, 0.25, 0.75)),
    (0.6, 0.8, 1.2, (1.5, 0.5, 0.5)),   # beyond the speaker's range: not clipped
])
def test_shape_features_are_the_speakers_0_to_1_range(gap, width, jaw, expected):
    for iod in (50.0, 180.0):  # independent of the face's size
        got = core.shape_features(face(gap, width, jaw, iod=iod)[None], RANGES)[0]
        np.testing.assert_allclose(got, expected, atol=1e-6)


@pytest.mark.parametrize("unary,transition,expected", [
    ([[0, 1], [0, 1], [0, 1]], None, [0, 0, 0]),
    ([[0, 1], [1, 0], [0, 1]], [[0, 0], [0, 0]], [0, 1, 0]),                  # free switching: frame by frame
    ([[0, 1], [1, 0], [0, 1]], [[0, 5], [5, 0]], [0, 0, 0]),                  # costly switching: hold
    ([[0, 1], [1, 0], [1, 0], [1, 0]], [[0, 1.5], [1.5, 0]], [1, 1, 1, 1]),   # one switch is not worth it...
    ([[0, 9], [1, 0], [1, 0], [1, 0]], [[0, 1.5], [1.5, 0]], [0, 1, 1, 1]),   # ... until the start insists
    ([[5, 0, 5]], None, [1]),
])
def test_viterbi_table(unary, transition, expected):
    assert core.viterbi(np.array(unary, float), None if transition is None else np.array(transition, float)).tolist() == expected


@pytest.mark.parametrize("seed", range(6))
def test_viterbi_is_the_exhaustive_optimum(seed):
    rng = np.random.default_rng(seed)
    unary, transition = rng.random((5, 3)) * 3, rng.random((3, 3)) * 2
    best = min(itertools.product(range(3), repeat=5), key=lambda p: core.path_cost(unary, transition, p))
    path = core.viterbi(unary, transition)
    assert core.path_cost(unary, transition, path) == pytest.approx(core.path_cost(unary, transition, best))


def test_viterbi_takes_a_step_cost_per_frame():
    unary = np.zeros((3, 2))
    steps = {1: np.array([[0, 0], [0, 0]]), 2: np.array([[9, 0], [9, 0]])}
    assert core.viterbi(unary, lambda t: steps[t])[-1] == 1


@pytest.mark.parametrize("target,pose,expected", [
    ((0.0, 0.5, 0.5), (0, 0), [0, 1]),
    ((1.0, 0.5, 0.5), (0, 0), [2, 1]),
    ((0.45, 0.5, 0.5), (0, 0), [1, 0]),
    ((1.0, 0.5, 0.5), (30, 0), [3, 2]),   # a turned head prefers the turned exemplar
])
def test_bank_index_finds_shape_and_pose(target, pose, expected):
    index = core.BankIndex(features=[(0, .5, .5), (.5, .5, .5), (1, .5, .5), (1, .5, .5)],
                           poses=[(0, 0), (0, 0), (0, 0), (30, 0)], weights=(1, .5, .5), pose_weight=0.5)
    assert index.nearest(np.array([target]), np.array([pose]), k=2)[0].tolist() == expected


def test_select_replays_real_motion_when_it_fits_as_well():
    # exemplars 0..3 are consecutive source frames; 4..7 the same shapes from scattered frames
    features = np.array([(g, .5, .5) for g in (0, .3, .6, .9)] * 2)
    index = core.BankIndex(features, np.zeros((8, 2)))
    sequence = np.array([1, 2, 3, 4, 10, 20, 30, 40])
    targets = np.array([(g, .5, .5) for g in (0, .3, .6, .9)])
    chosen = core.select(index, targets, np.zeros((4, 2)), sequence, smoothness=1.0, candidates=8)
    assert np.all(np.diff(sequence[chosen]) == 1)


def test_select_with_no_smoothness_is_frame_by_frame():
    features = np.array([(g, .5, .5) for g in np.linspace(0, 1, 11)])
    index = core.BankIndex(features, np.zeros((11, 2)))
    targets = np.array([(g, .5, .5) for g in (0.9, 0.1, 0.8, 0.0)])
    chosen = core.select(index, targets, np.zeros((4, 2)), np.arange(11) * 2, smoothness=0.0, hold_cost=0.0)
    assert chosen.tolist() == [9, 1, 8, 0]


@pytest.mark.parametrize("intervals,fps,frames,gap,expected", [
    ([], 10, 5, 0.4, []),
    ([(0.2, 0.4)], 10, 10, 0.4, [2, 3]),
    ([(0.2, 0.3), (0.5, 0.6)], 10, 10, 0.4, [2, 3, 4, 5]),   # a short pause stays edited
    ([(0.1, 0.2), (0.7, 0.8)], 10, 10, 0.4, [1, 7]),      # a long pause is left alone
    ([(0.5, 9.0)], 10, 8, 0.4, [5, 6, 7]),                      # clipped to the video
])
def test_active_frames(intervals, fps, frames, gap, expected):
    got = core.active_frames(intervals, fps, frames, merge_gap_s=gap, pad_s=0.0)
    assert np.flatnonzero(got).tolist() == expected


@pytest.mark.parametrize("mask,length,expected", [
    ([0, 1, 1, 1, 1, 1, 0], 2, [0, .5, 1, 1, 1, .5, 0]),
    ([1, 1, 0, 1], 3, [1 / 3, 1 / 3, 0, 1 / 3]),
    ([1, 1, 1], 1, [1, 1, 1]),
])
def test_ramp_fades_the_ends_of_each_run(mask, length, expected):
    np.testing.assert_allclose(core.ramp(np.array(mask, bool), length), expected)
    assert core.runs(np.array(mask, bool)) == [(a, b) for a, b in core.runs(np.array(mask, bool))]


@pytest.mark.parametrize("gain,offset", [((1, 1, 1), (0, 0, 0)), ((1.2, 0.9, 1.0), (10, -5, 3)), ((1, 1, 1), (-20, 15, 0))])
def test_colour_transfer_recovers_gain_and_offset(gain, offset):
    rng = np.random.default_rng(1)
    source = rng.random((20, 30, 3)) * 100 + 50
    target = source * gain + offset
    region = np.zeros((20, 30), bool)
    region[5:15, 5:25] = True
    target[~region] = 0  # what lies outside the region does not count
    g, o = core.colour_transfer(source, target, region)
    np.testing.assert_allclose(source[region] * g + o, target[region], atol=1e-6)


def test_colour_transfer_limits_the_gain_and_ignores_a_tiny_region():
    source = np.random.default_rng(2).random((10, 10, 3))
    g, _ = core.colour_transfer(source, source * 5, np.ones((10, 10), bool))
    assert np.all(g <= 1.4 + 1e-9)
    g, o = core.colour_transfer(source, source * 5, np.zeros((10, 10), bool))
    assert np.all(g == 1) and np.all(o == 0)


@pytest.mark.parametrize("radius", [0, 3, 8])
def test_feather_is_zero_on_the_edge_and_one_inside(radius):
    mask = np.zeros((60, 60), np.uint8)
    mask[10:50, 10:50] = 1
    alpha = core.feather(mask, radius)
    assert alpha[mask == 0].max() == 0
    assert alpha[30, 30] == 1
    if radius:
        assert alpha[10, 30] < 0.2 and 0 < alpha[10 + radius // 2, 30] < 1
        assert np.all(np.diff(alpha[30, 10:31]) >= 0)  # rises monotonically inward


@pytest.mark.parametrize("mse,expected", [(0.0, 99.0), (1.0, 48.13), (6.5025, 40.0), (65.025, 30.0)])
def test_psnr_table(mse, expected):
    a = np.zeros((10, 10))
    b = a + np.sqrt(mse)
    assert core.psnr(a, b) == pytest.approx(expected, abs=0.01)


def test_psnr_outside_a_mask_ignores_the_mouth():
    a = np.full((10, 10, 3), 100.0)
    b = a.copy()
    b[2:5, 2:5] = 0
    outside = np.ones((10, 10), bool)
    outside[2:5, 2:5] = False
    assert core.psnr(a, b, outside) == 99.0
    assert core.psnr(a, b) < 20


def test_boundary_gradient_sees_a_seam_and_flicker_sees_jumps():
    smooth = np.full((40, 40), 120, np.uint8)
    seam = smooth.copy()
    seam[:, 20:] = 160
    alpha = np.zeros((40, 40), np.float32)
    alpha[:, 19:22] = 0.5
    assert core.boundary_gradient(smooth, alpha) == 0
    assert core.boundary_gradient(seam, alpha) > 50
    assert core.flicker([1, 1, 1]) == 0 and core.flicker([1, 3, 1]) == 2


def test_adjust_mouth_moves_the_lips_to_the_target_within_the_limit():
    from tasks.lipsync.exemplar import adjust_mouth
    from tasks.visemes.calibration import mouth_measures

    def measure(lm):
        m = mouth_measures(lm[None])
        return np.array([m["gap"][0], m["width"][0], m["jaw"][0]])

    base = face(0.1, 0.8, 1.2)
    have = measure(base)
    near = adjust_mouth(base, have, have + (0.04, -0.03, 0.02), 100.0, limit=0.06)
    np.testing.assert_allclose(measure(near), have + (0.04, -0.03, 0.02), atol=1e-6)
    far = adjust_mouth(base, have, have + (0.5, 0, 0), 100.0, limit=0.06)
    assert measure(far)[0] == pytest.approx(have[0] + 0.06)


def test_piecewise_affine_identity_and_shift():
    from tasks.lipsync.warp import piecewise_affine

    rng = np.random.default_rng(3)
    image = (rng.random((60, 80, 3)) * 255).astype(np.uint8)
    points = np.array([[0, 0], [79, 0], [79, 59], [0, 59], [40, 30], [20, 45]], float)
    same, covered = piecewise_affine(image, points, points, (0, 0, 80, 60))
    assert covered[1:-1, 1:-1].all()
    assert np.abs(same[covered].astype(int) - image[covered]).max() <= 1
    moved, covered = piecewise_affine(image, points, points + (10, 5), (10, 5, 90, 65))
    assert np.abs(moved[covered].astype(int) - image[covered]).max() <= 1


def test_paste_changes_only_the_marked_samples():
    import cv2

    from tasks.lipsync.__main__ import paste, planes

    rng = np.random.default_rng(4)
    h, w = 40, 60
    frame = (rng.random((h * 3 // 2, w)) * 255).astype(np.uint8)
    before = frame.copy()
    roi = (10, 8, 30, 28)
    pixels = np.zeros((20, 20, 3), np.uint8)
    changed = np.zeros((20, 20), bool)
    changed[5:9, 4:10] = True
    paste(frame, pixels, changed, roi, h, w)
    y0, u0, v0 = planes(before, h, w)
    y1, u1, v1 = planes(frame, h, w)
    full = np.zeros((h, w), bool)
    full[8:28, 10:30] = changed
    assert np.array_equal(y0[~full], y1[~full]) and (y1[full] == 16).all()  # black in limited range
    block = full.reshape(h // 2, 2, w // 2, 2).any(axis=(1, 3))
    assert np.array_equal(u0[~block], u1[~block]) and np.array_equal(v0[~block], v1[~block])
    assert cv2.cvtColor(frame, cv2.COLOR_YUV2BGR_I420).shape == (h, w, 3)


def test_report_round_trips(tmp_path):
    from tasks.lipsync import schema

    metrics = schema.LipsyncMetrics(99, 99, 40, 0.03, 18, 19, 0.95, 0.3, 0.35, 0.86, 0.2, 50, 2.7, 12.0)
    track = schema.TrackReport(0, "S0", 135, 135, 100, {"not_speaking": 35, "turned": 0}, 2, 10, 0.1)
    report = schema.LipsyncReport("v", "es", "exemplar", 700, 700, 25.0, 135, 100, "libx264", (track,), ("S1",), metrics, {"a": 1})
    assert schema.read(schema.write(tmp_path / "report.json", report)) == report


def test_bank_canonical_crop_is_steady_under_head_motion():
    from tasks.lipsync.exemplar import ExemplarGenerator

    generator = ExemplarGenerator(min_bank=1)
    shapes = np.stack([face(0.1 + 0.02 * i, shift=(300 + 5 * i, 200 - 3 * i)) for i in range(6)])
    bank = generator.new_bank(0, shapes, RANGES)
    frame = np.full((500, 700, 3), 128, np.uint8)
    for i, lm in enumerate(shapes):
        bank.add(frame, lm, (0, 0, 0), i, i)
    generator.finish(bank)
    rigid = np.array(bank.landmarks)[:, 27:36]
    assert np.abs(rigid - rigid[0]).max() < 1e-6          # the head's motion is taken out
    np.testing.assert_allclose(bank.features[:, 0], [(0.1 + 0.02 * i) / 0.4 for i in range(6)], atol=1e-6)
    assert bank.sequence.tolist() == list(range(1, 7))
    rendered = generator.render(bank, 2, frame.shape[:2], shapes[4], bank.features[2])
    x0, y0, x1, y1 = rendered.roi
    assert x0 % 2 == 0 and y0 % 2 == 0 and (x1 - x0) % 2 == 0 and (y1 - y0) % 2 == 0
    assert rendered.region.any() and rendered.mouth.any() and rendered.patch.shape[:2] == rendered.region.shape


@pytest.mark.parametrize("missing", ["input", "faces"])
def test_stage_refuses_missing_inputs_in_one_line(tmp_path, missing):
    import os
    import subprocess
    import sys

    from tests.conftest import PROJECT

    (tmp_path / "params.yaml").write_text("lipsync: {}\n")
    if missing == "faces":
        (tmp_path / "data" / "input" / "v").mkdir(parents=True)
        (tmp_path / "data" / "input" / "v" / "v.mp4").write_bytes(b"")
        (tmp_path / "data" / "ingest" / "v").mkdir(parents=True)
        (tmp_path / "data" / "ingest" / "v" / "probe.json").write_text(
            '{"schema": 1, "kind": "Probe", "path": "v.mp4", "width": 64, "height": 64, "fps": 25.0, "frames": 1, '
            '"duration": 0.04, "video_codec": "h264", "audio_codec": "aac", "audio_rate": 44100, "audio_channels": 1}')
    done = subprocess.run([sys.executable, "-m", "tasks.lipsync", "--video", "v", "--lang", "es", "--root", str(tmp_path)],
                          cwd=PROJECT, env={**os.environ, "PYTHONPATH": str(PROJECT)}, capture_output=True, text=True, timeout=60)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 2 and len(errors) == 1 and "Traceback" not in done.stderr
    assert ("faces.npz" if missing == "faces" else "no input registered") in errors[0]
    assert not (tmp_path / "data" / "lipsync").exists()


def two_speakers(frames: int = 20, fps: float = 10.0):
    """faces.npz-like rows for two face tracks over `frames` frames, and visemes for S0 (0-0.9 s) and S1 (1.0-1.9 s)."""
    from tasks.visemes import schema

    rows = {k: [] for k in ("frame", "track", "box", "landmarks", "pose", "visibility", "mouth_mask", "mouth_box", "detected")}
    for f in range(frames):
        for track, x in ((0, 200.0), (1, 600.0)):
            rows["frame"].append(f)
            rows["track"].append(track)
            rows["box"].append((x - 100, 100, x + 100, 300))
            rows["landmarks"].append(face(shift=(x, 150)))
            rows["pose"].append((0.0, 0.0, 0.0))
            rows["visibility"].append(1.0)
            rows["mouth_mask"].append(np.zeros((32, 48), np.uint8))
            rows["mouth_box"].append((x - 50, 220, x + 50, 280))
            rows["detected"].append(True)
    faces = {k: np.array(v) for k, v in rows.items()}
    ranges = dict(RANGES)
    phones = tuple(schema.PhoneInterval(round(0.1 * i, 2), round(0.1 * i + 0.1, 2), "a", "AA", "S0" if i < 10 else "S1")
                   for i in range(20))
    curves = tuple(schema.SpeakerCurves(name, schema.Calibration("test", ranges), {k: [0.5] * frames for k in ("gap", "width", "jaw", "round")},
                                        {}, ["AA"] * frames) for name in ("S0", "S1"))
    return faces, schema.Visemes("es", fps, frames, "test", ["jaw", "width", "round", "gap"], phones, curves)


CONFIG = {"limits": {"max_yaw": 35, "min_face_px": 60, "max_covered": 0.85, "min_visibility": 0.15},
          "speech": {"merge_gap_s": 0.0, "pad_s": 0.0}}


def test_each_face_is_edited_only_while_its_own_speaker_speaks():
    from tasks.lipsync.__main__ import STATUS, plan_track

    faces, visemes = two_speakers()
    config = {**CONFIG, "speech": {**CONFIG["speech"], "ramp_frames": 1}}   # no fade margin
    plans = [plan_track(track, curves, faces, visemes, 20, 10.0, config) for track, curves in zip((0, 1), visemes.speakers)]
    edit = [np.flatnonzero(p.status == STATUS.index("edit")).tolist() for p in plans]
    assert edit[0] == list(range(0, 10)) and edit[1] == list(range(10, 20))
    assert (plans[0].status[10:] == STATUS.index("not_speaking")).all()
    assert plans[0].targets.shape == (20, 3) and np.allclose(plans[0].targets, 0.5)
    # with a 3-frame fade the edit runs 2 frames into the silence on each side, never into the other speech
    faded = [plan_track(track, curves, faces, visemes, 20, 10.0, {**CONFIG, "speech": {**CONFIG["speech"], "ramp_frames": 3}})
             for track, curves in zip((0, 1), visemes.speakers)]
    assert np.flatnonzero(faded[0].status == STATUS.index("edit")).tolist() == list(range(0, 12))
    assert np.flatnonzero(faded[1].status == STATUS.index("edit")).tolist() == list(range(8, 20))


@pytest.mark.parametrize("source_speech,hold,edited,held", [
    ((), True, range(0, 10), []),                               # nothing said in the source beyond the dub
    (((0.0, 1.4),), True, range(0, 14), range(10, 14)),         # the source goes on 0.4 s after the dub ends
    (((0.0, 1.4),), False, range(0, 10), []),                   # ... switched off: the original lips go on talking
    (((1.2, 1.5),), True, list(range(0, 10)) + list(range(12, 15)), range(12, 15)),  # a word after the dub's end
])
def test_where_the_source_speaks_and_the_dub_is_silent_the_mouth_rests(source_speech, hold, edited, held):
    from tasks.lipsync.__main__ import STATUS, plan_track

    faces, visemes = two_speakers()
    gap = [0.5] * 10 + [0.0] * 10      # the curves rest closed after the dub's speech
    visemes.speakers[0].params["gap"] = gap
    config = {**CONFIG, "speech": {**CONFIG["speech"], "ramp_frames": 1, "hold_source_speech": hold}}
    plan = plan_track(0, visemes.speakers[0], faces, visemes, 20, 10.0, config, source_speech)
    assert np.flatnonzero(plan.status == STATUS.index("edit")).tolist() == list(edited)
    assert np.flatnonzero(plan.held).tolist() == list(held)
    assert (plan.targets[plan.held, 0] == 0.0).all()


def test_source_words_are_each_speakers_own():
    from tasks.artifacts import Segment, Word
    from tasks.lipsync.__main__ import source_words

    segments = [Segment(0, 0.0, 2.0, "hi there", "S0", (Word(0.1, 0.4, "hi"), Word(0.9, 1.3, "there"))),
                Segment(1, 2.5, 3.0, "yes", "S1"),
                Segment(2, 3.2, 4.0, "ok", "S0", (Word(3.3, 3.6, "ok"),))]
    assert source_words(segments) == {"S0": [(0.1, 0.4), (0.9, 1.3), (3.3, 3.6)], "S1": [(2.5, 3.0)]}


@pytest.mark.parametrize("status,margin,expected", [
    ("nnnneeennn", 2, "nneeeeeeen"),   # widened into the silence on both sides, at most `margin`
    ("tneeen", 2, "teeeee"),           # never over a frame left untouched for another reason
    ("eenne", 1, "eeeee"),
    ("nneenn", 0, "nneenn"),
])
def test_fade_margins_put_the_fades_outside_the_speech(status, margin, expected):
    from tasks.lipsync.__main__ import STATUS, fade_margins

    code = {"n": STATUS.index("not_speaking"), "e": STATUS.index("edit"), "t": STATUS.index("turned")}
    out = fade_margins(np.array([code[c] for c in status]), margin)
    assert "".join({v: k for k, v in code.items()}[int(v)] for v in out) == expected


@pytest.mark.parametrize("cuts,expected", [
    ((), [1 / 3, 2 / 3, 1, 1, 2 / 3, 1 / 3]),
    ((2,), [1, 1, 1, 1, 2 / 3, 1 / 3]),          # the shot starts at the run: no fade in
    ((1,), [1, 1, 1, 1, 2 / 3, 1 / 3]),          # ... or just before it
    ((8,), [1 / 3, 2 / 3, 1, 1, 1, 1]),          # a cut right after the run: no fade out
    ((20,), [1 / 3, 2 / 3, 1, 1, 2 / 3, 1 / 3]),  # a cut far away changes nothing
])
def test_ramp_does_not_fade_at_a_shot_cut(cuts, expected):
    mask = np.zeros(12, bool)
    mask[2:8] = True
    weight = core.ramp(mask, 3, cuts)
    np.testing.assert_allclose(weight[2:8], expected)
    assert (weight[:2] == 0).all() and (weight[8:] == 0).all()


@pytest.mark.parametrize("lead_s,fps,frames", [(0.04, 25.0, 1), (0.04, 30.0, 1), (0.04, 22.13, 1), (0.06, 25.0, 2), (0.0, 30.0, 0)])
def test_lead_is_whole_frames(lead_s, fps, frames):
    from tasks.lipsync.__main__ import lead_frames

    assert lead_frames(lead_s, fps) == frames


def test_lead_shifts_a_one_frame_closure_without_blurring_it():
    from tasks.lipsync.__main__ import plan_track

    faces, visemes = two_speakers()
    gap = [0.6] * 20
    gap[5] = 0.0
    visemes.speakers[0].params["gap"] = gap
    config = {**CONFIG, "articulation": {"lead_s": 0.1}, "speech": {**CONFIG["speech"], "ramp_frames": 1}}
    plan = plan_track(0, visemes.speakers[0], faces, visemes, 20, 10.0, config)
    assert plan.targets[4, 0] == 0.0 and plan.targets[3, 0] == pytest.approx(0.6) and plan.targets[5, 0] == pytest.approx(0.6)


@pytest.mark.parametrize("change,reason", [
    (lambda f, r: f["pose"].__setitem__((r, 0), -50.0), "turned"),
    (lambda f, r: f["box"].__setitem__((r, 2), f["box"][r, 0] + 40), "small"),
    (lambda f, r: f["mouth_mask"].__setitem__(r, 255), "occluded"),
    (lambda f, r: f["visibility"].__setitem__(r, 0.05), "occluded"),
    (lambda f, r: f["mouth_mask"].__setitem__((r, slice(None), slice(0, 20)), 255), "edit"),  # partly covered: edited, occluder kept
])
def test_faces_too_turned_small_or_hidden_are_left_alone(change, reason):
    from tasks.lipsync.__main__ import STATUS, plan_track

    faces, visemes = two_speakers()
    row = int(np.flatnonzero((faces["frame"] == 3) & (faces["track"] == 0))[0])
    change(faces, row)
    plan = plan_track(0, visemes.speakers[0], faces, visemes, 20, 10.0, CONFIG)
    assert STATUS[plan.status[3]] == reason and STATUS[plan.status[4]] == "edit"


@pytest.mark.parametrize("mapping,track_speakers,expected,unmatched", [
    ({"S0": 0, "S1": 1}, (None, None), {"S0": 0, "S1": 1}, []),
    ({}, ("S1", "S0"), {"S0": 1, "S1": 0}, []),          # from each track's own `speaker`
    ({"S0": 0, "S1": None}, (None, None), {"S0": 0}, ["S1"]),
    ({"S0": 0, "S1": 7}, (None, None), {"S0": 0}, ["S1"]),  # a track with no rows
])
def test_speakers_map_to_their_face_tracks(mapping, track_speakers, expected, unmatched):
    from tasks.face.schema import FaceTrack, FaceTracks
    from tasks.lipsync.__main__ import speaker_tracks

    _, visemes = two_speakers()
    tracks = FaceTracks("v", 800, 400, 10.0, 20, "test", (), tuple(FaceTrack(i, 0, 19, 20, ((0, 19),), 2.0, speaker=s)
                                                                  for i, s in enumerate(track_speakers)), mapping)
    assert speaker_tracks(tracks, visemes, {0, 1}) == (expected, unmatched)


def test_covered_mask_lands_in_the_roi():
    from tasks.lipsync.__main__ import covered_mask

    faces, _ = two_speakers()
    faces["mouth_mask"][0, :, :24] = 255   # left half of the mouth box (150..250, 220..280)
    mask = covered_mask(faces, 0, (100, 200, 300, 300))
    assert mask[30:70, 55:95].all() and not mask[30:70, 105:145].any() and not mask[:15].any()


@pytest.mark.parametrize("choice,index,cuts,expected", [
    ([0, 1, 2, 3], 3, set(), (-1, 0.0)),          # replaying the source's own frames: nothing to dissolve
    ([0, 1, 7, 8], 2, set(), (2, 0.5)),           # a jump at 2: the old run (0, 1 -> 2) dissolves out
    ([0, 1, 7, 8], 3, set(), (3, 0.25)),
    ([0, 1, 7, 8, 9], 4, set(), (-1, 0.0)),       # after two frames the new exemplar is alone
    ([0, 1, 7, 8], 2, {2}, (-1, 0.0)),            # never across a shot cut
    ([-1, 5, 6, 7], 1, set(), (-1, 0.0)),         # the first edited frame of a run
])
def test_crossfade_after_a_jump(choice, index, cuts, expected):
    from types import SimpleNamespace

    from tasks.lipsync.__main__ import crossfade

    plan = SimpleNamespace(choice=np.array(choice), bank=SimpleNamespace(sequence=np.arange(1, 11)))
    assert crossfade(plan, index, 2, cuts) == expected


@pytest.mark.parametrize("usable,bank_size,run_length,expected", [
    (10, 400, 8, list(range(10))),                       # all of them when they fit
    (100, 16, 8, list(range(0, 8)) + list(range(92, 100))),
    (100, 24, 8, list(range(0, 8)) + list(range(46, 54)) + list(range(92, 100))),
    (100, 5, 1, [0, 25, 50, 74, 99]),
])
def test_bank_keeps_runs_of_neighbouring_frames(usable, bank_size, run_length, expected):
    from tasks.lipsync.exemplar import ExemplarGenerator

    rows = np.arange(usable) * 3 + 1
    chosen = ExemplarGenerator(bank_size=bank_size, run_length=run_length).choose_rows(rows, rows)
    assert chosen.tolist() == (np.array(expected) * 3 + 1).tolist()


def test_config_instantiates_the_generator_and_compositor():
    import yaml

    from tasks.lipsync.composite import Compositor
    from tasks.lipsync.exemplar import ExemplarGenerator
    from tasks.stage import instantiate
    from tests.conftest import PROJECT

    config = yaml.safe_load((PROJECT / "conf" / "lipsync" / "exemplar.yaml").read_text())
    assert isinstance(instantiate(config, "generator"), ExemplarGenerator)
    assert Compositor(**config["blend"]).mode == "feather"
    with pytest.raises(ValueError):
        Compositor(mode="paint")


@pytest.mark.parametrize("margin", [0.0, 0.3])
def test_chin_margin_moves_the_region_below_the_chin(margin):
    from tasks.lipsync.exemplar import ExemplarGenerator

    generator = ExemplarGenerator(min_bank=1, chin_margin=margin)
    shapes = np.stack([face(0.1 + 0.02 * i) for i in range(4)])
    bank = generator.new_bank(0, shapes, RANGES)
    for i, lm in enumerate(shapes):
        bank.add(np.full((500, 700, 3), 128, np.uint8), lm, (0, 0, 0), i, i)
    generator.finish(bank)
    rendered = generator.render(bank, 1, (500, 700), shapes[2], bank.features[1])
    lowest = np.flatnonzero(rendered.region.any(axis=1)).max() + rendered.roi[1]
    chin = max(shapes[2][8, 1], 0)
    assert lowest == pytest.approx(chin + margin * 100, abs=3)


@pytest.mark.parametrize("curve,level,max_gain,expected_peak", [
    ([0.0, 0.2, 0.45, 0.1], 0.9, 2.0, 0.9),    # scaled up until its peak reaches the level
    ([0.0, 0.1, 0.2, 0.1], 0.9, 2.0, 0.4),     # at most max_gain
    ([0.0, 0.5, 0.95, 0.2], 0.9, 2.0, 0.95),   # never scaled down
    ([0.0, 0.2, 0.45, 0.1], 0.0, 2.0, 0.45),   # off
])
def test_articulation_scales_the_opening_curves_and_keeps_closures(curve, level, max_gain, expected_peak):
    from tasks.lipsync.__main__ import articulate

    targets = np.stack([curve, [0.5] * 4, curve], axis=1)
    out = articulate(targets, np.ones(4, bool), {"open_level": level, "quantile": 1.0, "max_gain": max_gain})
    assert out[:, 0].max() == pytest.approx(expected_peak) and out[:, 2].max() == pytest.approx(expected_peak)
    assert out[0, 0] == 0 and (out[:, 1] == 0.5).all()


@pytest.mark.parametrize("gap", [0.0, 0.12])
def test_torn_mesh_keeps_the_teeth_with_their_lips(gap):
    """Opening wider than the exemplar: the band hanging from each lip keeps its height (the teeth move
    with their lip) and the band between the two midline copies opens by the difference."""
    import cv2

    from tasks.lipsync.exemplar import MESH, midline, torn_mesh
    from tasks.lipsync.warp import piecewise_affine

    exemplar = face(gap, shift=(150, 0))
    opened = face(gap + 0.1, shift=(150, 0))
    tear_src, tear_dst = midline(exemplar, opened)
    border = np.array([[0, 0], [299, 0], [299, 299], [0, 299]], float)
    src, dst = np.vstack([exemplar[MESH], border, tear_src]), np.vstack([opened[MESH], border, tear_dst])
    tris = torn_mesh(src)
    assert tris.max() == len(src) - 1 and len(np.unique(tris)) == len(src)
    upper_band = tear_dst[:3] - opened[[61, 62, 63]]
    lower_band = opened[[67, 66, 65]] - tear_dst[3:]
    np.testing.assert_allclose(upper_band[:, 1], gap * 50, atol=1e-6)   # half the exemplar's gap, 100 px iod
    np.testing.assert_allclose(lower_band[:, 1], gap * 50, atol=1e-6)
    np.testing.assert_allclose((tear_dst[3:] - tear_dst[:3])[:, 1], 10.0, atol=1e-6)   # the cavity opens by 0.1 iod
    image = np.zeros((300, 300, 3), np.uint8)
    cv2.rectangle(image, (0, 0), (299, 299), (90, 90, 90), -1)
    warped, covered = piecewise_affine(image, src, dst, (0, 0, 300, 300), tris)
    assert covered[150:260, 110:190].all()   # no hole in the mouth
    closed_tear = midline(exemplar, face(0.0, shift=(150, 0)))[1]
    np.testing.assert_allclose(closed_tear[:3], closed_tear[3:], atol=1e-6)   # closing: the copies meet, no fold


def test_still_bank_collapses_to_one_exemplar_with_its_own_ranges():
    from tasks.lipsync.exemplar import ExemplarGenerator

    generator = ExemplarGenerator(min_bank=1)
    photo = face(0.1)
    bank = generator.new_bank(0, np.stack([photo] * 5), {k: [v[0], v[0] + 0.04] for k, v in RANGES.items()})
    for i in range(5):
        bank.add(np.full((500, 700, 3), 128, np.uint8), photo + 0.001 * i, (0, 0, 0), i, i)
    generator.finish(bank)
    assert bank.still and len(bank) == 1
    assert bank.ranges["gap"] == [0.0, pytest.approx(0.22)]
    closed = generator.render(bank, 0, (500, 700), photo, np.array([0.0, 1.0, 0.5]))
    opened = generator.render(bank, 0, (500, 700), photo, np.array([1.0, 1.0, 0.5]))
    assert closed is not None and opened is not None
    moving = ExemplarGenerator(min_bank=1)
    bank = moving.new_bank(0, np.stack([face(0.1 + 0.03 * i) for i in range(5)]), RANGES)
    for i in range(5):
        bank.add(np.full((500, 700, 3), 128, np.uint8), face(0.1 + 0.03 * i), (0, 0, 0), i, i)
    moving.finish(bank)
    assert not bank.still and len(bank) == 5


def test_no_crossfade_across_an_articulation():
    from types import SimpleNamespace

    from tasks.lipsync.__main__ import crossfade

    features = np.array([(g, .5, .5) for g in (0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.0, 0.7, 0.8)])
    plan = SimpleNamespace(choice=np.array([0, 1, 7, 8]), bank=SimpleNamespace(sequence=np.arange(1, 11), features=features))
    assert crossfade(plan, 2, 2, set(), max_shape=0.25) == (-1, 0.0)      # open -> closed: no dissolve
    plan.choice = np.array([0, 1, 8, 9])
    assert crossfade(plan, 2, 2, set(), max_shape=0.25) == (2, 0.5)        # about the same opening: dissolve
    plan.targets = np.array([(g, .5, .5) for g in (0.8, 0.8, 0.0, 0.8)])
    assert crossfade(plan, 2, 2, set(), max_shape=0.25, closed_level=0.05) == (-1, 0.0)  # a closure asked for: no ghost
    assert crossfade(plan, 3, 2, set(), max_shape=0.25, closed_level=0.05) == (3, 0.25)


@pytest.mark.parametrize("width", [0.0, 0.25, 0.5, 3.0])
def test_cavity_band_covers_pixels_by_its_width(width):
    """A band that barely opened darkens its pixels only by the share it covers: a polygon
    rasterised whole would draw a one-pixel dark line across the teeth."""
    from tasks.lipsync.exemplar import band_coverage, cavity_shade

    top, bottom = 10.0 - width / 2, 10.0 + width / 2
    band = np.array([[2.0, top], [18.0, top], [18.0, bottom], [2.0, bottom]])
    cover = band_coverage(band, (20, 20))
    column = cover[5:15, 5:15].sum(axis=0)   # the band's height per pixel column (the fill holds its edge: + 1/8 px)
    assert (column >= width - 0.01).all() and (column <= width + 1 / 8 + 0.01).all()
    assert cover.max() <= min(width, 1.0) + 1 / 8 + 0.01
    shaded = cavity_shade(np.full((20, 20, 3), 200, np.uint8), cover, 0.75, 0.0)
    np.testing.assert_allclose(shaded[10, 5:15, 0], 200 * (1 - 0.75 * cover[10, 5:15]), atol=1)


def test_select_reaches_a_one_frame_closure():
    """Smoothness costs only the shape change beyond the targets' own: a short closure the targets ask
    for is not smoothed away by the jump costs."""
    features = np.array([(g, .5, .5) for g in (0.0, 0.8)] + [(0.8, .5, .5)] * 4)
    index = core.BankIndex(features, np.zeros((6, 2)))
    sequence = np.array([1, 10, 11, 12, 13, 14])
    targets = np.array([(g, .5, .5) for g in (0.8, 0.8, 0.0, 0.8, 0.8)])
    chosen = core.select(index, targets, np.zeros((5, 2)), sequence, smoothness=1.0, candidates=6)
    assert features[chosen[2], 0] == 0.0 and (features[chosen[[0, 1, 3, 4]], 0] == 0.8).all()


def test_short_closures_are_held_longer_but_pauses_and_silence_are_not_moved():
    from tasks.lipsync.__main__ import hold_closures

    gap = np.array([0.5, 0.5, 0.5, 0.0, 0.6, 0.6, 0.0, 0.0, 0.0, 0.0, 0.0, 0.4, 0.4])
    speaking = np.ones(len(gap), bool)
    targets = np.stack([gap, np.full(len(gap), 0.5), gap], axis=1)
    out = hold_closures(targets, speaking, 0.05, 1, 1, 4)
    assert out[:, 0].tolist() == [0.5, 0.5, 0.0, 0.0, 0.0, 0.6, 0.0, 0.0, 0.0, 0.0, 0.0, 0.4, 0.4]  # the pause: not a bilabial
    assert (out[:, 1:] == targets[:, 1:]).all()
    speaking[2] = False
    assert hold_closures(targets, speaking, 0.05, 1, 0, 4)[2, 0] == 0.5  # never outside speech


def test_lone_tracks_are_the_faces_that_never_share_the_screen():
    from tasks.lipsync.__main__ import lone_speaker_tracks

    faces = {"frame": np.array([0, 1, 2, 3, 4, 5, 3, 4, 9]), "track": np.array([0, 0, 0, 1, 1, 1, 2, 2, 3])}
    assert lone_speaker_tracks(faces, {0, 1, 2, 3}) == [0, 3]   # 1 and 2 share frames 3 and 4
    assert lone_speaker_tracks(faces, {0}) == [0]
    during = np.array([False, False, False, True, False, False, False, False, False, False])
    assert lone_speaker_tracks(faces, {0, 1, 2, 3}, during) == []     # frame 3: tracks 1 and 2 together
    during[[0, 5, 9]] = True
    assert lone_speaker_tracks(faces, {0, 1, 2, 3}, during) == [0, 3]  # 1 and 2 still share frame 3
    assert lone_speaker_tracks(faces, {0, 1, 3}, during) == [0, 1, 3]


def test_a_voice_with_no_face_takes_the_face_alone_on_screen_while_it_speaks():
    """A longer video of several people (one shot each): a voice the face stage placed on no face
    speaks with the face alone on screen during its own speech, never with another voice's face
    nor with a face that shares the screen then."""
    from types import SimpleNamespace

    from tasks.lipsync.__main__ import lone_faces_speak

    # 10 fps, 30 frames: track 0 (voice A's, mapped) in 0-9, track 1 in 10-19, tracks 2 and 3 side by
    # side in 20-29 (one frame of track 4 at 25)
    frame = np.concatenate([np.arange(10), np.arange(10, 20), np.arange(20, 30), np.arange(20, 30), [25]])
    track = np.concatenate([np.zeros(10), np.ones(10), np.full(10, 2), np.full(10, 3), [4]]).astype(int)
    faces = {"frame": frame, "track": track, "box": np.tile([0.0, 0.0, 80.0, 80.0], (len(frame), 1))}
    phone = lambda speaker, start, end: SimpleNamespace(speaker=speaker, start=start, end=end)
    visemes = SimpleNamespace(phones=[phone("A", 0.1, 0.9), phone("B", 1.1, 1.8), phone("C", 2.1, 2.8), phone("D", 0.2, 0.8)])
    found = lone_faces_speak(["B", "C", "D"], {0}, faces, {0, 1, 2, 3, 4}, visemes, 10.0, 30, {"pad_s": 0.0})
    assert found == {"B": 1}   # C: two faces on screen while it speaks; D: only A's face then
    assert lone_faces_speak(["D"], set(), faces, {0, 1, 2, 3, 4}, visemes, 10.0, 30, {"pad_s": 0.0}) == {"D": 0}


def test_adjust_mouth_closes_further_than_it_opens():
    from tasks.lipsync.exemplar import adjust_mouth
    from tasks.visemes.calibration import mouth_measures

    base = face(0.14)
    have = np.array([mouth_measures(base[None])[k][0] for k in ("gap", "width", "jaw")])
    closed = adjust_mouth(base, have, have - (0.14, 0, 0), 100.0, limit=0.06, close_limit=0.15)
    assert mouth_measures(closed[None])["gap"][0] == pytest.approx(0.0, abs=1e-6)
    opened = adjust_mouth(base, have, have + (0.14, 0, 0), 100.0, limit=0.06, close_limit=0.15)
    assert mouth_measures(opened[None])["gap"][0] == pytest.approx(0.20, abs=1e-6)


def test_a_closure_prefers_really_closed_exemplars_over_a_closer_pose():
    features = np.array([(0.0, .5, .5), (0.35, .5, .5)])
    poses = np.array([(0.0, 8.0), (0.0, 0.0)])
    target, pose = np.array([(0.0, .5, .5)]), np.zeros((1, 2))
    assert core.BankIndex(features, poses).nearest(target, pose)[0, 0] == 1
    assert core.BankIndex(features, poses, closure_weight=2.0).nearest(target, pose)[0, 0] == 0
    assert core.BankIndex(features, poses, closure_weight=2.0).nearest(np.array([(0.3, .5, .5)]), pose)[0, 0] == 1


def test_the_presenter_is_the_lone_face_most_on_screen():
    from tasks.lipsync.__main__ import presenter_track

    faces = {"track": np.array([0, 0, 0, 1, 1]), "box": np.array([[0, 0, 50, 50]] * 3 + [[0, 0, 90, 90]] * 2)}
    assert presenter_track(faces, [0, 1]) == 1      # 2 frames x 90 px > 3 frames x 50 px
    assert presenter_track(faces, [0]) == 0
    faces["frame"] = np.array([0, 1, 2, 3, 4])
    assert presenter_track(faces, [0, 1], np.array([True, True, True, False, True])) == 0  # 3 x 50 > 1 x 90


def test_exemplar_face_stops_at_its_cheeks_and_opens_below_its_chin():
    """The region an exemplar may paint: not beyond its cheeks (its hair or background there showed as
    a dark smudge on a wider current face), but below its chin (its neck under a closed jaw)."""
    from tasks.lipsync.exemplar import exemplar_face

    points = face(shift=(300.0, 200.0))
    mask = exemplar_face(points, np.array([0.0, 200.0]), (500, 600))
    assert mask[int(points[62:67, 1].mean()), 300] == 1          # the mouth
    assert mask[420, 300] == 1                                    # below the chin (y 380)
    assert mask[295, 300 - 70] == 0 and mask[295, 300 + 70] == 0  # beside the mouth, outside the cheeks
    assert mask[150, 300] == 0                                    # above the nose


@pytest.mark.parametrize("codec", ["libx264", "ffv1"])
def test_encoder_writes_the_same_bytes_for_the_same_frames(tmp_path, codec):
    """No date or random id in the lossless intermediate: DVC sees the same hash on every run."""
    from tasks.lipsync.__main__ import Encoder

    frames = np.random.default_rng(5).integers(0, 255, (6, 48 * 3 // 2, 64), dtype=np.uint8)   # I420, 64x48
    written = []
    for name in ("a.mkv", "b.mkv"):
        encoder = Encoder(tmp_path / name, 64, 48, "25", codec)
        for frame in frames:
            encoder.write(frame)
        encoder.close()
        written.append((tmp_path / name).read_bytes())
    assert len(written[0]) > 1000 and written[0] == written[1]


def rotated(landmarks: np.ndarray, degrees: float, centre=(300.0, 300.0)) -> np.ndarray:
    angle = np.deg2rad(degrees)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return (landmarks - centre) @ rotation.T + centre


@pytest.mark.parametrize("iod,degrees,max_error", [
    (100.0, 7.0, 1.5),     # a face within the canonical size: its pixels come back as they were
    (100.0, 0.0, 1.5),
    (200.0, 7.0, 6.0),     # larger than max_canonical_iod: kept at that size (a blur, bounded)
])
def test_an_exemplar_rendered_onto_its_own_face_is_its_own_pixels(iod, degrees, max_error):
    """The bank keeps the source's pixels and the render resamples them once: an exemplar put back
    on the face it came from returns the frame (two bilinear passes, via a canonical crop, lost a
    third of the fine detail)."""
    from tasks.lipsync.exemplar import ExemplarGenerator

    rng = np.random.default_rng(0)
    frame = cv2_blur(rng.integers(0, 256, (700, 700, 3)).astype(np.uint8))
    shapes = np.stack([rotated(face(0.1 + 0.02 * i, iod=iod, shift=(300.0, 150.0)), degrees) for i in range(4)])
    generator = ExemplarGenerator(min_bank=1, max_canonical_iod=140.0)
    bank = generator.new_bank(0, shapes, RANGES)
    for i, lm in enumerate(shapes):
        bank.add(frame, lm, (0, 0, 0), i, i)
    generator.finish(bank)
    rendered = generator.render(bank, 2, frame.shape[:2], shapes[2], bank.features[2])
    x0, y0, x1, y1 = rendered.roi
    inside = rendered.region
    error = np.abs(rendered.patch.astype(float) - frame[y0:y1, x0:x1])[inside].mean()
    assert error < max_error
    assert max(c.shape[1] for c in bank.crops) <= 2.5 * min(iod, 140.0)   # large faces are stored at canonical size


def cv2_blur(image: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.GaussianBlur(image, (0, 0), 1.0)


@pytest.mark.parametrize("change,expected", [
    ("none", (0.99, 1.01)),
    ("contrast", (0.99, 1.01)),     # a colour gain is not detail
    ("blur", (0.0, 0.8)),           # a resampling's blur is less
])
def test_detail_falls_with_blur_not_with_contrast(change, expected):
    import cv2

    from tasks.lipsync.core import detail

    rng = np.random.default_rng(1)
    image = cv2.GaussianBlur(rng.integers(0, 256, (80, 80)).astype(np.float32), (0, 0), 0.8)
    mask = np.zeros((80, 80), bool)
    mask[10:70, 10:70] = True
    other = {"none": image, "contrast": 1.3 * image - 20, "blur": cv2.GaussianBlur(image, (0, 0), 0.7)}[change]
    assert expected[0] <= detail(other, mask) / detail(image, mask) <= expected[1]


def test_unknown_interpolation_is_refused():
    from tasks.lipsync.exemplar import ExemplarGenerator

    with pytest.raises(ValueError, match="interpolation"):
        ExemplarGenerator(interpolation="nearest-ish")


@pytest.mark.parametrize("tear_weight,target,expected", [
    (0.0, 0.6, 0),     # equally far: the first (ties by order)
    (5.0, 0.6, 1),     # opening the narrower one would tear its mouth: the wider one, squeezed
    (5.0, 0.3, 0),     # a narrower target: neither needs tearing
    (5.0, 0.0, 0),
])
def test_tearing_an_exemplar_open_costs_more_than_squeezing_one(tear_weight, target, expected):
    features = np.array([(0.5, .5, .5), (0.7, .5, .5)]) if target >= 0.5 else np.array([(target, .5, .5), (target + 0.2, .5, .5)])
    index = core.BankIndex(features, np.zeros((2, 2)), tear_weight=tear_weight)
    assert index.nearest(np.array([(target, .5, .5)]), np.zeros((1, 2)))[0, 0] == expected


@pytest.mark.parametrize("target_gap,expected_tear", [(0.1, 0.0), (0.15, 0.02), (0.4, 0.06)])
def test_a_render_says_how_far_it_tore_the_mouth_open(target_gap, expected_tear):
    from tasks.lipsync.exemplar import ExemplarGenerator

    generator = ExemplarGenerator(min_bank=1, adjust_limit=0.06)
    shapes = np.stack([face(gap) for gap in (0.05, 0.13, 0.25)])
    bank = generator.new_bank(0, shapes, RANGES)
    frame = np.full((500, 700, 3), 128, np.uint8)
    for i, lm in enumerate(shapes):
        bank.add(frame, lm, (0, 0, 0), i, i)
    generator.finish(bank)
    lo, hi = RANGES["gap"]
    assert not bank.still
    rendered = generator.render(bank, 1, frame.shape[:2], shapes[1], np.array([(target_gap - lo) / (hi - lo), 0.5, 0.5]))
    assert rendered.tear == pytest.approx(max(0.0, min(target_gap - 0.13, 0.06)), abs=1e-6)
    assert rendered.tear == pytest.approx(expected_tear, abs=0.005)


@pytest.mark.parametrize("crossfade_mouth", [False, True])
def test_a_crossfade_dissolves_the_skin_and_switches_the_mouth_whole(crossfade_mouth):
    from tasks.lipsync.composite import Compositor
    from tasks.lipsync.exemplar import Rendered

    region = np.ones((60, 80), bool)
    mouth = np.zeros((60, 80), bool)
    mouth[20:40, 20:60] = True
    new = Rendered((0, 0, 80, 60), np.full((60, 80, 3), 200, np.uint8), region, mouth.copy(), 100.0)
    old = Rendered((0, 0, 80, 60), np.full((60, 80, 3), 100, np.uint8), region, mouth.copy(), 100.0)
    mixed = Compositor(crossfade_mouth=crossfade_mouth).mix(new, old, 0.5).patch
    assert mixed[2, 2, 0] == 150                                  # the skin dissolves either way
    assert mixed[30, 40, 0] == (150 if crossfade_mouth else 200)  # the mouth: only the new one, unless asked


@pytest.mark.parametrize("gaps,poses,want,pose,expected", [
    ([0.1, 0.3, 0.5], [(0, 0)] * 3, 0.25, (0, 0), 1),              # the narrowest wide enough: least squeezed
    ([0.1, 0.3, 0.5], [(0, 0), (25, 0), (0, 0)], 0.25, (0, 0), 2),  # ... unless it is turned away
    ([0.1, 0.3, 0.5], [(0, 0), (25, 0), (0, 0)], 0.25, (25, 0), 1),
    ([0.1, 0.2], [(0, 0)] * 2, 0.6, (0, 0), 1),                     # none so wide: the widest
    ([], [], 0.3, (0, 0), -1),
])
def test_the_inner_mouth_is_borrowed_from_a_wide_enough_exemplar_of_the_same_pose(gaps, poses, want, pose, expected):
    from tasks.lipsync.exemplar import choose_donor

    assert choose_donor(np.array(gaps), np.array(poses, float).reshape(-1, 2), want, pose, 10.0, 0.2) == expected


def mouth_frame(landmarks: np.ndarray, inside: tuple[int, int, int]) -> np.ndarray:
    """A grey frame with red lips and the inner mouth (inside landmarks 60-67) in colour `inside`."""
    import cv2

    frame = np.full((500, 700, 3), 128, np.uint8)
    cv2.fillPoly(frame, [np.round(landmarks[48:60]).astype(np.int32)], (40, 40, 200))
    cv2.fillPoly(frame, [np.round(landmarks[60:68]).astype(np.int32)], inside)
    return frame


@pytest.mark.parametrize("borrow,donor_visibility,expected_donor", [
    (0.02, 1.0, 1),      # opened 0.15 beyond its own: the wide exemplar's teeth fill the lips
    (None, 1.0, -1),     # off: the narrow one's own midline, stretched and shaded
    (0.02, 0.6, -1),     # the wide one had something across its mouth: never a donor
])
def test_lips_torn_open_show_the_inner_mouth_of_a_wider_exemplar(borrow, donor_visibility, expected_donor):
    from tasks.lipsync.exemplar import ExemplarGenerator

    generator = ExemplarGenerator(min_bank=1, adjust_limit=0.2, borrow_inner=borrow)
    narrow, wide = face(0.05), face(0.25)
    bank = generator.new_bank(0, np.stack([narrow, wide]), RANGES)
    bank.add(mouth_frame(narrow, (20, 20, 20)), narrow, (0, 0, 0), 0, 0)
    bank.add(mouth_frame(wide, (235, 235, 235)), wide, (0, 0, 0), 50, 1, visibility=donor_visibility)
    generator.finish(bank)
    target = np.array([0.2 / 0.4, 0.5, 0.5])
    rendered = generator.render(bank, 0, (500, 700), face(0.2), target)
    assert rendered.tear == pytest.approx(0.15, abs=1e-6) and rendered.inner_from == expected_donor
    x0, y0 = rendered.roi[:2]
    centre = face(0.2)[[61, 62, 63, 65, 66, 67]].mean(0).round().astype(int) - (x0, y0)
    middle = rendered.patch[centre[1] - 3:centre[1] + 4, centre[0] - 10:centre[0] + 11].astype(float).mean()
    lips = rendered.patch[int(face(0.2)[48, 1]) - y0 - 11, centre[0]]   # the upper lip, raised 0.35 of 15 px
    assert (middle > 180) == (expected_donor >= 0)          # the donor's white teeth, not a dark band
    assert lips[2] > 150 and lips[0] < 90                   # the lips stay the rendered exemplar's (red)


@pytest.mark.parametrize("lips_colour,covered,expect_moved", [
    (True, False, True),      # the new lips take the current face's lip colour
    (False, False, False),    # off: the exemplar's own (after the skin's colour match)
    (True, True, False),      # the face's lips hidden: nothing to take the colour from yet
])
def test_the_new_lips_take_the_colour_of_the_faces_own(lips_colour, covered, expect_moved):
    import cv2

    from tasks.lipsync.composite import Compositor
    from tasks.lipsync.core import lips_ring
    from tasks.lipsync.exemplar import Rendered

    lm = face(0.1)
    frame = np.full((500, 700, 3), 128, np.uint8)
    cv2.fillPoly(frame, [np.round(lm[48:60]).astype(np.int32)], (60, 60, 210))       # her lips in this frame
    patch = np.full((500, 700, 3), 128, np.uint8)
    cv2.fillPoly(patch, [np.round(lm[48:60]).astype(np.int32)], (40, 30, 140))       # the exemplar's, darker
    region = np.zeros((500, 700), bool)
    region[150:450, 150:450] = True
    mouth = lips_ring(lm[48:68], region.shape, 0)
    rendered = Rendered((0, 0, 700, 500), patch, region, mouth, 100.0, lips=lm[48:68], source_lips=lm[48:68])
    hidden = np.zeros((500, 700), bool)
    if covered:
        hidden[250:320, 200:290] = True        # a hand over the left half of her lips
    pixels, alpha = Compositor(lips_colour=lips_colour).blend(frame, rendered, 1.0, hidden if covered else None, 0)
    lips = lips_ring(lm[48:68], region.shape)
    lips[:, :310] = False                      # the right half, never covered
    got = np.median(pixels[lips].astype(float), axis=0)
    assert (np.abs(got - (60, 60, 210)).max() <= 4) == expect_moved
    assert np.array_equal(pixels[160, 160], frame[160, 160])     # the skin far from the lips as it was


def test_a_sliver_triangle_does_not_scatter_pixels_from_elsewhere():
    """A triangle that is a line in the output (a torn mesh's closed midline, a lip corner squeezed
    flat) still rasterises to a line of pixels, and its near-singular affine sent them anywhere in the
    source: speckles across the teeth. It is left to its neighbours."""
    from tasks.lipsync.warp import piecewise_affine

    image = np.zeros((100, 100, 3), np.uint8)
    image[90:] = 255
    corners = np.array([[0, 0], [99, 0], [99, 99], [0, 99]], float)
    sliver_dst = np.array([[20, 40], [80, 60], [50, 50.2]])     # a slanted line, 0.2 px off it
    sliver_src = np.array([[20, 40], [80, 60], [50, 95]])       # a large triangle reaching the bright rows
    src, dst = np.vstack([corners, sliver_src]), np.vstack([corners, sliver_dst])
    tris = np.array([[0, 1, 2], [0, 2, 3], [4, 5, 6]])
    warped, covered = piecewise_affine(image, src, dst, (0, 0, 100, 100), tris, interpolation=2)
    assert covered.all() and np.array_equal(warped, image)      # the identity mesh's pixels, all of them
