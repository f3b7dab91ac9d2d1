"""The lip-sync measures (issue 6) on synthetic signals whose answer is known."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from tasks.evaluate import lipsync as ls

FPS = 25.0


@dataclass
class P:  # a timed phone
    start: float
    end: float
    viseme: str


def smooth_noise(seconds: float, rate: float, seed: int, cutoff_s: float = 0.08) -> np.ndarray:
    """A speech-envelope-like random signal: white noise smoothed over ~`cutoff_s`."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    width = max(3, int(cutoff_s * rate))
    return np.convolve(rng.standard_normal(n + width), np.hanning(width), mode="same")[:n]


def delayed(signal: np.ndarray, rate: float, seconds: float) -> np.ndarray:
    """signal[t - seconds] (edges padded with the edge value)."""
    t = np.arange(len(signal)) / rate
    return np.interp(t - seconds, t, signal)


# ---------------------------------------------------------------- phone frames

@pytest.mark.parametrize("start, end, tolerance, expected", [
    (0.40, 0.52, 0, (10, 13)),     # frames at 0.40, 0.44, 0.48, 0.52
    (0.41, 0.435, 0, (11, 11)),    # between two frames (0.40, 0.44): the one nearest its centre
    (0.40, 0.52, 1, (9, 14)),
    (0.00, 0.03, 1, (0, 1)),       # clipped at the start
    (3.95, 4.10, 1, (98, 99)),     # clipped at the end of a 100-frame clip
])
def test_phone_frames(start, end, tolerance, expected):
    lo, hi = ls.phone_frames(start, end, FPS, 100, tolerance)
    assert (lo, hi) == expected


# ---------------------------------------------------------------- closure rate

def gap_with_closures(frames: int, closed: list[int], open_value: float = 0.3) -> np.ndarray:
    gap = np.full(frames, open_value) + 0.02 * np.sin(np.arange(frames))
    gap[closed] = 0.0
    return gap


CLOSED_FRAMES = [10, 30, 50, 70]


@pytest.mark.parametrize("shift_frames, tolerance, expected", [
    (0, 1, 1.0),    # phones on the closures
    (1, 1, 1.0),    # one frame late: inside the +-1 frame tolerance
    (-1, 1, 1.0),
    (2, 1, 0.0),    # two frames off: missed
    (1, 0, 0.0),    # no tolerance: one frame off is a miss
    (8, 1, 0.0),    # far away
])
def test_closure_rate_aligned_vs_misaligned(shift_frames, tolerance, expected):
    gap = gap_with_closures(100, CLOSED_FRAMES)
    intervals = [((f + shift_frames) / FPS - 0.01, (f + shift_frames) / FPS + 0.01) for f in CLOSED_FRAMES]
    rate, counted = ls.closure_rate(gap, FPS, intervals, threshold=0.05, tolerance=tolerance)
    assert counted == 4
    assert rate == pytest.approx(expected)


def test_closure_rate_skips_phones_without_face_and_half_hits():
    gap = gap_with_closures(100, [10, 30])
    gap[60:80] = np.nan
    intervals = [(10 / FPS, 10 / FPS), (20 / FPS, 20 / FPS), (30 / FPS, 30 / FPS), (40 / FPS, 40 / FPS), (70 / FPS, 70 / FPS)]
    rate, counted = ls.closure_rate(gap, FPS, intervals, threshold=0.05)
    assert counted == 4 and rate == pytest.approx(0.5)
    assert ls.closure_rate(gap, FPS, [], threshold=0.05) == (None, 0)


@pytest.mark.parametrize("closed_every, expected", [(50, 3 / 50), (10, 3 / 10), (5, 3 / 5)])
def test_closure_chance_is_the_closed_share_of_windows(closed_every, expected):
    # one closed frame every `closed_every` frames: a 3-frame window (+-1) catches one with p = 3 / closed_every
    gap = np.full(500, 0.3)
    gap[::closed_every] = 0.0
    intervals = [(1.0, 1.0), (5.0, 5.0), (9.0, 9.0)]
    assert ls.closure_chance(gap, FPS, intervals, 0.05) == pytest.approx(expected, abs=0.04)


def test_closed_threshold_is_relative_to_the_speaker_and_capped():
    rng = np.random.default_rng(0)
    speaking = rng.uniform(0.0, 0.4, 1000)
    assert ls.closed_threshold(speaking, 0.2, max_closed_gap=1.0) == pytest.approx(0.02 + 0.2 * 0.36, abs=0.01)
    always_open = rng.uniform(0.3, 0.5, 1000)  # a mouth that never closes has no closed frames
    assert ls.closed_threshold(always_open, 0.2, max_closed_gap=0.08) == 0.08
    assert np.isnan(ls.closed_threshold(np.full(10, np.nan)))


# ---------------------------------------------------------------- aperture contrast

def vowel_consonant_clip(frames: int = 200):
    """Alternating 0.2 s bilabial / 0.2 s open vowel; the mouth follows with opening 0 / 0.4."""
    phones, opening = [], np.zeros(frames)
    for k, t in enumerate(np.arange(0, frames / FPS, 0.2)):
        viseme = "PP" if k % 2 == 0 else "AA"
        phones.append(P(t, t + 0.2 - 1e-6, viseme))
        lo, hi = int(round(t * FPS)), int(round((t + 0.2) * FPS))
        opening[lo:hi] = 0.0 if viseme == "PP" else 0.4
    return phones, opening


@pytest.mark.parametrize("shift_s, low, high", [
    # in phase: open vowels 0.4 above the closures, range 0.4 -> 1, less the edges of each phone,
    # where the opening interpolated between frames is half way (0.77)
    (0.0, 0.7, 0.85),
    (0.2, -0.85, -0.7),    # phones half a cycle off: contrast reversed
    (0.1, -0.25, 0.25),    # quarter cycle off: about no contrast (frames split unevenly)
])
def test_aperture_contrast(shift_s, low, high):
    phones, opening = vowel_consonant_clip()
    opens = [(p.start + shift_s, p.end + shift_s) for p in phones if p.viseme == "AA"]
    closes = [(p.start + shift_s, p.end + shift_s) for p in phones if p.viseme == "PP"]
    contrast, counted = ls.aperture_contrast(opening, FPS, opens, closes)
    assert counted > 10
    assert low <= contrast <= high


def test_aperture_contrast_needs_both_classes_and_a_moving_mouth():
    phones, opening = vowel_consonant_clip()
    opens = [(p.start, p.end) for p in phones if p.viseme == "AA"]
    assert ls.aperture_contrast(opening, FPS, opens, [])[0] is None
    assert ls.aperture_contrast(np.full(200, 0.2), FPS, opens, [(0.0, 0.2)])[0] is None


# ---------------------------------------------------------------- envelope correlation

@pytest.mark.parametrize("delay_ms", [80, -120, 0, 150, 200])
def test_sync_offset_recovers_a_known_delay(delay_ms):
    rate = ls.SYNC_RATE
    env = smooth_noise(8.0, rate, seed=1)
    mouth = delayed(env, rate, delay_ms / 1000.0)
    confidence, offset, best = ls.sync_offset(mouth, env, rate)
    assert offset == pytest.approx(delay_ms, abs=1e-6)
    assert best > 0.95
    assert confidence > 0.7


@pytest.mark.parametrize("delay_ms", [80, -40])
def test_sync_offset_from_video_frames(delay_ms):
    """A mouth seen at 25 fps, the envelope delayed by `delay_ms`: the offset within one grid step."""
    rate = ls.SYNC_RATE
    env = smooth_noise(8.0, rate, seed=2, cutoff_s=0.15)
    mouth_hi = delayed(env, rate, delay_ms / 1000.0)
    frames = mouth_hi[::4]  # 100 Hz -> 25 fps
    mouth = ls.resample_frames(frames, 25.0, rate, duration=len(env) / rate)
    _, offset, best = ls.sync_offset(mouth, env, rate)
    assert offset == pytest.approx(delay_ms, abs=10)
    assert best > 0.9


@pytest.mark.parametrize("case", ["unrelated", "shifted_500ms"])
def test_sync_confidence_is_low_without_sync(case):
    rate = ls.SYNC_RATE
    env = smooth_noise(8.0, rate, seed=3)
    mouth = smooth_noise(8.0, rate, seed=4) if case == "unrelated" else delayed(env, rate, 0.5)
    synced = ls.sync_offset(delayed(env, rate, 0.04), env, rate)[0]
    confidence, offset, _ = ls.sync_offset(mouth, env, rate)
    assert confidence < 0.25
    assert synced - confidence > 0.5


def test_sync_offset_skips_missing_face_and_flat_signals():
    rate = ls.SYNC_RATE
    env = smooth_noise(6.0, rate, seed=5)
    mouth = delayed(env, rate, 0.06)
    mouth[100:250] = np.nan
    assert ls.sync_offset(mouth, env, rate)[1] == pytest.approx(60)
    assert ls.sync_offset(np.full(600, np.nan), env, rate) == (None, None, None)
    assert ls.sync_offset(np.ones(600), env, rate) == (None, None, None)


def test_highpass_removes_slow_drift_only():
    rate = ls.SYNC_RATE
    fast = smooth_noise(6.0, rate, seed=6)
    drift = np.linspace(0, 50, len(fast))
    out = ls.highpass(fast + drift, rate, 1.0)
    inner = slice(100, -100)
    assert np.corrcoef(out[inner], fast[inner])[0, 1] > 0.9
    assert np.array_equal(ls.highpass(fast, rate, 0.0), fast)


# ---------------------------------------------------------------- audio variants and frame grids

def test_shift_and_fit_length():
    x = np.arange(1, 11, dtype=np.float32)
    assert ls.shift_audio(x, 10, 0.3).tolist() == [0, 0, 0, 1, 2, 3, 4, 5, 6, 7]
    assert ls.shift_audio(x, 10, -0.2).tolist() == [3, 4, 5, 6, 7, 8, 9, 10, 0, 0]
    assert ls.shift_audio(x, 10, 2.0).tolist() == [0] * 10
    assert ls.fit_length(x, 4).tolist() == [1, 2, 3, 4]
    assert ls.fit_length(x, 12).tolist() == list(range(1, 11)) + [0, 0]


def test_uniform_frames_fills_dropped_frames_and_keeps_constant_rate():
    times = np.array([0.0, 2, 3, 4, 6, 7, 8]) / 30.0  # 30 fps with frames 1 and 5 dropped
    values = np.arange(7.0)
    rate, grid = ls.uniform_frames(values, times, 30.0)
    assert rate == pytest.approx(30.0)
    assert grid.tolist() == [0, 0, 1, 2, 3, 3, 4, 5, 6]
    rate, same = ls.uniform_frames(values, np.arange(7) / 25.0, 25.0)
    assert rate == pytest.approx(25.0) and np.array_equal(same, values)


@pytest.mark.parametrize("phones, frames, expected", [
    ([P(0.2, 0.4, "AA")], 20, list(range(5, 11))),                     # frame k shows k / 25 s
    ([P(0.2, 0.3, "AA"), P(0.5, 0.6, "PP")], 20, list(range(5, 16))),  # a pause under 0.4 s stays speech
    ([P(0.0, 0.1, "AA"), P(0.6, 0.7, "PP")], 20, [0, 1, 2, 15, 16, 17]),  # a longer one does not
    ([], 5, []),
])
def test_speech_frames(phones, frames, expected):
    assert np.flatnonzero(ls.speech_frames(phones, FPS, frames)).tolist() == expected


@pytest.mark.parametrize("pause_gap", [0.0, 0.02, 0.15])
def test_the_closed_threshold_ignores_what_the_lips_do_in_pauses(pause_gap):
    """Speech with its own range, then a pause as long again in which the lips rest shut, slack or
    apart: the threshold read over the speech is the same, and the bilabials count the same."""
    rng = np.random.default_rng(3)
    speech = rng.uniform(0.1, 0.2, 100)                   # a small mouth ...
    speech[::10] = 0.06                                   # ... ten bilabials, its lips shut to 0.06
    opening = np.concatenate([speech, np.full(100, pause_gap)])
    phones = [P(k / FPS, (k + 1) / FPS, "AA") for k in range(100)]
    phones[::10] = [P(k / FPS, (k + 0.5) / FPS, "PP") for k in range(0, 100, 10)]
    alone = ls.closed_threshold(speech, 0.2, 0.08)
    assert ls.closed_threshold(opening, 0.2, 0.08, ls.speech_frames(phones, FPS, 200)) == pytest.approx(alone)
    out = ls.score_arrays(opening, FPS, None, phones)
    assert out["closure_rate"] == 1.0 and out["extra"]["closed_threshold"] == pytest.approx(alone)
    if pause_gap < 0.06:   # over every frame, a pause shut tighter would set "closed" below the bilabials
        assert ls.score_arrays(opening, FPS, None, phones, closed_over_speech=False)["closure_rate"] == 0.0


# ---------------------------------------------------------------- all three together

@pytest.mark.parametrize("phone_shift_s, synced", [(0.0, True), (0.5, False), (-0.5, False)])
def test_score_arrays_separates_synced_from_shifted(phone_shift_s, synced):
    """A talking mouth built from its phones (closed on bilabials, open on open vowels, driven by
    the energy envelope): the phones and envelope on time score high, shifted by 0.5 s low."""
    rng = np.random.default_rng(7)
    rate, seconds = ls.SYNC_RATE, 8.0
    phones, t = [], 0.2
    while t < seconds - 0.5:
        length = rng.uniform(0.08, 0.22)
        phones.append(P(t, t + length, rng.choice(["PP", "AA", "DD", "E", "O", "SS"])))
        t += length + rng.uniform(0.0, 0.15)
    grid = np.arange(int(seconds * rate)) / rate
    target = np.full(len(grid), 0.1)  # pauses: lips apart
    for p in phones:
        target[(grid >= p.start) & (grid < p.end)] = {"PP": 0.0, "AA": 0.4, "E": 0.3, "O": 0.3}.get(p.viseme, 0.12)
    env = np.convolve(target, np.hanning(5) / np.hanning(5).sum(), mode="same")  # audio loudness of each phone
    mouth = delayed(env, rate, 0.04)  # the mouth a little after the sound
    opening = mouth[::4]  # 25 fps
    heard = [P(p.start + phone_shift_s, p.end + phone_shift_s, p.viseme) for p in phones]
    out = ls.score_arrays(opening, FPS, delayed(env, rate, phone_shift_s), heard)
    if synced:
        assert out["closure_rate"] > 0.9 and out["closure_rate"] > out["closure_chance"] + 0.3
        assert out["aperture_contrast"] > 0.6
        assert out["sync_confidence"] > 0.5 and out["sync_offset_ms"] == pytest.approx(40, abs=10)
    else:
        assert out["closure_rate"] < out["closure_chance"] + 0.2
        assert out["aperture_contrast"] < 0.3
        assert out["sync_confidence"] < 0.3


def test_correlation_curve_windows_and_whole_clip():
    rate = ls.SYNC_RATE
    env = smooth_noise(6.0, rate, seed=8)
    mouth = delayed(env, rate, 0.05) + 0.3 * smooth_noise(6.0, rate, seed=9)
    lags = np.array([-5, 0, 5])
    whole = ls.correlation_curve(mouth, env, lags, rate, window_s=0)
    assert whole[1] == pytest.approx(np.corrcoef(mouth, env)[0, 1])
    assert whole[2] == pytest.approx(np.corrcoef(mouth[5:], env[:-5])[0, 1])
    windowed = ls.correlation_curve(mouth, env, lags, rate, window_s=2.0, hop_s=0.5)
    assert np.argmax(windowed) == 2 and np.argmax(whole) == 2
    short = ls.correlation_curve(mouth[:150], env[:150], lags, rate, window_s=2.0)  # shorter than a window
    assert short[1] == pytest.approx(np.corrcoef(mouth[:150], env[:150])[0, 1])


def test_scores_as_plain_json():
    import json

    scores = ls.LipSyncScores(closure_rate=0.123456, closure_chance=float("nan"), closure_excess=None, closures=3,
                              aperture_contrast=None, open_vowels=0, sync_confidence=0.5, sync_offset_ms=40.0,
                              sync_correlation=np.float64(0.7), face_coverage=1.0, phones=10, words=4,
                              extra={"opening_p5": np.float32(np.nan), "track": np.int64(2)})
    out = scores.as_dict()
    assert out["closure_rate"] == 0.1235 and out["closure_chance"] is None
    assert out["extra"] == {"opening_p5": None, "track": 2}
    json.dumps(out, allow_nan=False)


# ---------------------------------------------------------------- per-phone evidence and intervals

def test_closure_evidence_means_are_the_rate_and_chance():
    gap = gap_with_closures(200, [20, 60, 100, 140])
    intervals = [(f / FPS, (f + 1) / FPS) for f in (20, 60, 100, 140, 180)]  # four on closures, one not
    hits, chances = ls.closure_evidence(gap, FPS, intervals, 0.05)
    rate, counted = ls.closure_rate(gap, FPS, intervals, 0.05)
    assert len(hits) == counted == 5 and hits.mean() == pytest.approx(rate)
    assert chances.mean() == pytest.approx(ls.closure_chance(gap, FPS, intervals, 0.05), abs=0.02)


def test_bootstrap_interval_narrows_with_more_phones():
    rng = np.random.default_rng(1)
    few, many = rng.integers(0, 2, 5).astype(float), rng.integers(0, 2, 80).astype(float)
    lo_few, hi_few = ls.bootstrap_interval(np.mean, [few])
    lo_many, hi_many = ls.bootstrap_interval(np.mean, [many])
    assert lo_few <= few.mean() <= hi_few and lo_many <= many.mean() <= hi_many
    assert hi_many - lo_many < 0.6 * (hi_few - lo_few)
    assert ls.bootstrap_interval(np.mean, [few[:1]]) == (None, None)


def test_score_arrays_gives_intervals_and_ratio_interval():
    """Eight bilabials all closed and on time: the excess interval sits well above 0, and the dub
    against itself has a ratio interval around 1; against a dub that never closes, below 0.8."""
    gap = gap_with_closures(250, [20, 50, 80, 110, 140, 170, 200, 230])
    phones = [P(c / FPS - 0.02, c / FPS + 0.02, "PP") for c in (20, 50, 80, 110, 140, 170, 200, 230)]
    phones += [P((c + 12) / FPS, (c + 14) / FPS, "AA") for c in (20, 50, 80, 110, 140, 170, 200, 230)]
    extra = ls.score_arrays(gap, FPS, None, phones)["extra"]
    assert len(extra["closure_evidence"]) == 8 and extra["closure_excess_interval"][0] > 0.5
    assert ls.ratio_interval(extra, extra, "closure_excess") == pytest.approx((1.0, 1.0))
    flat = ls.score_arrays(np.full(250, 0.3) + 0.01 * np.sin(np.arange(250)), FPS, None, phones)["extra"]
    low, high = ls.ratio_interval(flat, extra, "closure_excess")
    assert high < 0.8
    assert ls.ratio_interval(flat, {}, "aperture_contrast") == (None, None)


@pytest.mark.parametrize("delay_s", [0.0, 0.08, -0.12])
def test_aperture_offset_finds_the_mouth_delay(delay_s):
    """The phones of `vowel_consonant_clip` moved earlier by `delay_s`: the mouth then follows its
    phones by `delay_s`, and the phone-read offset says so (mouth after sound > 0)."""
    phones, gap = vowel_consonant_clip()
    opens = [(p.start, p.end) for p in phones if p.viseme == "AA"]
    closes = [(p.start, p.end) for p in phones if p.viseme == "PP"]
    moved = lambda spans: [(s - delay_s, e - delay_s) for s, e in spans]
    offset, contrast = ls.aperture_offset(gap, FPS, moved(opens), moved(closes))
    assert offset == pytest.approx(1000 * delay_s, abs=20) and contrast > 0.5
    assert ls.aperture_offset(gap, FPS, [], closes) == (None, None)


def test_phone_evidence_says_where_each_bilabial_was_and_whether_it_closed(tmp_path):
    """Four bilabials, the lips shut on the first three only; one more bilabial where the face is
    missing is not counted. The plot draws them (and fails loudly on a wrong shape)."""
    from tasks.evaluate.plot import plot_lipsync

    gap = gap_with_closures(250, [20, 80, 140])
    gap[190:210] = np.nan
    centres = (20, 80, 140, 230, 200)
    phones = [P(c / FPS - 0.02, c / FPS + 0.02, "PP") for c in centres] + [P(1.0, 1.1, "AA"), P(8.0, 8.1, "AA")]
    scores = ls.score_arrays(gap, FPS, None, phones)
    hits = scores["extra"]["bilabial_hits"]
    assert [round((s + e) / 2 * FPS) for s, e, _ in hits] == [20, 80, 140, 230]
    assert [hit for *_, hit in hits] == [1, 1, 1, 0]
    assert scores["extra"]["open_vowel_spans"] == [[1.0, 1.1]]   # 8.0 s is past the video's 250 frames
    mouth = ls.MouthTrack(FPS, gap)
    result = ls.LipSyncScores(**scores, face_coverage=mouth.coverage, phones=len(phones), words=0)
    path = plot_lipsync(tmp_path / "lipsync.png", [("source", mouth, result), ("dub", mouth, result)])
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
    for offset in (14, None):   # the dub's own releases drawn, with the lips' delay or none seen
        releases = {"releases": 2, "times_s": [0.8, 3.2], "offsets_ms": [] if offset is None else [offset], "offset_ms": offset}
        drawn = plot_lipsync(tmp_path / f"lipsync_{offset}.png", [("source", mouth, result), ("dub", mouth, result)], releases)
        assert drawn.stat().st_size > path.stat().st_size     # the lines and the longer title


def test_source_reading_round_trips_through_its_artifact(tmp_path):
    """The reference stage's artifact gives back the source's track and figures: the evaluate stage
    draws and compares the source from it as if it had measured it itself (gaps to 4 places)."""
    from tasks import artifacts
    from tasks.artifacts import SourceLipSync

    gap = gap_with_closures(250, [20, 80, 140])
    gap[190:210] = np.nan
    phones = [P(c / FPS - 0.02, c / FPS + 0.02, "PP") for c in (20, 80, 140, 230)] + [P(1.0, 1.1, "AA")]
    mouth = ls.MouthTrack(FPS, gap, track=3, iod_px=61.237, visibility=0.9)
    scores = ls.LipSyncScores(**ls.score_arrays(gap, FPS, None, phones), face_coverage=mouth.coverage,
                              phones=len(phones), words=2)
    config = {"lipsync": True, "lipsync_landmarker": "dlib", "lipsync_stops": {"enabled": True, "low_hz": [80.0, 500.0]}}
    path = artifacts.write(tmp_path / "report.json", ls.source_reading(mouth, scores, "en", ls.setting_values(config)))
    reading = artifacts.read(path, SourceLipSync)
    assert reading.settings == ls.setting_values(config) != ls.setting_values({**config, "lipsync_jitter": {"shift": 0.05}})
    back_mouth, back_scores = ls.from_source_reading(reading)
    assert back_scores.as_dict() == scores.as_dict()
    assert np.isnan(back_mouth.opening[190:210]).all()
    assert np.allclose(back_mouth.opening, np.round(gap, 4), equal_nan=True)
    assert (back_mouth.fps, back_mouth.track, back_mouth.iod_px) == (FPS, 3, 61.24)


@pytest.mark.parametrize("config,landmarker,jitter,stops", [
    ({}, "dlib", None, None),
    ({"lipsync_landmarker": "mesh", "lipsync_jitter": {"shift": 0.05, "steps": 3},
      "lipsync_stops": {"enabled": True}, "lipsync_aligner": {"model": "whisper-base"}},
     "mesh", {"shift": 0.05, "steps": 3}, {"enabled": True}),
])
def test_measure_settings_read_the_evaluate_keys(config, landmarker, jitter, stops):
    aligner, reading, got_stops = ls.measure_settings(config)
    assert reading == {"equalisation": None, "landmarker": landmarker, "jitter": jitter}
    assert got_stops == stops and hasattr(aligner, "words")


def test_equalise_face_stretches_a_dim_face_and_leaves_the_rest_of_the_frame():
    from tasks.evaluate.landmarks import Equalisation, equalise_face

    rng = np.random.default_rng(0)
    gray = np.full((200, 300), 200, dtype=np.uint8)
    gray[60:140, 100:200] = rng.integers(50, 70, (80, 100))   # a dim, low-contrast face
    box = np.array([110.0, 70.0, 190.0, 130.0])                 # margin 0.25 -> x 90..210, y 55..145
    before = gray.copy()
    out = equalise_face(gray, box, Equalisation(clip_limit=4.0, tiles=2, margin=0.25))
    face = (slice(70, 130), slice(110, 190))
    assert out[face].std() > 2 * gray[face].std()
    assert np.array_equal(out[:55], gray[:55]) and np.array_equal(out[:, 210:], gray[:, 210:])
    assert np.array_equal(gray, before)  # the detector's frame is not touched
    tiny = equalise_face(gray, np.array([10.0, 10.0, 14.0, 14.0]), Equalisation(margin=0.0))
    assert tiny is gray


def test_equalised_landmarks_fit_on_the_equalised_face_and_forward_the_rest():
    from tasks.evaluate.landmarks import Equalisation, EqualisedLandmarks, equalise_face

    class Backend:
        detect_threshold = 0.0

        def __init__(self):
            self.seen = None

        def detect(self, image):
            return np.zeros((0, 5))

        def landmarks(self, gray, frame, box):
            self.seen = gray
            return np.zeros((68, 2))

    inner = Backend()
    wrapped = EqualisedLandmarks(inner, Equalisation())
    gray = np.random.default_rng(1).integers(40, 60, (120, 120)).astype(np.uint8)
    box = np.array([30.0, 30.0, 90.0, 90.0])
    wrapped.landmarks(gray, None, box)
    assert np.array_equal(inner.seen, equalise_face(gray, box, Equalisation()))
    assert not np.array_equal(inner.seen, gray)
    wrapped.detect_threshold = -0.8   # the tracker lowers it on the backend it was given
    assert inner.detect_threshold == -0.8 and wrapped.detect(gray).shape == (0, 5)


@pytest.mark.parametrize("shift, steps, expected", [
    (0.05, 3, [[-5, -2.5, 95, 47.5], [0, -2.5, 100, 47.5], [5, -2.5, 105, 47.5], [-5, 0, 95, 50], [0, 0, 100, 50],
               [5, 0, 105, 50], [-5, 2.5, 95, 52.5], [0, 2.5, 100, 52.5], [5, 2.5, 105, 52.5]]),
    (0.1, 2, [[-10, -5, 90, 45], [10, -5, 110, 45], [-10, 5, 90, 55], [10, 5, 110, 55]]),
    (0.2, 1, [[0, 0, 100, 50]]),
])
def test_jittered_boxes(shift, steps, expected):
    from tasks.evaluate.landmarks import Jitter, jittered_boxes

    boxes = jittered_boxes(np.array([0.0, 0.0, 100.0, 50.0, 0.99]), Jitter(shift, steps))
    assert np.allclose(boxes, expected)


def test_jittered_landmarks_are_the_median_fit_and_forward_the_rest():
    """A fit that lands far off from one box of nine (a cascade started off the lips) moves nothing."""
    from tasks.evaluate.landmarks import Jitter, JitteredLandmarks

    class Backend:
        detect_threshold = 0.0

        def __init__(self):
            self.boxes = []

        def landmarks(self, gray, frame, box):
            self.boxes.append(np.asarray(box))
            points = np.zeros((68, 2)) + box[0]   # follows the box ...
            if len(self.boxes) == 3:
                points[62:68, 1] += 50.0          # ... and one fit opens the lips
            return points

    inner = Backend()
    fit = JitteredLandmarks(inner, Jitter(shift=0.05, steps=3)).landmarks(None, None, np.array([100.0, 0.0, 200.0, 100.0]))
    assert len(inner.boxes) == 9 and fit.shape == (68, 2)
    assert np.allclose(fit, 100.0)                # the median box's fit; the open one is outvoted
    wrapped = JitteredLandmarks(inner, Jitter())
    wrapped.detect_threshold = -0.8
    assert inner.detect_threshold == -0.8


# ---------------------------------------------------------------- face mesh lip reading

def synthetic_face68(centre=(320.0, 240.0), iod=60.0, roll_deg=0.0) -> np.ndarray:
    """68 points: eyes (37-48) about `iod` apart and rolled by `roll_deg`, the rest spread on a box."""
    rng = np.random.default_rng(1)
    points = np.asarray(centre) + rng.uniform(-1.0, 1.0, (68, 2)) * iod
    angle = np.radians(roll_deg)
    axis = np.array([np.cos(angle), np.sin(angle)])
    points[36:42] = np.asarray(centre) - 0.5 * iod * axis + rng.normal(0, 2, (6, 2))
    points[42:48] = np.asarray(centre) + 0.5 * iod * axis + rng.normal(0, 2, (6, 2))
    return points


@pytest.mark.parametrize("roll_deg", [0.0, 12.0, -25.0])
def test_mesh_crop_levels_the_eyes_fills_the_crop_and_maps_back(roll_deg):
    from tasks.evaluate.mesh import CROP_SCALE, CROP_SIZE, crop_transform, to_frame

    face = synthetic_face68(roll_deg=roll_deg)
    transform = crop_transform(face)
    crop = face @ transform[:, :2].T + transform[:, 2]
    right_eye, left_eye = crop[36:42].mean(axis=0), crop[42:48].mean(axis=0)
    assert left_eye[1] == pytest.approx(right_eye[1], abs=1e-6) and left_eye[0] > right_eye[0]
    centre = 0.5 * (face.min(axis=0) + face.max(axis=0))
    assert centre @ transform[:, :2].T + transform[:, 2] == pytest.approx([CROP_SIZE / 2] * 2)
    extent = float((face.max(axis=0) - face.min(axis=0)).max())
    assert np.sqrt(abs(np.linalg.det(transform[:, :2]))) == pytest.approx(CROP_SIZE / (CROP_SCALE * extent))
    assert (np.abs(crop - CROP_SIZE / 2) <= CROP_SIZE / 2 + 1e-6).all()  # the whole face is inside
    with_depth = np.hstack([crop, np.full((68, 1), 10.0)])
    back = to_frame(with_depth, transform)
    assert back[:, :2] == pytest.approx(face)
    assert back[0, 2] == pytest.approx(10.0 * CROP_SCALE * extent / CROP_SIZE)  # depth in frame pixels too


def mesh_with_gap(gap: float, eye_distance: float = 100.0) -> np.ndarray:
    from tasks.evaluate.mesh import LEFT_EYE_CORNERS, LOWER_INNER_LIP, RIGHT_EYE_CORNERS, UPPER_INNER_LIP

    points = np.zeros((468, 3))
    points[list(RIGHT_EYE_CORNERS), 0] = (-eye_distance / 2 - 15, -eye_distance / 2 + 15)
    points[list(LEFT_EYE_CORNERS), 0] = (eye_distance / 2 - 15, eye_distance / 2 + 15)
    points[list(UPPER_INNER_LIP), :2] = [(-10, 80), (-5, 80), (5, 80)]
    points[list(LOWER_INNER_LIP), :2] = [(-10, 80 + gap), (-5, 80 + gap), (5, 80 + gap)]
    return points


@pytest.mark.parametrize("gap, eyes, expected", [(0.0, 100.0, 0.0), (12.0, 100.0, 0.12), (12.0, 60.0, 0.2)])
def test_mesh_opening_is_the_inner_lip_gap_over_the_eye_centre_distance(gap, eyes, expected):
    from tasks.evaluate.mesh import MeshFit, mesh_opening

    points = mesh_with_gap(gap, eyes)
    assert mesh_opening(points) == pytest.approx(expected)
    assert MeshFit(points, 1.0).opening == pytest.approx(expected)
    rotated = points[:, :2] @ np.array([[0.6, -0.8], [0.8, 0.6]]).T * 3.0  # scale and roll free
    assert mesh_opening(rotated) == pytest.approx(expected)


def test_closed_cap_follows_the_lip_reader():
    assert set(ls.MAX_CLOSED_GAP) == set(ls.LANDMARKERS)
    # a mouth that never closes: the cap decides, and it is the lip reader's own
    mouth = ls.MouthTrack(FPS, np.random.default_rng(0).uniform(0.3, 0.5, 100), landmarker="mesh")
    scores = ls.score_arrays(mouth.opening, FPS, None, [], max_closed_gap=ls.MAX_CLOSED_GAP[mouth.landmarker])
    assert scores["extra"]["closed_threshold"] == ls.MAX_CLOSED_GAP["mesh"]
    with pytest.raises(ValueError, match="unknown lip-sync landmarker"):
        ls.mouth_tracks("nowhere.mp4", ("mediapipe",))


@pytest.mark.parametrize("time, expected", [
    (0.5, "A"), (2.5, "B"),    # inside their speech
    (1.4, "A"), (1.6, "B"),    # a pause between them: the nearer one
    (9.0, "B"), (-1.0, "A"),   # after the last and before the first speech
])
def test_the_lips_read_are_those_of_the_speaker_nearest_in_time(time, expected):
    owner = ls.speaking_owner({"A": [(0.0, 1.0)], "B": [(2.0, 3.0), (4.0, 5.0)]}, np.array([time]))
    assert owner == [expected]
    assert ls.speaking_owner({}, np.array([0.0, 1.0])) == ["", ""]


def face_points(centre, iod: float = 40.0) -> np.ndarray:
    """68 points: the eye corners `iod` apart (geometry.interocular), the rest on the centre."""
    points = np.tile(np.asarray(centre, dtype=float), (68, 1))
    points[36:42] = (centre[0] - iod / 2, centre[1])
    points[42:48] = (centre[0] + iod / 2, centre[1])
    return points


def test_each_speakers_face_is_found_among_the_measures_own_tracks():
    """The measure re-detects faces with its own track ids; each speaker's face-stage track is the
    measured track at the same place on the most frames (a face elsewhere, another id, never)."""
    left, right = (100.0, 100.0), (400.0, 100.0)
    faces = {"frame": np.array([0, 0, 1, 1, 2]), "track": np.array([0, 1, 0, 1, 1]),
             "landmarks": np.stack([face_points(left), face_points(right), face_points(left), face_points(right), face_points(right)])}
    measured = {"frame": np.array([0, 0, 1, 1, 2, 2]), "track": np.array([7, 3, 7, 3, 3, -1]),
                "landmarks": np.stack([face_points(right), face_points(left), face_points(right), face_points((112, 100)),
                                       face_points(right), face_points(left)])}
    assert ls.match_tracks(measured, faces, {"A": 0, "B": 1}) == {"A": 3, "B": 7}
    assert ls.match_tracks(measured, faces, {"A": 0}, max_distance=0.1) == {"A": 3}  # frame 1 is 12 px off: 0 votes there
    assert ls.match_tracks(measured, faces, {"C": 5}) == {}


@pytest.mark.parametrize("speakers, face_tracks, expected", [
    ({"S0": 0, "S1": 1}, 2, {"S0": 0, "S1": 1}),   # each voice on its face
    ({"S0": 0, "S1": None}, 2, {"S0": 0}),        # one voice placed among two faces: that face is read
    ({"S0": 0, "S1": 0}, 2, {"S0": 0, "S1": 0}),  # one face for both voices
    ({"S0": 0, "S1": None}, 1, None),             # the only face: the largest face is read, as ever
    ({"S0": None, "S1": None}, 2, None),          # no voice placed: the largest face
])
def test_speaking_faces_say_which_face_is_whose(tmp_path, speakers, face_tracks, expected):
    from tasks.face.schema import FACE_SCHEMA, FaceTrack, FaceTracks, write_tracks

    tracks = tuple(FaceTrack(t, 0, 2, 3, ((0, 2),), 0.12) for t in range(face_tracks))
    write_tracks(tmp_path / "tracks.json", FaceTracks("v", 640, 360, 25.0, 10, "test", (), tracks, speakers))
    np.savez(tmp_path / "faces.npz", schema=np.int32(FACE_SCHEMA),
             frame=np.arange(3), track=np.array([0, 1, 1]), landmarks=np.zeros((3, 68, 2)))
    spans = {"S0": [(0.0, 1.0)], "S1": [(1.5, 2.0)]}
    speaking = ls.speaking_faces(tmp_path, spans)
    if expected is None:
        assert speaking is None
        return
    assert speaking.tracks == expected and speaking.spans == {name: spans[name] for name in expected}
    assert speaking.faces["track"].tolist() == [0, 1, 1]


def test_the_rows_read_follow_whose_face_speaks():
    """The measure's own rows (two faces on four frames at 1 fps): with two voices on two faces, each
    face while its voice is the nearest; with one voice on one face, that face on every frame."""
    frame, track = np.array([0, 0, 1, 1, 2, 2, 3, 3]), np.array([3, 7, 3, 7, 3, 7, 3, 7])
    times, spans = np.arange(4.0), {"A": [(0.0, 1.2)], "B": [(2.5, 3.0)]}
    chosen, rows = ls.rows_to_read(frame, track, times, {"A": 3, "B": 7}, spans)
    assert chosen == ls.SPEAKING_FACES and rows.tolist() == [0, 2, 5, 7]
    chosen, rows = ls.rows_to_read(frame, track, times, {"B": 7}, spans)
    assert chosen == 7 and rows.tolist() == [1, 3, 5, 7]


def syllables(seconds: float, seed: int) -> tuple[np.ndarray, float]:
    """A syllable-rate loudness (3-6 Hz bursts with pauses), sampled at 1 kHz: (series, rate)."""
    rng = np.random.default_rng(seed)
    rate = 1000.0
    t = np.arange(int(seconds * rate)) / rate
    loud = np.zeros_like(t)
    start = 0.2
    while start < seconds - 0.3:
        length = rng.uniform(0.12, 0.3)
        loud += np.exp(-0.5 * ((t - start - length / 2) / (length / 4)) ** 2) * rng.uniform(0.5, 1.0)
        start += length + rng.choice([0.02, 0.05, 0.4], p=[0.5, 0.35, 0.15])
    return loud, rate


@pytest.mark.parametrize("delay_s", [0.0, 0.08, -0.06])
def test_the_pooled_envelope_offset_finds_a_delay_of_the_mouth_behind_the_sound(delay_s):
    """Clips whose mouth opens with the loudness, `delay_s` after it: the pooled offset reads it to
    the 10 ms step, with and without the audio shifted, and a clip's curve is weighted by its length."""
    fps, audio_rate = 25.0, 8000
    curves, shifted = [], []
    for seed, seconds in enumerate((6.0, 8.0, 5.0)):
        loud, rate = syllables(seconds, seed)
        frames = np.arange(int(seconds * fps)) / fps
        opening = np.interp(frames - delay_s, np.arange(len(loud)) / rate, loud)
        noise = np.random.default_rng(seed + 10).normal(0, 1, int(seconds * audio_rate))
        samples = noise * np.interp(np.arange(len(noise)) / audio_rate, np.arange(len(loud)) / rate, loud)
        curves.append((*ls.envelope_curve(opening, fps, samples, audio_rate), seconds))
        shifted.append((*ls.envelope_curve(opening, fps, ls.shift_audio(samples, audio_rate, 0.1), audio_rate), seconds))
    assert ls.pooled_offset(curves) == pytest.approx(1000 * delay_s, abs=20)
    assert ls.pooled_offset(shifted) == pytest.approx(1000 * delay_s - 100, abs=20)   # the sound later: the mouth leads more
    assert ls.pooled_offset([]) is None


def test_the_pooled_offset_weights_each_clip_by_its_length():
    lags = np.arange(-200.0, 201.0, 10.0)
    long_clip = (lags, np.exp(-((lags - 50) / 60) ** 2), 30.0)     # peaks at +50 ms
    short_clip = (lags, np.exp(-((lags + 150) / 60) ** 2), 3.0)    # peaks at -150 ms
    assert ls.pooled_offset([long_clip, short_clip]) == 50.0
    assert ls.pooled_offset([(lags, long_clip[1], 3.0), (lags, short_clip[1], 30.0)]) == -150.0
    assert ls.pooled_offset([long_clip], max_offset_s=0.03) == 30.0   # the peak beyond reach: the edge nearest it
