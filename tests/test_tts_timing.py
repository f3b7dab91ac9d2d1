"""Timing fit, ducking and mixing of the tts stage (pure logic, no models)."""
from __future__ import annotations

import numpy as np
import pytest

from tasks.artifacts import TranslatedSegment
from tasks.tts import Pace, Timing, active_rms, aimed_lengths, duck_envelope, fit_to_slot, mix, slots, speed_for, synthesize_shortened, synthesize_to_fit


def seg(i, start, end, text="x"):
    return TranslatedSegment(i, start, end, "S0", text, text)


@pytest.mark.parametrize("segments,duration,expected", [
    ([seg(0, 0.5, 2.0)], 5.0, [(0.5, 5.0)]),
    ([seg(0, 0.5, 2.0), seg(1, 3.0, 4.0)], 5.0, [(0.5, 3.0), (3.0, 5.0)]),
    ([seg(1, 3.0, 4.0), seg(0, 0.5, 2.0)], 3.5, [(0.5, 3.0), (3.0, 3.5)]),
    ([seg(0, 6.0, 7.0)], 5.0, [(6.0, 6.0)]),
])
def test_slots_end_at_the_next_segment_or_the_video(segments, duration, expected):
    assert slots(tuple(segments), duration) == expected


@pytest.mark.parametrize("segments,duration,free_after,expected", [
    ([seg(0, 0.5, 2.0)], 5.0, 0.25, {0: 1.75}),                              # silence after: a quarter second of it
    ([seg(0, 0.5, 2.0), seg(1, 2.1, 4.0)], 5.0, 0.25, {0: 1.6, 1: 2.15}),    # only up to the next line's start
    ([seg(1, 2.0, 4.0), seg(0, 0.5, 2.0)], 4.0, 0.25, {0: 1.5, 1: 2.0}),     # nothing after either: their own length
    ([seg(0, 0.5, 6.0)], 5.0, 0.25, {0: 4.5}),                               # running past the video: cut at its end
    ([seg(0, 0.5, 2.0), seg(1, 3.0, 4.0)], 5.0, 0.0, {0: 1.5, 1: 1.0}),      # none allowed
])
def test_a_synthesis_aims_at_its_segment_and_the_silence_it_may_run_into(segments, duration, free_after, expected):
    assert aimed_lengths(tuple(segments), duration, free_after) == pytest.approx(expected)


@pytest.mark.parametrize("natural,slot,cap,expected", [
    (1.0, 2.0, 1.35, 1.0),
    (2.0, 2.0, 1.35, 1.0),
    (2.4, 2.0, 1.35, 1.2),
    (4.0, 2.0, 1.35, 1.35),
    (1.0, 0.0, 1.35, 1.0),
])
def test_speed_fits_the_slot_within_the_cap(natural, slot, cap, expected):
    assert speed_for(natural, slot, cap) == pytest.approx(expected)


def test_fit_to_slot_cuts_with_a_fade_and_reports_the_overrun(tone):
    samples = tone(3.0)
    cut, overrun = fit_to_slot(samples, 16000, 2.0, 0.03)
    assert len(cut) == 32000
    assert overrun == pytest.approx(1.0)
    assert abs(cut[-1]) < 1e-3 < np.max(np.abs(cut[-2000:-600]))
    same, none = fit_to_slot(samples, 16000, 5.0, 0.03)
    assert none == 0.0 and same is samples


def test_duck_envelope_is_low_inside_speech_and_one_outside():
    timing = Timing(duck_db=-30, duck_ramp_s=0.05, duck_pad_s=0.0)
    env = duck_envelope(16000 * 4, 16000, [(1.0, 2.0)], timing)
    assert env[0] == 1.0 and env[-1] == 1.0
    assert env[int(1.5 * 16000)] == pytest.approx(10 ** (-30 / 20), rel=1e-4)
    assert np.all(np.diff(env[15000:17000]) <= 1e-7), "ramp down is monotonic"


def test_mix_levels_the_dub_to_the_original_speech_and_ducks_it(tone):
    rate = 16000
    original = np.stack([tone(4.0, rate, 200) * 0.5] * 2, axis=1)
    dub = np.zeros(len(original), dtype=np.float32)
    dub[rate:2 * rate] = tone(1.0, rate, 300) * 0.05
    spans = [(1.0, 2.0)]
    out = mix(original, rate, dub, spans, Timing(duck_db=-40, duck_pad_s=0.0), spans)
    assert out.shape == original.shape
    inside = active_rms(out.mean(axis=1), rate, [(1.2, 1.8)])
    target = active_rms(original.mean(axis=1), rate, spans)
    assert inside == pytest.approx(target, rel=0.05)
    np.testing.assert_allclose(out[: rate // 2], original[: rate // 2], atol=1e-6)


def test_under_the_original_speech_its_background_plays_instead_of_the_ducked_track(tone):
    rate = 16000
    original = np.stack([tone(4.0, rate, 200) * 0.5] * 2, axis=1)
    background = np.stack([tone(4.0, rate, 500) * 0.2, tone(4.0, rate, 700) * 0.2], axis=1)
    dub = np.zeros(len(original), dtype=np.float32)
    spans = [(1.0, 2.0)]
    timing = Timing(duck_db=-40, duck_ramp_s=0.05, duck_pad_s=0.0)
    out = mix(original, rate, dub, spans, timing, spans, background)
    np.testing.assert_allclose(out[int(1.1 * rate):int(1.9 * rate)], background[int(1.1 * rate):int(1.9 * rate)], atol=1e-6)
    np.testing.assert_allclose(out[:rate], original[:rate], atol=1e-6)
    np.testing.assert_allclose(out[int(2.1 * rate):], original[int(2.1 * rate):], atol=1e-6)
    ramp = out[rate:int(1.05 * rate)]  # a crossfade: every sample between the two tracks
    low = np.minimum(original[rate:int(1.05 * rate)], background[rate:int(1.05 * rate)]) - 1e-6
    high = np.maximum(original[rate:int(1.05 * rate)], background[rate:int(1.05 * rate)]) + 1e-6
    assert np.all((ramp >= low) & (ramp <= high))
    ducked = mix(original, rate, dub, spans, timing, spans)  # without a background: the whole track, 40 dB down
    np.testing.assert_allclose(ducked[int(1.1 * rate):int(1.9 * rate)], 0.01 * original[int(1.1 * rate):int(1.9 * rate)], atol=1e-6)


class StretchyVoice:
    """A test double whose speed control undershoots: length = words * 0.5 s / speed**0.7."""

    name, sample_rate = "stretchy", 1000

    def __init__(self):
        self.calls = []

    def synthesize(self, text, speed=1.0):
        self.calls.append(speed)
        return np.ones(int(len(text.split()) * 500 / speed ** 0.7), dtype=np.float32)


@pytest.mark.parametrize("words,slot,cap,fits", [
    (4, 3.0, 1.5, True),     # fits at normal speed: one call
    (4, 1.8, 1.5, True),     # needs ~1.16x, which the undershooting control reaches on a retry
    (8, 2.0, 1.5, False),    # needs 2x: capped at 1.5, reported as overrun by fit_to_slot
])
def test_synthesize_to_fit_corrects_the_speed_from_measured_length(words, slot, cap, fits):
    voice = StretchyVoice()
    speech, speed = synthesize_to_fit(voice, " ".join(["w"] * words), slot, cap)
    assert (len(speech) / voice.sample_rate <= slot) == fits
    assert 1.0 <= speed <= cap
    if words * 0.5 <= slot:
        assert voice.calls == [1.0]


@pytest.mark.parametrize("slot, tolerance, calls", [
    (1.95, 0.0, 3),    # 2.6% too long at its own pace: said again faster, twice (the control undershoots)
    (1.95, 0.04, 1),   # within the tolerance: kept, the timing fit takes the rest
    (1.8, 0.04, 2),    # 11% too long: faster; 1.12x comes out 2.6% long and is kept ...
    (1.8, 0.0, 4),     # ... where without a tolerance it is said twice more
])
def test_a_synthesis_within_the_slot_tolerance_is_not_said_again(slot, tolerance, calls):
    voice = StretchyVoice()
    speech, _, _ = synthesize_shortened(voice, "w w w w", slot, Pace(1.5, slot_tolerance=tolerance))
    assert len(voice.calls) == calls and len(speech) / voice.sample_rate <= slot * (1 + tolerance)


def test_timing_hands_its_pace_to_every_synthesis():
    assert Timing(max_speed=1.3, keep_pause_s=0.1, slot_tolerance=0.04).pace == Pace(1.3, 0.1, 0.04)


# --------------------------------------------------------------------------- stretch and borrowing

from tasks.tts.timing import SegmentTiming, TimingReport, plan_fit  # noqa: E402


@pytest.mark.parametrize("natural, latest, free_after, expected_scale, expected_after", [
    (2.2, 5.0, 0.25, 1.0, 0.2),      # 0.2 s too long: runs into the silence after, no stretch
    (2.5, 5.0, 0.25, 0.9, 0.25),     # 0.5 s too long: 0.25 s free, the rest by stretching
    (2.5, 3.1, 0.25, 0.84, 0.1),     # only 0.1 s of silence before the next segment
    (1.8, 5.0, 0.25, 1.1111, 0.0),   # too short: slowed to the original length, not past it
])
def test_a_too_long_dub_uses_free_silence_before_stretching(natural, latest, free_after, expected_scale, expected_after):
    fit = plan_fit(natural, 1.0, 3.0, 0.0, latest, 0.8, 1.25, 0.08, free_after_s=free_after)
    assert fit.time_scale == pytest.approx(expected_scale, abs=1e-3)
    assert fit.borrowed_after == pytest.approx(expected_after, abs=1e-3)
    assert fit.overrun == 0.0


@pytest.mark.parametrize("natural, start, end, earliest, latest, expected", [
    # natural, original [start, end], previous dub end, next segment start -> start, scale, length, before, after, overrun
    (2.0, 1.0, 3.0, 0.0, 5.0, (1.0, 1.0, 2.0, 0.0, 0.0, 0.0)),       # fits as it is
    (2.2, 1.0, 3.0, 0.0, 5.0, (1.0, 0.9091, 2.0, 0.0, 0.0, 0.0)),    # stretched faster to the original length
    (1.8, 1.0, 3.0, 0.0, 5.0, (1.0, 1.1111, 2.0, 0.0, 0.0, 0.0)),    # stretched slower
    (1.0, 1.0, 3.0, 0.0, 5.0, (1.0, 1.25, 1.25, 0.0, 0.0, 0.0)),     # slower only up to the limit
    (3.0, 1.0, 3.0, 0.0, 5.0, (1.0, 0.8, 2.4, 0.0, 0.4, 0.0)),       # faster up to the limit, then silence after
    (3.0, 1.0, 3.0, 0.0, 3.2, (0.92, 0.8, 2.28, 0.08, 0.2, 0.12)),   # next segment at 3.2: borrow before, cut the rest
    (3.0, 1.0, 3.0, 0.97, 3.2, (0.97, 0.8, 2.23, 0.03, 0.2, 0.17)),  # never over the previous dub
    (3.0, 1.0, 3.0, 0.0, 3.0, (0.92, 0.8, 2.08, 0.08, 0.0, 0.32)),   # next speaker right at the end
    (0.0, 1.0, 3.0, 0.0, 5.0, (1.0, 1.0, 0.0, 0.0, 0.0, 0.0)),
])
def test_plan_fit_stretches_then_borrows_then_cuts(natural, start, end, earliest, latest, expected):
    fit = plan_fit(natural, start, end, earliest, latest, 0.8, 1.25, 0.08)
    assert plan_fit(natural, start, end, earliest, latest, 0.8, 1.25, 0.08, dead_band_s=0.25).time_scale == (
        1.0 if abs(fit.time_scale * natural - natural) <= 0.25 else fit.time_scale)
    got = (fit.start, fit.time_scale, fit.length, fit.borrowed_before, fit.borrowed_after, fit.overrun)
    assert got == pytest.approx(expected, abs=1e-3)
    assert fit.end <= max(latest, start) + 1e-9          # never into the next segment
    assert fit.start >= min(start, max(earliest, start - 0.08)) - 1e-9


@pytest.mark.parametrize("latest, earliest, expected_scale, expected_overrun", [
    (5.0, 0.0, 1.0, 0.0),      # 0.05 s too long with silence after: no stretch worth making
    (3.0, 0.97, 0.9756, 0.0),  # the next line right after, 0.03 s free before: stretched to fit rather than cut
])
def test_the_stretch_dead_band_never_costs_a_cut(latest, earliest, expected_scale, expected_overrun):
    fit = plan_fit(2.05, 1.0, 3.0, earliest, latest, 0.8, 1.25, 0.08, dead_band_s=0.1)
    assert fit.time_scale == pytest.approx(expected_scale, abs=1e-3) and fit.overrun == expected_overrun


def test_timing_report_share_on_time():
    def row(start, end, original=(1.0, 2.0)):
        return SegmentTiming(0, "S0", *original, start, end, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0)

    report = TimingReport("es", 0.1, 0.3, (row(1.0, 2.0), row(1.05, 2.29), row(1.2, 2.0), row(1.0, 2.4)))
    assert report.within() == pytest.approx(0.5)
    assert report.off_time() == [report.segments[2], report.segments[3]]   # starts 0.2 s late; ends 0.4 s late
    assert TimingReport("es", 0.1, 0.3, ()).within() == 1.0


def _speech_with_pauses(rate=1000):
    loud = np.ones(300, np.float32) * 0.5
    return np.concatenate([loud, np.zeros(200, np.float32), loud, np.zeros(100, np.float32), loud, np.zeros(50, np.float32)])


def test_pauses_are_inner_silences_only():
    from tasks.tts.timing import pauses

    assert pauses(_speech_with_pauses(), 1000) == [(300, 500), (800, 900)]


@pytest.mark.parametrize("extra, cap, added", [
    (0.3, 1.0, 0.3),     # shared 2:1 between the two pauses
    (3.0, 1.0, 2.0),     # each pause grows by at most the cap
    (0.0, 1.0, 0.0),
])
def test_insert_pauses(extra, cap, added):
    from tasks.tts.timing import insert_pauses

    x = _speech_with_pauses()
    out, inserted = insert_pauses(x, 1000, extra, cap)
    got = sum(length for _, length in inserted)
    assert got == pytest.approx(added, abs=0.005)
    assert len(out) == len(x) + round(got * 1000)
    assert np.count_nonzero(out) == np.count_nonzero(x)   # only silence was added
