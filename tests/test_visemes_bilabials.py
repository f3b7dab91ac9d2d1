"""The synthesizer's /p b m/ moved onto its own audio's releases (tasks/visemes/bilabials.py), on
synthetic audio whose closure is known."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from tasks.visemes.align import KokoroAligner
from tasks.visemes.bilabials import BilabialReleases, snap_bilabials, with_neighbours
from tasks.visemes.coarticulation import TimedPhone

RATE = 16_000
ON = BilabialReleases(enabled=True)
CLOSURE = (0.50, 0.58)  # silence from 0.50, the burst at 0.58


def speech(closure: tuple[float, float] | None = CLOSURE, seconds: float = 1.2) -> np.ndarray:
    """A 120 Hz voiced sound with, at `closure`, near silence and a 10 ms burst into the vowel."""
    t = np.arange(int(seconds * RATE)) / RATE
    samples = 0.1 * sum(np.sin(2 * np.pi * 120 * k * t + k) / k for k in range(1, 30))
    samples = samples + 0.002 * np.random.default_rng(0).standard_normal(len(t))
    if closure is not None:
        rng = np.random.default_rng(1)
        a, b = (int(x * RATE) for x in closure)
        samples[a:b] = 1e-4 * rng.standard_normal(b - a)
        samples[b:b + 160] = 0.3 * rng.standard_normal(160)
    return samples


def phones(stop: tuple[float, float], symbol: str = "p") -> list[TimedPhone]:
    """'a', the bilabial at `stop`, 'o': touching, as the synthesizer's durations tile the speech."""
    s, e = stop
    return [TimedPhone(0.3, s, "a", "AA", "0"), TimedPhone(s, e, symbol, "PP", "1"), TimedPhone(e, e + 0.1, "o", "O", "1")]


def test_a_stop_ending_before_the_burst_moves_onto_it_and_its_neighbours_follow():
    out, records = snap_bilabials(phones((0.50, 0.55)), speech(), RATE, ON)  # ends 30 ms before the burst
    assert len(out) == 3 and records[0]["after"] is not None
    assert out[1].end == pytest.approx(CLOSURE[1], abs=0.006)   # released at the burst
    assert out[1].start == pytest.approx(CLOSURE[0], abs=0.011)  # shut from the silence's start
    assert out[0].end == out[1].start and out[2].start == out[1].end  # the vowel starts at the release
    assert out[2].end == pytest.approx(0.65)  # the vowel's own end stays


@pytest.mark.parametrize("stop, audio", [
    ((0.40, 0.48), speech()),      # released 100 ms after the phone's end: outside the window
    ((0.50, 0.55), speech(None)),  # no closure in the audio
])
def test_a_stop_keeps_its_time_where_the_audio_shows_no_release_near_it(stop, audio):
    before = phones(stop)
    out, records = snap_bilabials(before, audio, RATE, ON)
    assert out == before and records[0]["after"] is None


def test_off_changes_nothing():
    before = phones((0.50, 0.55))
    assert snap_bilabials(before, speech(), RATE, BilabialReleases()) == (before, [])


def test_neighbours_keep_their_minimum_and_a_squeezed_bilabial_is_left_alone():
    before = phones((0.50, 0.55))
    held = with_neighbours(before, 1, 0.31, 0.66, 0.02)
    assert held[0].end == pytest.approx(0.32) and held[2].start == pytest.approx(0.63)
    assert with_neighbours(before, 1, 0.64, 0.70, 0.02) is None  # the vowel after would vanish


def test_conf_section_builds_the_kokoro_replay_settings():
    conf = yaml.safe_load((Path(__file__).parents[1] / "conf" / "visemes" / "default.yaml").read_text())
    settings = KokoroAligner(**conf["aligner"]["kokoro"]).bilabial_releases
    assert settings.stops == ("p", "b") and settings.nasals == ("m",)
    assert 0.0 < settings.window_s <= 0.1

