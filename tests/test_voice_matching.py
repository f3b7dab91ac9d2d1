"""Voice choice and WORLD conversion: pure scoring/mapping tables plus a synthetic-signal check."""
from __future__ import annotations

import re

import numpy as np
import pytest

from tasks.speakers.schema import VoiceProfile
from tests.conftest import shared_media
from tests.voice_doubles import ToneVoice, matching_with_doubles
from tasks.tts.matching import (NoMatch, WorldMatcher, best_warp, rank_voices, equalizer_db, map_f0,
                                match_loudness, integrated_loudness, voice_distance, warp_envelope)


def profile(f0, gender, emb=(1.0, 0.0), name="x", **kw):
    return VoiceProfile(name, 3.0, tuple(emb), f0, f0 * 0.8, f0 * 1.25, float(np.log(f0)), 0.15, gender, **kw)


CANDIDATES = {"deep": profile(95, "male", (0.0, 1.0)), "mid": profile(130, "male", (0.7, 0.7)),
              "high": profile(230, "female", (1.0, 0.0))}


@pytest.mark.parametrize("source, expected", [
    (profile(100, "male", (0.0, 1.0)), "deep"),
    (profile(125, "male", (0.6, 0.8)), "mid"),
    (profile(220, "female", (0.9, 0.1)), "high"),
    (profile(160, "unknown", (1.0, 0.0)), "high"),   # no gender: pitch and timbre decide
])
def test_rank_voices(source, expected):
    assert rank_voices(source, CANDIDATES)[0] == expected


def test_gender_mismatch_costs():
    assert voice_distance(profile(150, "male"), profile(150, "female")) > voice_distance(profile(150, "male"), profile(150, "male"))


@pytest.mark.parametrize("f0, src, dst, expected_median", [
    ([100, 110, 90, 0], (np.log(100), 0.1), (np.log(200), 0.1), 200.0),   # an octave up
    ([0, 0, 0], (5.0, 0.1), (5.0, 0.1), 0.0),                              # unvoiced stays unvoiced
])
def test_map_f0(f0, src, dst, expected_median):
    out = map_f0(np.array(f0, float), *src, *dst)
    voiced = out[out > 0]
    assert (out[np.array(f0) == 0] == 0).all()
    assert (np.median(voiced) if voiced.size else 0.0) == pytest.approx(expected_median, rel=0.01)


def test_warp_envelope_moves_peak_up():
    sp = np.zeros((1, 101)) + 1e-4
    sp[0, 40] = 1.0
    assert int(np.argmax(warp_envelope(sp, 1.2)[0])) == 48


def test_best_warp_recovers_scale():
    bins = np.arange(257, dtype=float)
    own = -((bins - 60) / 15) ** 2
    target_bins = np.interp(np.clip(bins / 1.1, 0, 256), bins, own)
    grid = np.geomspace(100, 7000, 32)
    target = np.interp(grid, np.linspace(0, 8000, 257), target_bins)
    assert best_warp(own, target - target.mean(), 16000, grid) == pytest.approx(1.1, abs=0.03)


@pytest.mark.parametrize("own, target, limit, expected", [
    ([0, 0, 0, 0, 0], [1, 1, 1, 1, 1], 6, [0, 0, 0, 0, 0]),   # only the shape matters
    ([0, 0, 0, 0, 0], [-20, 0, 0, 0, 20], 6, None),
])
def test_equalizer(own, target, limit, expected):
    gains = equalizer_db(np.array(own, float), np.array(target, float), limit, smooth=1)
    assert np.abs(gains).max() <= limit
    if expected is not None:
        assert gains == pytest.approx(expected)


def _vowel(rate, f0, seconds=1.5):
    t = np.arange(int(rate * seconds)) / rate
    vibrato = f0 * (1 + 0.05 * np.sin(2 * np.pi * 3 * t))
    phase = 2 * np.pi * np.cumsum(vibrato) / rate
    y = sum(np.sin(k * phase) / k for k in range(1, 20))
    return (0.1 * y).astype(np.float32)


def test_world_matcher_moves_pitch_and_level():
    pytest.importorskip("pyworld")
    from tasks.speakers.backends import voice_profile

    rate = 16000
    target = voice_profile("S0", _vowel(rate, 200) * 2, rate, None)
    out, report = WorldMatcher().match(_vowel(rate, 110), rate, target)
    got = voice_profile("out", out, rate, None)
    assert got.median_f0 == pytest.approx(target.median_f0, rel=0.08)
    assert got.rms_db == pytest.approx(target.rms_db, abs=1.5)
    assert report["conversion"] == "world" and len(out) == int(rate * 1.5)


def test_no_match_is_identity():
    x = np.linspace(-0.1, 0.1, 100).astype(np.float32)
    y, report = NoMatch().match(x, 16000, None)
    assert (y == x).all() and report["conversion"] == "none"


def test_match_loudness_within_one_lu():
    rate = 16000
    rng = np.random.default_rng(0)
    source = (0.2 * rng.standard_normal(rate * 3)).astype(np.float32)
    output = (0.02 * rng.standard_normal(rate * 3)).astype(np.float32)
    fixed, gain = match_loudness(output, rate, source)
    assert gain > 10
    assert abs(integrated_loudness(fixed, rate) - integrated_loudness(source, rate)) < 1.0


# --------------------------------------------------------------------------- pitch-preserving stretch

from tasks.tts.stretch import frame_positions, stretch_frames  # noqa: E402


@pytest.mark.parametrize("frames, scale, count", [(100, 1.25, 125), (100, 0.8, 80), (10, 2.0, 20), (1, 3.0, 3)])
def test_frame_positions_cover_the_input(frames, scale, count):
    positions = frame_positions(frames, scale)
    assert len(positions) == count
    assert positions[0] == 0 and positions.max() <= frames - 1
    assert np.all(np.diff(positions) >= 0)


def test_stretch_frames_keeps_pitch_and_voicing():
    f0 = np.array([0, 0, 100, 110, 120, 0], float)
    sp = np.arange(6, dtype=float)[:, None] * np.ones((1, 4))
    out_f0, out_sp, out_ap = stretch_frames(f0, sp, sp.copy(), 2.0)
    assert len(out_f0) == 12 and out_sp.shape == (12, 4) and out_ap.shape == (12, 4)
    assert set(out_f0.tolist()) <= set(f0.tolist())          # no new pitch values, only repeated frames
    assert np.all(np.diff(out_sp[:, 0]) >= 0)                 # envelopes interpolated in order


def test_world_stretch_changes_length_not_pitch():
    pytest.importorskip("pyworld")
    from tasks.speakers.backends import world_features
    from tasks.speakers import f0_stats
    from tasks.tts.stretch import world_stretch

    t = np.arange(16000) / 16000
    x = (0.15 * np.sign(np.sin(2 * np.pi * 150 * t))).astype(np.float32)  # harmonic-rich, as voiced speech
    assert f0_stats(world_features(x, 16000)[0])["median"] == pytest.approx(150, rel=0.03)
    y = world_stretch(x, 16000, 1.25)
    assert len(y) == pytest.approx(20000, abs=400)
    assert f0_stats(world_features(y, 16000)[0])["median"] == pytest.approx(150, rel=0.03)


@pytest.mark.parametrize("likeness, tolerance, expected_strength", [
    # similarity of: strength 1, strength 0, unconverted -> the kept variant
    ((0.60, 0.50, 0.45), 0.0, 1.0),      # the most alike wins
    ((0.60, 0.59, 0.45), 0.02, 0.0),     # a milder one within the tolerance wins
    ((0.50, 0.55, 0.58), 0.0, -1.0),     # conversion only loses likeness: the base voice as it is
])
def test_world_matcher_keeps_the_most_alike_variant(monkeypatch, likeness, tolerance, expected_strength):
    pytest.importorskip("pyworld")
    from dataclasses import replace

    from tasks.speakers.backends import voice_profile

    rate = 16000
    target = replace(voice_profile("S0", _vowel(rate, 200) * 2, rate, None), embedding=(1.0, 0.0))
    scores = iter(likeness)  # the unconverted speech is measured once: a variant and the report's baseline
    matcher = WorldMatcher(strengths=(1.0, 0.0), select_by_similarity=True, similarity_tolerance=tolerance)
    monkeypatch.setattr(matcher, "similarities", lambda ys, r, p: [next(scores) for _ in ys])
    _, report = matcher.match(_vowel(rate, 110), rate, target)
    assert report["strength"] == expected_strength
    assert report["similarity_base"] == likeness[2]
    assert next(scores, None) is None  # one GE2E pass per variant, none more


@pytest.mark.parametrize("likeness, expected_warp", [
    # similarity of: strength 1 at the envelope-fitted warp, strength 0, warp 0.8, warp 0.7, unconverted
    ((0.50, 0.48, 0.66, 0.60, 0.45), 0.8),   # a scored warp far more alike than the fitted one wins
    ((0.65, 0.48, 0.66, 0.60, 0.45), None),  # within the tolerance: the envelope-fitted warp (milder) wins
    ((0.50, 0.48, 0.61, 0.62, 0.45), 0.8),   # between scored warps, the first listed wins a near tie
    ((0.55, 0.50, 0.565, 0.50, 0.45), None),  # no warp clearly ahead: the choice made without them
])
def test_world_matcher_scores_further_formant_warps(monkeypatch, likeness, expected_warp):
    pytest.importorskip("pyworld")
    from dataclasses import replace

    from tasks.speakers.backends import voice_profile

    rate = 16000
    target = replace(voice_profile("S0", _vowel(rate, 200) * 2, rate, None), embedding=(1.0, 0.0))
    scores = iter(likeness)
    matcher = WorldMatcher(strengths=(1.0, 0.0), select_by_similarity=True, similarity_tolerance=0.02,
                           scored_warps=(0.8, 0.7), warp_range=(0.95, 1.05))
    monkeypatch.setattr(matcher, "similarities", lambda ys, r, p: [next(scores) for _ in ys])
    _, report = matcher.match(_vowel(rate, 110), rate, target)
    assert report["strength"] == 1.0
    if expected_warp is None:
        assert 0.95 <= report["formant_warp"] <= 1.05
    else:
        assert report["formant_warp"] == expected_warp
    assert next(scores, None) is None  # one GE2E pass per variant


def test_world_matcher_without_selection_tries_no_scored_warp(monkeypatch):
    pytest.importorskip("pyworld")
    from dataclasses import replace

    from tasks.speakers.backends import voice_profile

    rate = 16000
    target = replace(voice_profile("S0", _vowel(rate, 200) * 2, rate, None), embedding=(1.0, 0.0))
    matcher = WorldMatcher(strengths=(1.0,), scored_warps=(0.7,), warp_range=(0.95, 1.05))
    monkeypatch.setattr(matcher, "similarities", lambda *a: pytest.fail("no selection, no GE2E"))
    _, report = matcher.match(_vowel(rate, 110), rate, target)
    assert 0.95 <= report["formant_warp"] <= 1.05 and "similarity" not in report


def test_speaker_texts_takes_the_longest_lines_per_speaker():
    from types import SimpleNamespace as Segment

    from tasks.tts.matching import speaker_texts

    segments = [Segment(speaker="A", text="short"), Segment(speaker="A", text="a much longer line"),
                Segment(speaker="B", text=""), Segment(speaker="B", text="hello there"), Segment(speaker="A", text="x" * 300)]
    texts = speaker_texts(segments, max_chars=100)
    assert texts == {"A": "x" * 300, "B": "hello there"}
    assert speaker_texts(segments, max_chars=400)["A"] == "x" * 300 + " a much longer line short"


@pytest.mark.parametrize("auditioned, expected", [(1, "deep"), (2, "mid"), (3, "mid")])
def test_assign_voices_auditions_the_closest_candidates(monkeypatch, auditioned, expected):
    measured = {"deep": profile(100, "male", (0.0, 1.0)), "mid": profile(130, "male", (0.7, 0.7)),
                "high": profile(230, "female", (1.0, 0.0))}
    matching = matching_with_doubles(monkeypatch, measured)
    voices = {"deep": ToneVoice(100), "mid": ToneVoice(200), "high": ToneVoice(300)}
    speaker = profile(100, "male", (0.0, 1.0), name="S0")  # ranked deep, mid, high by profile; sounds like "mid"
    chosen, scores = matching.assign_voices([speaker], voices, "es", {"S0": "hola"}, auditioned)
    assert chosen["S0"] is voices[expected]
    # the female "high" is never auditioned for this man: 2 candidates at most
    assert set(scores.get("S0", {})) == ({"deep", "mid"} if auditioned > 1 else set())


def test_a_voice_of_the_other_gender_is_auditioned_only_where_no_other_is(monkeypatch):
    measured = {"deep": profile(100, "male", (0.0, 1.0)), "between": profile(160, "unknown", (0.7, 0.7)),
                "high": profile(230, "female", (1.0, 0.0))}
    matching = matching_with_doubles(monkeypatch, measured)
    voices = {"deep": ToneVoice(100), "between": ToneVoice(160), "high": ToneVoice(200)}  # "high" sounds most alike
    woman = profile(220, "female", (1.0, 0.0), name="S0")
    _, scores = matching.assign_voices([woman], voices, "es", {"S0": "hola"}, 3)
    assert set(scores["S0"]) == {"between", "high"}
    man = profile(100, "male", (0.0, 1.0), name="S0")
    chosen, scores = matching.assign_voices([man], voices, "es", {"S0": "hola"}, 3)
    assert set(scores["S0"]) == {"deep", "between"} and chosen["S0"] is not voices["high"]
    unknown = profile(160, "unknown", (0.0, 1.0), name="S0")
    chosen, _ = matching.assign_voices([unknown], voices, "es", {"S0": "hola"}, 3)
    assert chosen["S0"] is voices["high"]
    only_female = {"high": voices["high"]}
    monkeypatch.setattr(matching, "cached_candidate_profiles", lambda voices, language: {"high": measured["high"]})
    chosen, _ = matching.assign_voices([man], only_female, "es", {"S0": "hola"}, 3)
    assert chosen["S0"] is voices["high"]


@pytest.mark.parametrize("speaker_gender, default_chosen", [("male", True), ("unknown", False), ("female", False)])
def test_default_voice_joins_the_audition_for_its_own_gender(monkeypatch, speaker_gender, default_chosen):
    measured = {"deep": profile(100, "male", (0.0, 1.0)), "mid": profile(130, "male", (0.7, 0.7)),
                "high": profile(300, "male", (1.0, 0.0))}  # a male default far in pitch: ranked last
    matching = matching_with_doubles(monkeypatch, measured)
    voices = {"deep": ToneVoice(100), "mid": ToneVoice(150), "high": ToneVoice(200)}  # "high" sounds like the speaker
    speaker = profile(100, speaker_gender, (0.0, 1.0), name="S0")
    chosen, scores = matching.assign_voices([speaker], voices, "es", {"S0": "hola"}, 2, ("high",))
    assert (chosen["S0"] is voices["high"]) is default_chosen
    assert ("high" in scores["S0"]) is default_chosen


@pytest.mark.slow
def test_scored_formant_warps_bring_kokoro_closer_to_frontal_man_map(tmp_path):
    """The man of frontal_man_map (164 Hz): the warp fitted to his mean envelope raises jm_kumo's
    formants, GE2E finds him far closer with them lowered (.57 -> .67 on this line)."""
    from tasks.media import extract_audio, read_wav
    from tasks.models import ModelNotInstalled
    from tasks.speakers.backends import voice_profile
    from tasks.speakers.encoder import SpeakerEncoder
    from tasks.tts.voices import KokoroVoice, VoiceError

    clip = shared_media("video/frontal_man_map.mp4")
    try:
        voice = KokoroVoice("en", "jm_kumo")
        speech = voice.synthesize("and the heart of my California Congressional District, where I chase my own "
                                  "dreams growing up.", speed=1.25)
        encoder = SpeakerEncoder()
    except (ModelNotInstalled, VoiceError, ImportError) as error:
        pytest.skip(f"models not installed: {error}")
    audio, rate = read_wav(extract_audio(clip, tmp_path / "audio.wav", 16000, 1))
    man = voice_profile("S0", audio.reshape(len(audio), -1).mean(axis=1)[: int(4.7 * rate)], rate, encoder)
    settings = dict(strengths=(1.0, 0.5, 0.0), select_by_similarity=True, warp_range=(0.9, 1.12),
                    similarity_tolerance=0.02)
    _, fitted = WorldMatcher(**settings).match(speech, voice.sample_rate, man)
    _, scored = WorldMatcher(**settings, scored_warps=(0.9, 0.8, 0.7)).match(speech, voice.sample_rate, man)
    assert scored["formant_warp"] < 0.9 and scored["strength"] == 1.0
    assert scored["similarity"] > fitted["similarity"] + 0.08


@pytest.mark.parametrize("cast, expected, error", [
    (None, {}, None),
    ({}, {}, None),
    ({"pt": {"S0": "kokoro-b"}}, {}, None),                      # another language's cast
    ({"es": {"S1": "kokoro-b"}}, {"S1": "kokoro-b"}, None),
    ({"es": {"S7": "kokoro-b"}}, None, "S7, not a speaker of this video (speakers: S0, S1)"),
    ({"es": {"S0": "kokoro-z"}}, None, "no voice 'kokoro-z' for es (tts.matching.candidates.es: kokoro-a, kokoro-b)"),
])
def test_a_cast_voice_must_name_a_speaker_and_a_candidate(cast, expected, error):
    from tasks.stage import StageError
    from tasks.tts.matching import cast_voices

    candidates = {"kokoro-a": object(), "kokoro-b": object()}
    if error:
        with pytest.raises(StageError, match=re.escape(error)):
            cast_voices(cast, "es", candidates, ["S0", "S1"])
    else:
        assert cast_voices(cast, "es", candidates, ["S0", "S1"]) == expected
