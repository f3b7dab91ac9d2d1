"""The measure's /p b/ snapped onto the audio's own closure and burst (tasks/evaluate/stops.py),
on synthetic audio whose closure is known."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml

from tasks.evaluate import lipsync as ls
from tasks.evaluate.stops import NasalSnapping, StopSnapping, snap_nasals, snap_stops
from tasks.visemes.releases import voice_onset
from tasks.visemes.coarticulation import TimedPhone

RATE = 16_000
ON = StopSnapping(enabled=True)
CLOSURE = (0.50, 0.58)  # silence, then a burst into the vowel


def vowel(seconds: float, seed: int = 0) -> np.ndarray:
    """A voiced sound: harmonics of 120 Hz falling 1/k, a little noise."""
    t = np.arange(int(seconds * RATE)) / RATE
    wave = sum(np.sin(2 * np.pi * 120 * k * t + k) / k for k in range(1, 30))
    return 0.1 * wave + 0.002 * np.random.default_rng(seed).standard_normal(len(t))


def speech(closure: tuple[float, float] | None = CLOSURE, after: str = "vowel", seconds: float = 1.2) -> np.ndarray:
    """A vowel with, at `closure`, near silence and then a 10 ms burst into `after` (a vowel, or
    hiss: a pause before a fricative)."""
    samples = vowel(seconds)
    if closure is None:
        return samples
    rng = np.random.default_rng(1)
    a, b = (int(x * RATE) for x in closure)
    samples[a:b] = 1e-4 * rng.standard_normal(b - a)
    samples[b:b + 160] = 0.3 * rng.standard_normal(160)  # the burst
    if after == "hiss":
        samples[b + 160:b + 160 + int(0.15 * RATE)] = 0.3 * rng.standard_normal(int(0.15 * RATE))
    return samples


def word(stop_at: tuple[float, float], symbol: str = "p") -> list[TimedPhone]:
    """'ola' before, then a word of three phones: the stop at `stop_at`, a vowel, 'r'."""
    s, e = stop_at
    return [TimedPhone(0.2, 0.3, "o", "O", "0:ola"), TimedPhone(0.3, s, "l", "L", "0:ola"),
            TimedPhone(s, e, symbol, "PP", "1:por"), TimedPhone(e, e + 0.08, "o", "O", "1:por"),
            TimedPhone(e + 0.08, e + 0.14, "ɾ", "R", "1:por")]


@pytest.mark.parametrize("stop_at, symbol, audio, snapped", [
    ((0.40, 0.45), "p", speech(), True),     # Whisper 130 ms early: moved onto the closure
    ((0.58, 0.64), "b", speech(), True),     # late: moved back
    ((0.40, 0.45), "p", speech(None), False),  # no silence anywhere: the ASR time stays
    ((0.30, 0.35), "p", speech(), False),    # the closure's release 230 ms away: outside the window
    ((0.40, 0.45), "m", speech(), False),    # a nasal has no silence of its own: never moved
    ((0.40, 0.45), "p", speech(after="hiss"), False),  # silence then hiss: a pause before /s/, not a burst
])
def test_snap_stops_moves_a_stop_onto_the_closure_within_the_window(stop_at, symbol, audio, snapped):
    phones = word(stop_at, symbol)
    out, moves = snap_stops(phones, audio, RATE, ON)
    stop = out[2]
    if snapped:
        assert stop.end == pytest.approx(CLOSURE[1], abs=0.01)
        assert stop.start == pytest.approx(CLOSURE[0], abs=0.015)  # within 3 energy frames
        assert moves[0]["snapped"] == [round(stop.start, 3), round(stop.end, 3)]
        # the rest of the word follows the stop: its vowel starts at the release
        assert out[3].start == pytest.approx(stop.end) and out[3].end > out[3].start and out[4].start >= out[3].end
    else:
        assert out == phones
        assert all(m["snapped"] is None for m in moves)
    assert out[:2] == phones[:2]  # the word before is not touched


def test_snapping_off_changes_nothing():
    phones = word((0.40, 0.45))
    assert snap_stops(phones, speech(), RATE, StopSnapping()) == (phones, [])


def test_voice_onset_finds_the_vowel_not_the_silence():
    audio = speech()
    assert voice_onset(audio, RATE, 0.51, 0.05, 0.5) is None          # inside the closure
    assert voice_onset(audio, RATE, 0.59, 0.05, 0.5) == pytest.approx(0.59, abs=0.01)
    assert voice_onset(speech(after="hiss"), RATE, 0.59, 0.08, 0.5) is None


def test_conf_settings_are_the_snapping_settings():
    conf = yaml.safe_load((Path(__file__).resolve().parent.parent / "conf" / "evaluate" / "default.yaml").read_text())
    settings = StopSnapping.of(conf["lipsync_stops"])
    assert settings.phones == ("p", "b") and 0 < settings.window_s <= 0.25
    assert settings.nasals.phones == ("m",) and settings.nasals.high_hz[0] >= settings.nasals.low_hz[1]
    assert StopSnapping.of({"enabled": True}).nasals == NasalSnapping()  # off unless configured


def test_score_records_what_it_snapped():
    # the measure end to end on arrays: a mouth shut exactly during the closure counts the /p/
    # only when it is snapped there
    fps = 25.0
    opening = np.full(30, 0.3) + 0.01 * np.sin(np.arange(30))
    opening[12:15] = 0.0  # frames at 0.48, 0.52, 0.56
    phones = word((0.30, 0.40))
    audio = speech()

    class Aligner:
        def align_audio(self, wav, table, words):
            return phones

    mouth = ls.MouthTrack(fps, opening)
    words = [(0.2, 0.35, "ola"), (0.35, 0.8, "por")]
    plain = ls.score(mouth, audio, RATE, "es", aligner=Aligner(), words=words)
    snapped = ls.score(mouth, audio, RATE, "es", aligner=Aligner(), words=words, stops={"enabled": True})
    assert plain.closure_rate == 0.0 and snapped.closure_rate == 1.0
    assert snapped.extra["stop_snaps"][0]["snapped"] is not None and "stop_snaps" not in plain.extra


def weak_burst_speech(step_at: float | None = None) -> np.ndarray:
    """A vowel; silence (noise 2e-6) over 0.44-0.58; at 0.58 a 10 ms burst 40 dB under the vowel
    (24 dB in the pre-emphasised band), still 'silent' by the closure's dip_db; silence again to
    0.60, then the vowel. With `step_at`, the closure's background steps up 28 dB there (still
    23 dB under the burst)."""
    samples = vowel(1.2)
    rng = np.random.default_rng(2)
    a, burst, vowel_at = int(0.44 * RATE), int(0.58 * RATE), int(0.60 * RATE)
    samples[a:vowel_at] = 2e-6 * rng.standard_normal(vowel_at - a)
    if step_at is not None:
        step = int(step_at * RATE)
        samples[step:burst] = 5e-5 * rng.standard_normal(burst - step)
    samples[burst:burst + 160] = 7e-4 * rng.standard_normal(160)
    return samples


@pytest.mark.parametrize("step_at", [None, 0.50])
def test_the_snapped_stop_ends_at_the_burst_not_at_the_vowel(step_at):
    # the lips open at the burst: the phone ends there even where the silence (dip_db under the
    # local level) lasts until the vowel; a step of the background inside the closure is no burst
    phones = word((0.40, 0.45))
    audio = weak_burst_speech(step_at)
    out, moves = snap_stops(phones, audio, RATE, ON)
    assert out[2].end == pytest.approx(0.58, abs=0.004)
    assert out[2].start == pytest.approx(0.44, abs=0.015)  # within 3 energy frames
    # the silence's end (no burst criterion: the release as the closure's search found it) is the vowel
    silence_end, _ = snap_stops(phones, audio, RATE, replace(ON, burst_rise_db=1e3))
    assert silence_end[2].end == pytest.approx(0.60, abs=0.006)


NASALS = StopSnapping(enabled=True, nasals=NasalSnapping(enabled=True))
MURMUR = (0.50, 0.58)


def harmonics(seconds: float, amplitudes) -> np.ndarray:
    """A voiced sound on 120 Hz whose k-th harmonic has amplitude amplitudes(k * 120 Hz)."""
    t = np.arange(int(seconds * RATE)) / RATE
    return sum(amplitudes(120.0 * k) * np.sin(2 * np.pi * 120 * k * t + k) for k in range(1, 30))


def murmur_speech(murmur: tuple[float, float] | None = MURMUR, seconds: float = 1.2) -> np.ndarray:
    """A vowel (harmonics falling 1/k) with, at `murmur`, a nasal murmur: the same voice with its
    harmonics above 400 Hz 30 dB down (under the high band, from 500 Hz, by more than the window's
    leakage) and those below as loud as the vowel's."""
    samples = 0.1 * harmonics(seconds, lambda f: 120.0 / f)
    if murmur is not None:
        a, b = (int(x * RATE) for x in murmur)
        nasal = 0.1 * harmonics(seconds, lambda f: 120.0 / f * (1.0 if f < 400 else 0.03))
        samples[a:b] = nasal[a:b]
    return samples + 0.001 * np.random.default_rng(3).standard_normal(len(samples))


@pytest.mark.parametrize("nasal_at, audio, snapped", [
    ((0.40, 0.45), murmur_speech(), True),          # Whisper 130 ms early: moved onto the murmur
    ((0.60, 0.65), murmur_speech(), True),          # late: moved back
    ((0.40, 0.45), murmur_speech(None), False),     # a vowel all along: no murmur, the ASR time stays
    ((0.30, 0.35), murmur_speech(), False),         # the murmur's release 230 ms away: outside the window
    ((0.40, 0.45), speech(), False),                # a silent closure is not a (voiced) murmur
])
def test_snap_nasals_moves_an_m_onto_the_murmur_within_the_window(nasal_at, audio, snapped):
    phones = word(nasal_at, "m")
    out, moves = snap_stops(phones, audio, RATE, NASALS)
    nasal = out[2]
    assert [m["symbol"] for m in moves] == ["m"]
    if snapped:
        assert nasal.end == pytest.approx(MURMUR[1], abs=0.011)
        # the snapped phone covers the murmur's end, at most max_murmur_s of it
        assert nasal.start == pytest.approx(MURMUR[1] - NASALS.nasals.max_murmur_s, abs=0.011)
        assert moves[0]["snapped"] == [round(nasal.start, 3), round(nasal.end, 3)]
        assert out[3].start == pytest.approx(nasal.end)  # the vowel after it follows
    else:
        assert out == phones and moves[0]["snapped"] is None


@pytest.mark.parametrize("bilabial, other, other_viseme, audio, settings", [
    ("p", "t", "DD", speech, ON),              # a /t/ keeps its own closure
    ("m", "n", "NN", murmur_speech, NASALS),   # an /n/ keeps its own murmur
])
def test_a_release_nearer_another_closing_phone_stays_with_it(bilabial, other, other_viseme, audio, settings):
    # the ASR has the other phone ending at the release: the bilabial 130 ms before it does not take it
    word_id = f"0:{bilabial}a{other}a"
    phones = [TimedPhone(0.40, 0.45, bilabial, "PP", word_id), TimedPhone(0.45, 0.52, "a", "AA", word_id),
              TimedPhone(0.52, 0.58, other, other_viseme, word_id), TimedPhone(0.58, 0.66, "a", "AA", word_id)]
    out, moves = snap_stops(phones, audio(), RATE, settings)
    assert out == phones and moves[0]["snapped"] is None


def test_nasal_snapping_off_changes_nothing():
    phones = word((0.40, 0.45), "m")
    audio = murmur_speech()
    assert snap_stops(phones, audio, RATE, ON) == (phones, [])  # the stops on, the nasals not
    assert snap_nasals(phones, audio, RATE, NasalSnapping()) == (phones, [])
    # the section's switch turns the nasals off too
    assert snap_stops(phones, audio, RATE, replace(NASALS, enabled=False)) == (phones, [])
