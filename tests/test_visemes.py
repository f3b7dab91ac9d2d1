"""Unit tests of the visemes stage: tables, coarticulation, smoothing, alignment helpers, the entry."""
from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from tasks.visemes import schema
from tasks.visemes.align import (Alignment, best_offset, durations_to_phones, envelope, snap_stops, spread,
                                 trim_to_voice, ENVELOPE_RATE)
from tasks.visemes.calibration import NEUTRAL, calibrate, landmarks_from_npz, mouth_measures, ranges_from_landmarks
from tasks.visemes.coarticulation import Dominance, TimedPhone, blend, dominance, fill_silence
from tasks.visemes.curves import check, compute_curves
from tasks.visemes.smoothing import lower_envelope, slew_limit, upper_envelope
from tasks.visemes.tables import SILENCE, TABLES_DIR, languages, load_classes, load_table

LANGS = ["es", "pt", "fr", "en"]
SENTENCES = {
    "es": "Hola, me llamo Pablo y vivo en Barcelona. Quiero agua fría, gracias. ¿Dónde está el tren? Mi mamá bebe poco.",
    "pt": "Olá, meu nome é João e eu moro em São Paulo. O cachorro do meu avô come pão com manteiga. Ninguém sabe.",
    "fr": "Bonjour, je m'appelle Pierre et j'habite à Paris. Le chien de mon grand-père mange du pain avec du beurre.",
    "en": "Hello, my name is John and I live in Boston. The quick brown fox jumps over the lazy dog. Measure the vision.",
}


def espeak(text: str, lang: str) -> str:
    voices = pytest.importorskip("tasks.tts.voices")
    pytest.importorskip("piper")
    return "".join(voices.espeak_phonemes(text, load_table(lang).espeak_voice))


# --------------------------------------------------------------------------- tables

def test_every_supported_language_has_a_table():
    assert set(LANGS) <= set(languages())


@pytest.mark.parametrize("lang", LANGS)
def test_table_maps_bilabials_to_closure_and_vowels_to_open_shapes(lang):
    table = load_table(lang)
    for symbol in "pbm":
        assert table.viseme(symbol) == "PP"
    assert table.closures == ("PP",)
    assert table.target("PP")["gap"] == 0.0
    assert table.target(table.viseme("a"))["gap"] > 0.6
    assert table.target(table.viseme("u"))["round"] > 0.8
    assert table.target(table.viseme("i"))["width"] > 0.8


@pytest.mark.parametrize("lang", LANGS)
def test_table_covers_every_phoneme_espeak_produces(lang):
    table = load_table(lang)
    table.unknown.clear()
    phones = table.tokenize(espeak(SENTENCES[lang], lang))
    assert not table.unknown, f"{lang}: no viseme for {sorted(table.unknown)}"
    assert len([p for p in phones if p.viseme != SILENCE]) > 40


def test_language_table_overrides_common(tmp_path):
    for name in ("visemes.yaml", "common.yaml"):
        (tmp_path / name).write_text((TABLES_DIR / name).read_text())
    (tmp_path / "xx.yaml").write_text(yaml.safe_dump({"language": "xx", "espeak_voice": "xx", "inherit": "common",
                                                      "map": {"PP": ["w"]}}))
    load_table.cache_clear()
    table = load_table("xx", tmp_path)
    assert table.viseme("w") == "PP" and table.viseme("p") == "PP"
    (tmp_path / "yy.yaml").write_text(yaml.safe_dump({"language": "yy", "map": {"NOPE": ["p"]}}))
    with pytest.raises(ValueError, match="unknown viseme class"):
        load_table("yy", tmp_path)
    with pytest.raises(KeyError):
        load_table("zz", tmp_path)


def test_regional_tag_uses_base_language():
    assert load_table("pt-BR").language == "pt"


@pytest.mark.parametrize("ipa, expected", [
    ("pˈaβlo", ["PP", "AA", "FF", "LL", "O"]),
    ("bɔ̃ʒˈuʁ", ["PP", "O", "SH", "U", "KK"]),  # nasal tilde dropped, stress skipped
    ("mˈɑːɹʃ", ["PP", "AA", "RR", "SH"]),
    ("a, b.", ["AA", SILENCE, "PP", SILENCE]),
])
def test_tokenize(ipa, expected):
    lang = "fr" if "ʁ" in ipa else "en" if "ɹ" in ipa else "es"
    assert [p.viseme for p in load_table(lang).tokenize(ipa)] == expected


def test_tokenize_weights_stress_and_length_and_words():
    table = load_table("en")
    plain, stressed, long = table.tokenize("ɑ")[0], table.tokenize("ˈɑ")[0], table.tokenize("ɑː")[0]
    assert stressed.stressed and stressed.weight > plain.weight
    assert long.weight > plain.weight and long.symbol == "ɑː"
    assert [p.word for p in table.tokenize("ab cd")] == [0, 0, 1, 1]


def test_classes_have_every_parameter_in_range():
    params, classes, _ = load_classes()
    assert params == ("jaw", "width", "round", "gap")
    for cls in classes.values():
        assert all(0.0 <= cls.target[p] <= 1.0 for p in params)
        assert all(cls.dominance[p] > 0 for p in params)


# --------------------------------------------------------------------------- coarticulation

def test_dominance_has_a_plateau_and_anticipates_more_than_it_carries_over():
    model = Dominance(anticipation_s=0.08, carryover_s=0.04)
    t = np.array([0.9, 1.0, 1.05, 1.1, 1.2])
    d = dominance(t, 1.0, 1.1, 2.0, model)
    assert d[1] == d[2] == d[3] == 2.0
    assert d[0] > d[4]  # 0.1 s before > 0.1 s after
    assert dominance(np.array([0.9]), 1.0, 1.1, 1.0, model, rate=2.0)[0] < d[0] / 2


def test_fill_silence_tiles_the_timeline():
    phones = [TimedPhone(0.2, 0.3, "a", "AA"), TimedPhone(0.5, 0.6, "m", "PP")]
    tiled = fill_silence(phones, 1.0)
    assert [p.viseme for p in tiled] == [SILENCE, "AA", SILENCE, "PP", SILENCE]
    assert tiled[0].start == 0 and tiled[-1].end == 1.0
    assert all(a.end == pytest.approx(b.start) for a, b in zip(tiled, tiled[1:]))


def test_blend_reaches_targets_in_long_phones():
    table = load_table("es")
    phones = fill_silence([TimedPhone(0.2, 0.8, "a", "AA")], 1.2)
    t = np.arange(0, 1.2, 0.005)
    curves = blend(phones, table, t)
    mid = np.searchsorted(t, 0.5)
    assert curves["gap"][mid] == pytest.approx(table.target("AA")["gap"], abs=0.02)
    assert curves["gap"][-1] == pytest.approx(0.0, abs=0.02)


def test_coarticulation_anticipates_rounding():
    """/s/ before /u/ is rounder than /s/ before /i/, and rounding starts before the vowel."""
    table = load_table("es")
    t = np.arange(0, 1.0, 0.005)

    def rounding(vowel: str, viseme: str) -> np.ndarray:
        phones = fill_silence([TimedPhone(0.3, 0.4, "s", "SS"), TimedPhone(0.4, 0.55, vowel, viseme)], 1.0)
        return blend(phones, table, t)["round"]

    at_s = np.searchsorted(t, 0.35)
    assert rounding("u", "U")[at_s] > rounding("i", "I")[at_s] + 0.1
    before = np.searchsorted(t, 0.39)
    assert rounding("u", "U")[before] > table.target("SS")["round"] + 0.1


# --------------------------------------------------------------------------- smoothing

@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("step", [0.1, 0.3, 0.5])
def test_slew_limit_bounds_every_step_and_keeps_minima(seed, step):
    x = np.random.default_rng(seed).random(200)
    x[[20, 90, 150]] = 0.0
    low = lower_envelope(x, step)
    assert np.max(np.abs(np.diff(low))) <= step + 1e-12
    assert np.all(low <= x + 1e-12)
    assert np.all(low[[20, 90, 150]] == 0.0)
    mid = slew_limit(x, step, keep_minima=False)
    assert np.max(np.abs(np.diff(mid))) <= step + 1e-12
    assert np.all(upper_envelope(x, step) >= x - 1e-12)


def test_slew_limit_leaves_smooth_curves_alone():
    x = 0.5 + 0.3 * np.sin(np.linspace(0, 6, 300))
    assert np.allclose(lower_envelope(x, 0.1), x)


def _sentence(phones: list[tuple[str, str, float]], start: float = 0.2) -> list[TimedPhone]:
    out, t = [], start
    for symbol, viseme, length in phones:
        out.append(TimedPhone(t, t + length, symbol, viseme))
        t += length
    return out


@pytest.mark.parametrize("fps", [24, 25, 29.97, 30, 60])
@pytest.mark.parametrize("length", [0.015, 0.03, 0.06])
def test_short_bilabial_still_closes(fps, length):
    table = load_table("es")
    phones = _sentence([("a", "AA", 0.12), ("p", "PP", length), ("a", "AA", 0.12)])
    curves = compute_curves(phones, table, fps, int(1.0 * fps))
    result = check(curves, table)
    assert result["bilabials_closed"] == 1, curves.params["gap"]
    assert result["max_jump"] <= 0.5 + 1e-9


def test_long_pause_closes_the_mouth_and_short_pause_does_not_snap():
    table = load_table("es")
    open_vowel = [("a", "AA", 0.2)]
    long_pause = _sentence(open_vowel) + _sentence(open_vowel, start=0.2 + 0.2 + 0.4)
    curves = compute_curves(long_pause, table, 25, 40)
    result = check(curves, table)
    assert result["long_pauses"] >= 1 and result["long_pauses_closed"] == result["long_pauses"]
    short_pause = _sentence(open_vowel) + _sentence(open_vowel, start=0.2 + 0.2 + 0.08)
    gap = compute_curves(short_pause, table, 25, 40).params["gap"]
    times = np.arange(40) / 25
    in_pause = (times > 0.4) & (times < 0.48)
    assert gap[in_pause].min() > 0.15  # the mouth stays partly open over an 80 ms break


@pytest.mark.parametrize("pause_s", [0.31, 0.35, 0.45, 0.6, 1.0])
@pytest.mark.parametrize("fps", [22.13, 25, 29.97])
def test_every_long_pause_closes_even_when_shorter_than_both_settle_times(pause_s, fps):
    from tasks.visemes.smoothing import Smoothing, pause_frames

    table = load_table("en")
    smoothing = Smoothing(settle_s=0.25)
    phones = [TimedPhone(0.2, 0.4, "a", "AA"), TimedPhone(0.4 + pause_s, 0.6 + pause_s, "a", "AA")]
    frames = int((1.0 + pause_s) * fps)
    curves = compute_curves(phones, table, fps, frames, smoothing=smoothing)
    result = check(curves, table, min_pause_s=smoothing.min_pause_s)
    assert result["long_pauses"] >= 1 and result["long_pauses_closed"] == result["long_pauses"], result
    resting = pause_frames(curves.phones, fps, frames, smoothing.min_pause_s, smoothing.settle_s)
    times = np.arange(frames) / fps
    inner = resting & (times > 0.4) & (times < 0.4 + pause_s)
    assert inner.any()
    if pause_s > 0.5 + 2 / fps:  # long enough for the settle windows: open right after the sound, closed in the middle
        assert not resting[(times > 0.4) & (times < 0.4 + 0.25)].any()
        assert resting[(times > 0.4 + 0.25 + 1 / fps) & (times < 0.4 + pause_s - 0.25 - 1 / fps)].all()


def test_release_after_closure_is_fast():
    table = load_table("es")
    phones = _sentence([("m", "PP", 0.08), ("a", "AA", 0.25)])
    curves = compute_curves(phones, table, 25, 25)
    gap, labels = curves.params["gap"], curves.labels
    closed = int(np.argmin(gap[:8]))
    assert gap[closed] == 0.0
    assert gap[closed + 3] > 0.6  # open within 120 ms of the closure


@pytest.mark.parametrize("lang", LANGS)
def test_synthetic_sentence_meets_the_acceptance_checks(lang):
    """IPA from espeak, phones spread at a fast speaking rate (~14 phones/s), 25 fps."""
    table = load_table(lang)
    phones = table.tokenize(espeak(SENTENCES[lang], lang))
    weights = np.array([p.weight for p in phones])
    seconds = len(phones) / 14.0
    edges = 0.3 + seconds * np.concatenate([[0], np.cumsum(weights) / weights.sum()])
    timed = [TimedPhone(edges[i], edges[i + 1], p.symbol, p.viseme) for i, p in enumerate(phones)]
    frames = int((seconds + 0.6) * 25)
    result = check(compute_curves(timed, table, 25, frames), table)
    assert result["bilabials"] >= 3
    assert result["ok"], result


# --------------------------------------------------------------------------- alignment helpers

def test_spread_shares_the_word_by_weight():
    table = load_table("es")
    out = spread(table.tokenize("ˈama"), 1.0, 1.5)
    assert out[0].start == 1.0 and out[-1].end == pytest.approx(1.5)
    durations = [p.end - p.start for p in out]
    assert durations[0] > durations[2] > durations[1]  # stressed a > plain a > m
    assert spread([], 0, 1) == [] and spread(table.tokenize("a"), 1.0, 1.0) == []


def test_envelope_and_trim_to_voice():
    rate = 16000
    audio = np.zeros(rate)
    audio[int(0.4 * rate):int(0.6 * rate)] = 0.5 * np.sin(np.arange(int(0.2 * rate)) * 0.3)
    env = envelope(audio, rate)
    assert len(env) == int(ENVELOPE_RATE)
    start, end = trim_to_voice(0.1, 0.9, env, 0.05)
    assert 0.3 <= start <= 0.4 and 0.6 <= end <= 0.66


def test_snap_stops_moves_a_bilabial_onto_the_energy_dip():
    env = np.ones(200)
    env[int(0.53 * ENVELOPE_RATE)] = 0.01
    phones = [TimedPhone(0.40, 0.50, "a", "AA", "w"), TimedPhone(0.50, 0.54, "p", "PP", "w"), TimedPhone(0.54, 0.70, "a", "AA", "w")]
    out = snap_stops(phones, env)
    assert out[1].center == pytest.approx(0.53, abs=0.006)
    assert out[0].end == out[1].start and out[1].end == out[2].start


def test_durations_to_phones():
    table = load_table("es")
    chunk = "ˈama, pa"
    frames = np.array([10, 4, 3, 2, 3, 6, 2, 2, 3, 8])  # pad + 8 chars + end pad
    phones = durations_to_phones(chunk, frames, table, offset_s=1.0, frame_s=0.025)
    assert [p.viseme for p in phones] == ["AA", "PP", "AA", SILENCE, "PP", "AA"]
    assert phones[0].start == pytest.approx(1.0 + 10 * 0.025)  # the stress mark's time goes to the vowel
    assert phones[2].end == pytest.approx(1.0 + 22 * 0.025)
    assert phones[3].end == pytest.approx(1.0 + 30 * 0.025)  # the space after the comma joins the pause


def test_best_offset_recovers_a_shift():
    env = np.full(400, 1e-3)
    env[int(0.56 * ENVELOPE_RATE):int(0.9 * ENVELOPE_RATE)] = 0.3
    # relative to a segment starting at 0.5 s: speech predicted from 0.55 s, heard from 0.56 s
    phones = [TimedPhone(0.0, 0.05, "_", SILENCE), TimedPhone(0.05, 0.39, "a", "AA")]
    assert best_offset(phones, env, 0.5, 0.08) == pytest.approx(0.01, abs=0.006)


# --------------------------------------------------------------------------- calibration and schema

def _face(gap: float, width: float = 0.8) -> np.ndarray:
    lm = np.zeros((68, 2))
    lm[36:42] = [0.0, 0.0]
    lm[42:48] = [1.0, 0.0]  # inter-ocular distance 1
    lm[33] = [0.5, 0.6]
    lm[8] = [0.5, 1.8]
    lm[48], lm[54] = [0.5 - width / 2, 1.2], [0.5 + width / 2, 1.2]
    for top, bottom in ((61, 67), (62, 66), (63, 65)):
        lm[top] = [0.5, 1.2 - gap / 2]
        lm[bottom] = [0.5, 1.2 + gap / 2]
    return lm


def test_mouth_measures_and_ranges():
    faces = np.stack([_face(g) for g in np.linspace(0.0, 0.2, 50)])
    measures = mouth_measures(faces)
    assert measures["gap"][-1] == pytest.approx(0.2)
    assert measures["width"][0] == pytest.approx(0.8) and measures["jaw"][0] == pytest.approx(1.2)
    ranges = ranges_from_landmarks(faces)
    assert ranges["gap"][0] == pytest.approx(0.01, abs=1e-3) and ranges["gap"][1] == pytest.approx(0.19, abs=1e-3)
    small = ranges_from_landmarks(np.stack([_face(g) for g in np.linspace(0.0, 0.05, 50)]))
    assert small["gap"][1] < ranges["gap"][1]  # a speaker who barely opens keeps a small range


def test_calibration_sources(tmp_path):
    path = tmp_path / "faces.npz"
    np.savez(path, landmarks=np.stack([_face(g) for g in np.linspace(0.0, 0.3, 20)]))
    assert landmarks_from_npz(path).shape == (20, 68, 2)
    assert calibrate(path, None).source == "faces.npz"
    neutral = calibrate(None, None)
    assert neutral.source == "neutral" and neutral.ranges == NEUTRAL


def test_schema_round_trip(tmp_path):
    cal = schema.Calibration("neutral", {"gap": [0.0, 0.3]}, 0)
    sp = schema.SpeakerCurves("S0", cal, {"gap": [0.0, 0.5]}, {"gap": [0.0, 0.15]}, ["sil", "AA"], {"ok": True})
    art = schema.Visemes("es", 25.0, 2, "test", ["gap"], (schema.PhoneInterval(0.0, 0.1, "a", "AA"),), (sp,))
    schema.write(tmp_path / "v.json", art)
    assert schema.read(tmp_path / "v.json") == art
    data = json.loads((tmp_path / "v.json").read_text())
    data["schema"] = 99
    (tmp_path / "v.json").write_text(json.dumps(data))
    with pytest.raises(Exception, match="schema 99"):
        schema.read(tmp_path / "v.json")


# --------------------------------------------------------------------------- the stage entry

class FakeAligner:
    """Phones from the segments' own IPA spread over each segment (no models): for the entry test."""

    def __init__(self, **_):
        pass

    def align(self, audio, segments, table, speaker_of, retiming=None):
        phones, speakers = [], []
        for s in segments:
            timed = spread(table.tokenize(s.phonemes), s.start, s.start + s.duration)
            phones += timed
            speakers += [speaker_of.get(s.id, "S0")] * len(timed)
        return Alignment(phones, speakers, "fake")


def test_stage_writes_visemes_json_and_png(tmp_path, tone):
    from tasks import artifacts
    from tasks.artifacts import DubbedSegment, DubbedSpeech, Probe
    from tasks.media import write_wav
    from tasks.visemes.__main__ import run
    from tasks.stage import StageContext

    config = yaml.safe_load((TABLES_DIR.parent / "default.yaml").read_text())
    config["aligner"] = {"_target_": "tests.test_visemes.FakeAligner"}
    config["calibration"] = {"enabled": False}
    tts = tmp_path / "data" / "tts" / "clip" / "es"
    tts.mkdir(parents=True)
    write_wav(tts / "voice.wav", tone(3.0), 16000)
    segments = (DubbedSegment(0, 0.2, 1.4, 1.5, "v", 1.0, 1.2, 0.0, "mi mamá", "mi mamˈa"),
                DubbedSegment(1, 2.0, 2.8, 3.0, "v", 1.0, 0.8, 0.0, "bebe", "bˈeβe"))
    artifacts.write(tts / "segments.json", DubbedSpeech("es", 44100, segments))
    artifacts.write(tmp_path / "data" / "ingest" / "clip" / "probe.json",
                    Probe("x.mp4", 64, 64, 25.0, 75, 3.0, "h264", "aac", 44100, 1))
    run(StageContext("visemes", "clip", "es", tmp_path, {"visemes": config}))
    out = tmp_path / "data" / "visemes" / "clip" / "es"
    result = schema.read(out / "visemes.json")
    assert (out / "visemes.png").stat().st_size > 1000
    assert result.frames == 75 and result.fps == 25.0 and len(result.speakers) == 1
    speaker = result.speakers[0]
    assert set(speaker.params) == {"jaw", "width", "round", "gap"}
    assert all(len(v) == 75 for v in speaker.params.values()) and len(speaker.labels) == 75
    assert speaker.calibration.source == "neutral"
    assert speaker.checks["bilabials"] == 4 and speaker.checks["ok"]


def test_fill_silence_merges_adjacent_pauses():
    phones = [TimedPhone(0.2, 0.3, "a", "AA"), TimedPhone(0.3, 0.5, ",", SILENCE), TimedPhone(0.7, 0.8, "a", "AA")]
    tiled = fill_silence(phones, 1.0)
    assert [(p.viseme, round(p.end - p.start, 3)) for p in tiled] == [(SILENCE, 0.2), ("AA", 0.1), (SILENCE, 0.4), ("AA", 0.1), (SILENCE, 0.2)]


def test_long_space_becomes_a_pause_and_silent_tails_split():
    from tasks.visemes.align import split_silent_tails

    table = load_table("es")
    phones = durations_to_phones("as es", np.array([5, 3, 3, 20, 3, 3, 5]), table, 0.0, 0.025)
    assert [p.viseme for p in phones] == ["AA", "SS", SILENCE, "E", "SS"]
    env = np.full(200, 0.5)
    env[int(0.5 * ENVELOPE_RATE):int(0.8 * ENVELOPE_RATE)] = 0.0
    out = split_silent_tails([TimedPhone(0.3, 0.8, "s", "SS")], env, 0.1)
    assert [(p.viseme, round(p.start, 2), round(p.end, 2)) for p in out] == [("SS", 0.3, 0.5), (SILENCE, 0.5, 0.8)]


def test_bilabials_seal_early_and_release_fast():
    pp = load_table("es").classes["PP"]
    assert pp.rate[1] > pp.rate[0] >= 1.0
    model = Dominance()
    before = dominance(np.array([0.96]), 1.0, 1.1, 1.0, model, pp.rate)[0]
    after = dominance(np.array([1.14]), 1.0, 1.1, 1.0, model, pp.rate)[0]
    assert before > after


def test_no_speech_gives_a_resting_mouth():
    table = load_table("en")
    curves = compute_curves([], table, 25, 50)
    assert np.all(curves.params["gap"] == 0.0) and set(curves.labels) == {SILENCE}
    assert check(curves, table)["ok"]


def test_stage_gives_each_speaker_a_track_that_rests_while_others_speak(tmp_path, tone):
    from tasks import artifacts
    from tasks.artifacts import DubbedSegment, DubbedSpeech, Probe, TranslatedSegment, Translation
    from tasks.media import write_wav
    from tasks.stage import StageContext
    from tasks.visemes.__main__ import run

    config = yaml.safe_load((TABLES_DIR.parent / "default.yaml").read_text())
    config.update(aligner={"_target_": "tests.test_visemes.FakeAligner"}, calibration={"enabled": False}, plot=False)
    data = tmp_path / "data"
    write_wav(data / "tts" / "clip" / "pt" / "voice.wav", tone(3.0), 16000)
    segments = (DubbedSegment(0, 0.2, 1.2, 1.3, "v", 1.0, 1.0, 0.0, "a mamãe", "a mamˈɐ̃j"),
                DubbedSegment(1, 1.8, 2.8, 3.0, "v", 1.0, 1.0, 0.0, "o papai", "ʊ papˈaj"))
    artifacts.write(data / "tts" / "clip" / "pt" / "segments.json", DubbedSpeech("pt", 44100, segments))
    artifacts.write(data / "mt" / "clip" / "pt" / "translation.json", Translation("en", "pt", "x", (
        TranslatedSegment(0, 0.2, 1.2, "S0", "", "a mamãe"), TranslatedSegment(1, 1.8, 2.8, "S1", "", "o papai"))))
    artifacts.write(data / "ingest" / "clip" / "probe.json", Probe("x.mp4", 64, 64, 25.0, 75, 3.0, "h264", "aac", 44100, 1))
    run(StageContext("visemes", "clip", "pt", tmp_path, {"visemes": config}))
    result = schema.read(data / "visemes" / "clip" / "pt" / "visemes.json")
    assert not (data / "visemes" / "clip" / "pt" / "visemes.png").exists()
    tracks = {s.speaker: s for s in result.speakers}
    assert set(tracks) == {"S0", "S1"}
    first, second = slice(int(0.3 * 25), int(1.1 * 25)), slice(int(1.9 * 25), int(2.7 * 25))
    assert max(tracks["S0"].params["gap"][second]) == 0.0 and max(tracks["S1"].params["gap"][first]) == 0.0
    assert max(tracks["S0"].params["gap"][first]) > 0.3 and max(tracks["S1"].params["gap"][second]) > 0.3
    assert {p.speaker for p in result.phones} == {"S0", "S1"}


def test_calibration_per_face_track(tmp_path):
    path = tmp_path / "faces.npz"
    wide = [_face(g) for g in np.linspace(0.0, 0.4, 20)]
    narrow = [_face(g) for g in np.linspace(0.0, 0.05, 20)]
    np.savez(path, landmarks=np.stack(wide + narrow + narrow[:5]), track=np.array([0] * 20 + [1] * 25))
    zero, one = calibrate(path, None, track=0), calibrate(path, None, track=1)
    assert zero.source == "faces.npz:track0" and one.source == "faces.npz:track1"
    assert zero.ranges["gap"][1] > 0.3 > 0.06 > one.ranges["gap"][1]
    # a speaker mapped to no face takes the longest track, not everyone's mouths mixed
    unmapped = calibrate(path, None)
    assert unmapped.frames_measured == 25 and unmapped.ranges["gap"] == one.ranges["gap"]


def test_calibration_leaves_out_hidden_and_turned_frames(tmp_path):
    path = tmp_path / "faces.npz"
    faces = [_face(g) for g in np.linspace(0.0, 0.1, 20)] + [_face(0.6)] * 10
    visibility = np.array([1.0] * 20 + [0.2] * 5 + [1.0] * 5)
    pose = np.zeros((30, 3))
    pose[25:, 0] = 50.0  # turned away: a foreshortened, unreliable mouth
    np.savez(path, landmarks=np.stack(faces), track=np.zeros(30, dtype=int), visibility=visibility, pose=pose)
    calibration = calibrate(path, None, track=0)
    assert calibration.frames_measured == 20 and calibration.ranges["gap"][1] < 0.15
    assert calibrate(path, None, track=0, min_visibility=0.0, max_yaw=90.0).ranges["gap"][1] > 0.5


def test_face_tracks_mapping(tmp_path):
    from tasks.visemes.__main__ import face_tracks

    (tmp_path / "tracks.json").write_text(json.dumps({"speakers": {"S0": 1, "S1": None}}))
    assert face_tracks(tmp_path / "tracks.json") == {"S0": 1}
    assert face_tracks(tmp_path / "missing.json") == {}


def test_auto_aligner_falls_back_to_asr_when_the_replay_does_not_fit(tmp_path, tone, monkeypatch):
    from tasks.artifacts import DubbedSegment
    from tasks.media import write_wav
    from tasks.visemes.align import AutoAligner, KokoroAligner

    wav = write_wav(tmp_path / "voice.wav", tone(2.0), 16000)
    segment = DubbedSegment(0, 0.2, 1.2, 1.3, "kokoro-jf_alpha-es", 1.0, 1.0, 0.0, "a", "a")
    table = load_table("es")
    aligner = AutoAligner()
    monkeypatch.setattr(aligner.asr, "align", lambda *a: Alignment([], [], "asr"))
    monkeypatch.setattr(KokoroAligner, "segment_phones", lambda self, s, t: [TimedPhone(0.0, 0.98, "a", "AA")])
    assert aligner.align(wav, [segment], table, {}).method == "kokoro-durations"
    monkeypatch.setattr(KokoroAligner, "segment_phones", lambda self, s, t: [TimedPhone(0.0, 1.4, "a", "AA")])  # 40 % longer
    assert aligner.align(wav, [segment], table, {}).method == "asr"
    assert not KokoroAligner.handles([DubbedSegment(0, 0, 1, 1, "piper-joe-us", 1.0, 1.0, 0.0, "a")])


# --------------------------------------------------------------------------- boundary refinement on the audio

def test_sonority_file_is_not_a_language_and_names_known_classes():
    from tasks.visemes.refine import load_sonority

    assert "sonority" not in languages()
    classes, symbols = load_sonority()
    assert set(symbols.values()) <= set(classes) and classes["vowel"][0] > classes["nasal"][0] > classes["stop"][0]


def test_viterbi_keeps_order_minimum_durations_and_may_skip_optional_units():
    from tasks.visemes.refine import viterbi

    # unit 1 (optional) fits frames 4-5 best, but skipping it must stay possible
    emission = np.full((3, 10), -5.0)
    emission[0, :4] = 0.0
    emission[1, 4:6] = 0.0
    emission[2, 6:] = 0.0
    path = viterbi(emission, np.array([2, 1, 3]), np.array([False, True, False]))
    assert path.tolist() == [0, 0, 0, 0, 1, 1, 2, 2, 2, 2]
    emission[1] = -50.0
    path = viterbi(emission, np.array([2, 1, 3]), np.array([False, True, False]))
    assert 1 not in path and np.all(np.diff(path) >= 0) and (path == 2).sum() >= 3
    assert viterbi(emission, np.array([5, 1, 6]), np.array([False, True, False])) is None  # too few frames


def test_refine_moves_a_misplaced_vowel_onto_the_loud_voiced_part():
    from tasks.visemes.refine import FEATURE_RATE, Refinement, refine

    table = load_table("en")
    son = np.zeros(int(1.0 * FEATURE_RATE))
    son[30:40] = 0.1   # s: quiet, unvoiced
    son[40:60] = 1.0   # a: the vowel really runs 0.40-0.60 s
    son[60:66] = 0.05  # t closure
    # word timings put the vowel 80 ms early
    phones = [TimedPhone(0.26, 0.32, "s", "SS", "0"), TimedPhone(0.32, 0.50, "a", "AA", "0"), TimedPhone(0.50, 0.58, "t", "DD", "0")]
    out = refine(phones, table, son, Refinement())
    vowel = out[1]
    assert [p.symbol for p in out] == ["s", "a", "t"]
    assert abs(vowel.start - 0.40) <= 0.02 and abs(vowel.end - 0.60) <= 0.02
    assert all(a.end <= b.start + 1e-9 for a, b in zip(out, out[1:]))
    # a far-off sonority peak is not followed: the time prior holds the phones near their words
    far = np.zeros_like(son)
    far[85:95] = 1.0
    held = refine(phones, table, far, Refinement())
    assert held[1].start < 0.55
    assert refine([], table, son) == []
    assert refine(phones, table, son[:20]) == phones  # no audio under the words: left as they were


def test_sonority_is_high_for_voiced_sound_and_low_for_noise_and_silence():
    pytest.importorskip("pyworld")
    from tasks.visemes.refine import FEATURE_RATE, sonority

    rate = 16000
    t = np.arange(int(0.5 * rate)) / rate
    voiced = 0.3 * np.sign(np.sin(2 * np.pi * 140 * t)) * 0.5 + 0.2 * np.sin(2 * np.pi * 600 * t)
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 1, len(t))
    noise = np.diff(noise, prepend=0.0)  # high-frequency weighted, like a fricative
    noise *= np.sqrt(np.mean(voiced ** 2) / np.mean(noise ** 2))
    audio = np.concatenate([np.zeros(len(t)), voiced, noise, np.zeros(len(t))])
    son = sonority(audio, rate)
    k = int(0.5 * FEATURE_RATE)
    silent, vowel, fricative = np.median(son[5:k - 5]), np.median(son[k + 5:2 * k - 5]), np.median(son[2 * k + 5:3 * k - 5])
    assert vowel > 0.8 and fricative < 0.5 * vowel and silent < 0.05


def test_dynamic_range_separates_clean_speech_from_speech_over_music():
    from tasks.visemes.refine import dynamic_range_db

    rng = np.random.default_rng(1)
    syllables = np.tile(np.r_[np.ones(40), np.full(40, 1e-3)], 10)  # speech with real pauses
    assert dynamic_range_db(syllables * (1 + 0.1 * rng.random(800))) > 40
    assert dynamic_range_db(syllables + 0.3) < 20  # a bed of music under the same speech
    assert dynamic_range_db(np.zeros(10)) == 0.0


@pytest.mark.parametrize("time_scale, inserted, expected_starts", [
    (1.0, (), [0.0, 0.1, 0.5]),
    (0.5, (), [0.0, 0.05, 0.25]),                # a 2x faster stretch halves every time
    (1.0, ((0.4, 0.3),), [0.0, 0.1, 0.8]),       # silence inserted in the gap pushes what follows
    (0.8, ((0.4, 0.3),), [0.0, 0.08, 0.64]),
    (1.0, ((0.05, 0.1), (0.4, 0.3)), [0.0, 0.2, 0.9]),
])
def test_replayed_phones_follow_the_tts_stretch_and_inserted_pauses(time_scale, inserted, expected_starts):
    from tasks.visemes.align import retime

    phones = [TimedPhone(0.0, 0.1, "m", "MBP"), TimedPhone(0.1, 0.3, "a", "AA"), TimedPhone(0.5, 0.6, "s", "SS")]
    moved = retime(phones, time_scale, inserted)
    assert [p.start for p in moved] == pytest.approx(expected_starts)
    assert [p.end - p.start for p in moved] == pytest.approx([(p.end - p.start) * time_scale for p in phones])


@pytest.mark.parametrize("inserted, expected", [
    # 0.2 s of silence cut from the middle of the pause phone (0.3-0.7): it shortens, the rest moves up
    (((0.4, -0.2),), [(0.0, 0.1), (0.1, 0.3), (0.3, 0.5), (0.5, 0.6)]),
    # the cut inside a spoken phone's silent tail (Kokoro's durations hold a comma's pause in the
    # vowel before it): that phone ends earlier and never overlaps the /p/ after it
    (((0.2, -0.15),), [(0.0, 0.1), (0.1, 0.2), (0.2, 0.55), (0.55, 0.65)]),
    (((0.05, 0.1), (0.4, -0.2)), [(0.0, 0.1), (0.2, 0.4), (0.4, 0.6), (0.6, 0.7)]),
])
def test_replayed_phones_follow_silence_taken_out_without_overlapping(inserted, expected):
    from tasks.visemes.align import retime

    phones = [TimedPhone(0.0, 0.1, "m", "MBP"), TimedPhone(0.1, 0.3, "e", "EE"),
              TimedPhone(0.3, 0.7, "", SILENCE), TimedPhone(0.7, 0.8, "p", "MBP")]
    moved = retime(phones, 1.0, inserted)
    assert [t for p in moved for t in (p.start, p.end)] == pytest.approx([t for pair in expected for t in pair])
    assert all(a.end <= b.start + 1e-9 for a, b in zip(moved, moved[1:]))


def _validator():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "scripts" / "visemes_validate.py"
    spec = importlib.util.spec_from_file_location("visemes_validate", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_validator_finds_how_far_each_bilabial_is_from_the_real_closure():
    validate = _validator()
    fps = 25.0
    times = np.arange(50) / fps
    measured = np.full(50, 0.3)
    measured[[10, 30]] = 0.02  # real closures at 0.40 s and 1.20 s
    measured[45] = np.nan
    phones = [TimedPhone(0.44, 0.52, "m", "PP"), TimedPhone(0.52, 0.9, "a", "AA"), TimedPhone(1.1, 1.18, "b", "PP"),
              TimedPhone(1.7, 1.9, "p", "PP")]
    offsets = validate.closure_offsets(phones, ("PP",), times, measured)
    # 0.40 - 0.48 = -80 ms; 1.20 - 1.14 = +60 ms; the third finds no closure, only its window's minimum
    assert offsets[:2] == pytest.approx([-0.08, 0.06])
    assert len(offsets) == 3


@pytest.mark.parametrize("delays_ms, expected", [
    ((40, 40, 40), 40.0),       # the measured mouth 40 ms behind the prediction on every clip
    ((-30, -30, -30), -30.0),
])
def test_validator_pools_the_clips_lags(delays_ms, expected):
    """Three clips whose mouth trails the predicted curve by `delays_ms`, each with noise that moves
    its own best lag: the frames-weighted mean of their r-over-lag curves peaks at the true lag."""
    validate = _validator()
    fps, rng = 25.0, np.random.default_rng(4)
    curves = []
    for k, delay in enumerate(delays_ms):
        t = np.arange(200) / fps
        predicted = np.abs(np.sin(2 * np.pi * (2.0 + 0.5 * k) * t)) + 0.3 * np.sin(2 * np.pi * 0.7 * t)
        measured = np.interp(t - delay / 1000.0, t, predicted) + rng.normal(0, 0.15, len(t))
        lags, r = validate.lag_curve(predicted, measured, fps)
        curves.append((lags, r, 200))
        assert validate.subframe_lag(predicted, measured, fps)[0] == float(lags[np.argmax(r)])
    assert validate.pooled_offset(curves) == pytest.approx(expected, abs=10)
    assert validate.pooled_offset([]) is None


def test_validator_splits_frames_into_speech_and_long_pauses():
    validate = _validator()
    times = np.arange(0, 2.0, 0.04)
    tiled = fill_silence([TimedPhone(0.2, 0.6, "a", "AA"), TimedPhone(0.8, 1.0, "a", "AA"), TimedPhone(1.5, 1.7, "a", "AA")], 2.0)
    speech, pauses = validate.speech_and_pauses(tiled, times, 0.3)
    assert speech[(times >= 0.2) & (times < 0.6)].all() and not speech[(times > 1.05) & (times < 1.45)].any()
    assert pauses[(times >= 1.0) & (times < 1.5)].all()  # 0.5 s pause
    assert not pauses[(times > 0.6) & (times < 0.8)].any()  # 0.2 s pause is not long
    assert not (speech & pauses).any()


@pytest.mark.parametrize("time_s, expected", [
    (0.1, "short_pause"),  # a 0.2 s lead-in is as short as any other pause the curves do not close
    (0.3, "speech"),
    (0.7, "short_pause"),  # 0.2 s between two sounds: under min_pause_s
    (1.2, "long_pause"),   # 0.5 s
    (1.95, "long_pause"),  # after the last sound
])
def test_validator_frame_kinds(time_s, expected):
    validate = _validator()
    times = np.arange(0, 2.0, 0.04)
    tiled = fill_silence([TimedPhone(0.2, 0.6, "a", "AA"), TimedPhone(0.8, 1.0, "a", "AA"), TimedPhone(1.5, 1.7, "a", "AA")], 2.0)
    kinds = validate.frame_kinds(tiled, times, 0.3)
    assert kinds[int(np.argmin(np.abs(times - time_s)))] == expected


@pytest.mark.parametrize("miss, expected_top", [("speech", "speech"), ("long_pause", "long_pause")])
def test_validator_residual_shares_name_where_the_prediction_misses(miss, expected_top):
    validate = _validator()
    rng = np.random.default_rng(0)
    kinds = np.array(["speech"] * 60 + ["long_pause"] * 40, dtype=object)
    predicted = rng.uniform(0, 1, 100)
    measured = 2.0 * predicted + 0.5 + 0.01 * rng.standard_normal(100)  # affine: scale and offset do not count
    wrong = np.flatnonzero(kinds == miss)[::2]
    measured[wrong] += rng.choice([-1.0, 1.0], len(wrong))
    shares = validate.residual_shares(predicted, measured, kinds)
    assert sum(shares.values()) == pytest.approx(1.0, abs=0.01)
    assert max(shares, key=shares.get) == expected_top and shares[expected_top] > 0.9


def test_validator_residual_shares_ignore_missing_frames_and_are_empty_without_a_prediction():
    validate = _validator()
    kinds = np.array(["speech"] * 10, dtype=object)
    measured = np.linspace(0, 1, 10)
    measured[3] = np.nan
    assert validate.residual_shares(np.linspace(0, 1, 10), measured, kinds) == {"speech": 1.0}
    assert validate.residual_shares(np.zeros(10), measured, kinds) == {}


@pytest.mark.parametrize("pause, window, expected_from", [
    ((1.0, 2.0), 0.3, 1.7),   # the last 0.3 s of a 1 s pause
    ((1.0, 1.4), 0.3, 1.2),   # never more than the pause's second half
    ((1.0, 1.2), 0.3, None),  # a short pause has no onset window
])
def test_validator_frames_before_a_phrase_onset(pause, window, expected_from):
    validate = _validator()
    times = np.arange(0, 3.0, 0.01)
    tiled = fill_silence([TimedPhone(0.5, pause[0], "a", "AA"), TimedPhone(pause[1], 2.5, "a", "AA")], 3.0)
    mask = validate.before_onsets(tiled, times, 0.3, window)
    assert not mask[times >= 2.5].any()  # the pause after the last sound leads to no phrase
    between = (times >= pause[0]) & (times < pause[1])
    if expected_from is None:
        assert not mask[between].any()
    else:
        assert mask[between].any() and times[mask & between].min() == pytest.approx(expected_from, abs=0.011)
        assert mask[(times >= expected_from + 0.011) & (times < pause[1])].all()


IPA = {"de": "de", "barcelona": "baɾθelona", "un": "un", "beso": "beso", "gato": "ɡato", "the": "ðə", "boy": "bɔɪ"}


@pytest.mark.parametrize("language, words, expected", [
    ("es", [(0.0, 0.2, "de"), (0.2, 0.8, "Barcelona")], "β"),    # after a vowel in the same breath
    ("es", [(0.0, 0.2, "un"), (0.2, 0.6, "beso")], "b"),          # after a nasal: a stop
    ("es", [(0.0, 0.2, "de"), (0.5, 0.9, "beso")], "b"),          # after a pause: a stop
    ("es", [(0.0, 0.4, "beso")], "b"),                            # first word
    ("es", [(0.0, 0.2, "de"), (0.2, 0.6, "gato")], "ɣ"),
    ("en", [(0.0, 0.2, "the"), (0.2, 0.6, "boy")], "b"),          # English has no such rule
])
def test_word_initial_lenition(language, words, expected):
    from tasks.visemes.align import align_words

    table = load_table(language)
    phones = align_words(words, table, lambda word: IPA[word.lower()])
    last_word = [p for p in phones if p.word.endswith(words[-1][2])]
    assert last_word[0].symbol == expected
    assert (last_word[0].viseme in table.closures) is (expected == "b")


def test_validator_times_frames_on_the_audio_that_extract_audio_gives(tmp_path):
    """A picture starting 0.5 s after its sound: extract_audio cuts that 0.5 s off the audio, so the
    frames must be timed from the first picture (they were 0.5 s late: stage_mic_cuts's 0.84 s)."""
    from tasks.media import SPEECH_RATE, extract_audio, read_wav, run_ffmpeg

    clip = tmp_path / "late_picture.mp4"
    run_ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000:duration=2",
               "-itsoffset", "0.5", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=25:duration=1.5",
               "-map", "1:v", "-map", "0:a", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(clip))
    times = _validator().frame_times(clip)
    samples, rate = read_wav(extract_audio(clip, tmp_path / "a.wav", SPEECH_RATE, 1))
    assert times[0] == pytest.approx(0.0, abs=0.03)
    assert np.diff(times) == pytest.approx(0.04, abs=1e-3)
    assert len(samples) / rate == pytest.approx(1.5, abs=0.1)  # the audio that goes with those frames


def test_validator_lag_interval_brackets_a_known_lag_and_widens_when_r_is_flat():
    validate = _validator()
    fps = 25.0
    t = np.arange(250) / fps
    rng = np.random.default_rng(1)
    bumps = np.convolve(rng.standard_normal(len(t)), np.hanning(7), mode="same")  # mouth-like wiggles
    measured = np.interp(t - 0.06, t, bumps)  # the real mouth 60 ms after the prediction
    low, high = validate.lag_interval(bumps, measured + 0.05 * rng.standard_normal(len(t)), fps)
    assert low <= 60 <= high and high - low <= 30
    assert validate.subframe_lag(bumps, measured, fps)[0] == pytest.approx(60, abs=5)
    slow = np.convolve(rng.standard_normal(len(t)), np.hanning(61), mode="same")  # r flat over +-200 ms
    low, high = validate.lag_interval(slow, slow + 0.5 * slow.std() * rng.standard_normal(len(t)), fps)
    assert high - low > 60


def test_validator_measurement_noise_recovers_landmark_jitter_and_caps_r():
    validate = _validator()
    rng = np.random.default_rng(2)
    t = np.arange(300) / 25.0
    mouth = 0.1 + 0.05 * np.sin(2 * np.pi * 2.0 * t)  # a 2 Hz syllable rhythm: the fit follows it
    measured = mouth + 0.01 * rng.standard_normal(len(t))
    measured[[100, 101]] = np.nan  # two runs, each fitted on its own
    noise = validate.measurement_noise(mouth, measured)
    assert noise["noise_sd"] == pytest.approx(0.01, rel=0.15)
    assert noise["share_of_residual"] == pytest.approx(1.0, abs=0.2)  # the prediction is perfect: all the miss is noise
    assert noise["r_ceiling"] == pytest.approx(validate.pearson(mouth, measured), abs=0.02)
    worse = validate.measurement_noise(np.cos(2 * np.pi * 0.3 * t), measured)
    assert worse["share_of_residual"] < 0.1  # a wrong prediction misses far more than the noise
    assert validate.measurement_noise(np.zeros(len(t)), measured) == {}


def test_a_dub_voiced_by_kokoro_and_piper_is_replayed_segment_by_segment(tmp_path, tone, monkeypatch):
    from tasks.artifacts import DubbedSegment
    from tasks.media import write_wav
    from tasks.visemes.align import AutoAligner, KokoroAligner, PiperAligner

    wav = write_wav(tmp_path / "voice.wav", tone(3.0), 16000)
    segments = [DubbedSegment(0, 0.2, 1.2, 1.2, "kokoro-jm_kumo-en", 1.0, 1.0, 0.0, "a", "a"),
                DubbedSegment(1, 1.6, 2.6, 2.6, "piper-joe-us", 1.0, 1.0, 0.0, "o", "o")]
    aligner = AutoAligner()
    monkeypatch.setattr(aligner.asr, "align", lambda *a: Alignment([], [], "asr"))
    monkeypatch.setattr(KokoroAligner, "segment_phones", lambda self, s, t: [TimedPhone(0.0, 0.98, "a", "AA")])
    monkeypatch.setattr(PiperAligner, "segment_phones", lambda self, s, t: [TimedPhone(0.0, 0.98, "o", "O")])
    alignment = aligner.align(wav, segments, load_table("en"), {0: "S0", 1: "S1"})
    assert alignment.method == "kokoro+piper-durations"
    assert [(p.symbol, s) for p, s in zip(alignment.phones, alignment.speakers)] == [("a", "S0"), ("o", "S1")]
    assert aligner.align(wav, segments[:1], load_table("en"), {}).method == "kokoro-durations"
    assert aligner.align(wav, segments[1:], load_table("en"), {}).method == "piper-durations"
    other = DubbedSegment(2, 2.7, 2.9, 2.9, "espeak-en", 1.0, 0.2, 0.0, "e", "e")
    assert aligner.align(wav, segments + [other], load_table("en"), {}).method == "asr"


@pytest.mark.parametrize("name,model", [
    ("piper-joe-us", "joe-us"),            # the packaged voice, as PiperVoice names it
    ("piper-en_US-lessac-medium", None),   # a voice from a path: its file is not in the name
    ("kokoro-jm_kumo-en", None),
    ("espeak-en", None),
])
def test_piper_replays_only_the_packaged_voices(name, model):
    from tasks.visemes.align import PiperAligner, piper_model_of

    assert piper_model_of(name) == model
    assert PiperAligner.handles([type("Segment", (), {"voice": name})()]) == (model is not None)


@pytest.mark.parametrize("name, style, language", [
    ("kokoro-jf_tebukuro-es", "jf_tebukuro", "es"),
    ("kokoro-jf_alpha+jm_kumo-pt", "jf_alpha+jm_kumo", "pt"),
    # a fitted voice: signed weights, timbre|prosody halves
    ("kokoro-jf_alpha:0.345+jf_gongitsune:-0.204+jm_kumo:0.859|jm_kumo-es", "jf_alpha:0.345+jf_gongitsune:-0.204+jm_kumo:0.859|jm_kumo", "es"),
])
def test_kokoro_style_of_a_voice_name_replays_what_the_tts_stage_named(name, style, language):
    from tasks.tts.voices import KokoroVoice, style_weights
    from tasks.visemes.align import KokoroAligner, kokoro_style_of

    assert kokoro_style_of(name) == (style, language)
    assert KokoroVoice(language, style).name == name
    style_weights(style)  # a spec the voice accepts
    assert KokoroAligner.handles([type("Segment", (), {"voice": name})()])


def test_a_long_videos_plot_shows_its_start(tmp_path):
    from types import SimpleNamespace

    from PIL import Image

    from tasks.visemes.plot import plot

    rate, fps, seconds = 1000, 25.0, 200.0
    samples = np.sin(np.arange(int(seconds * rate)) / 7.0).astype(np.float32)
    curves = {"gap": np.linspace(0, 1, int(seconds * fps))}
    phones = [SimpleNamespace(start=k * 0.2, end=k * 0.2 + 0.1, phone="a", viseme="AA") for k in range(int(seconds / 0.2))]
    short = Image.open(plot(tmp_path / "short.png", samples, rate, fps, [("S0", curves)], phones, "clip", max_seconds=30.0))
    assert short.width < 6500, "a 30 s figure, not a 200 s one"
    assert Image.open(plot(tmp_path / "long.png", samples[:rate * 20], rate, fps, [("S0", curves)], phones, "clip",
                           max_seconds=30.0)).width < short.width, "a clip shorter than that is drawn whole"
