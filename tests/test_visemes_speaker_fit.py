"""The per-speaker target fit (tasks/visemes/speaker_fit.py): recovery, shrinkage, honest splits,
the dub-side checks with fitted targets, and the stage recording the fit in visemes.json."""
from __future__ import annotations

import numpy as np
import pytest
import yaml

from tasks.visemes import schema
from tasks.visemes.align import Alignment, spread
from tasks.visemes.calibration import measured_curves
from tasks.visemes.coarticulation import Dominance, TimedPhone
from tasks.visemes.curves import Loudness, check, compute_curves
from tasks.visemes.smoothing import Smoothing
from tasks.visemes.speaker_fit import SpeakerFit, basis, fit_param, fit_speaker, fit_targets, time_folds, with_targets
from tasks.visemes.tables import SILENCE, TABLES_DIR, load_table

FPS = 25.0
SPOKEN = ["PP", "AA", "DD", "I", "SS", "E", "KK", "O", "U", "LL", "FF", "AX"]


def sentence(seconds: float, seed: int, classes=SPOKEN, pause_every: int = 12) -> list[TimedPhone]:
    """Random phones of the given classes, 60-140 ms each, with a 0.4 s pause every few phones."""
    rng = np.random.default_rng(seed)
    phones, t, count = [], 0.3, 0
    while t < seconds - 0.5:
        length = rng.uniform(0.06, 0.14)
        viseme = classes[rng.integers(len(classes))]
        phones.append(TimedPhone(t, t + length, viseme.lower(), viseme))
        t += length
        count += 1
        if count % pause_every == 0:
            t += 0.4
    return phones


def speaker_curve(phones, table, frames, truth: dict[str, float], noise: float, seed: int) -> np.ndarray:
    """What a speaker whose lip gap aims at `truth` shows, in 'inter-ocular' units, with landmark noise."""
    own = with_targets(table, "gap", truth)
    curve = compute_curves(phones, own, FPS, frames).params["gap"]
    return 0.02 + 0.25 * curve + np.random.default_rng(seed).normal(0.0, noise, frames)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("changed", [{"I": 0.55, "DD": 0.5, "SS": 0.4}, {"E": 0.3, "O": 0.35, "U": 0.05}])
def test_a_speaker_with_known_targets_is_recovered(seed, changed):
    table = load_table("en")
    truth = {**{c: table.classes[c].target["gap"] for c in table.classes}, **changed}
    frames = int(60 * FPS)
    phones = sentence(60.0, seed)
    measured = speaker_curve(phones, table, frames, truth, 0.005, seed)
    fitted = fit_speaker(phones, table, FPS, frames, {"gap": measured}, SpeakerFit(strength=1.0))["gap"]
    # the fit is in 0..1 of the measured 5th-95th percentile range: the truth up to one common
    # scale, and clipped at 1 (as the stage's curves are)
    classes = [c for c in SPOKEN if c != "PP" and fitted[c] < 0.99]
    assert len(classes) >= 8 and all(c in classes for c in changed)
    got, want = np.array([fitted[c] for c in classes]), np.array([truth[c] for c in classes])
    scale = float(got @ want / (want @ want))
    assert np.max(np.abs(got - scale * want)) < 0.05
    for name, value in changed.items():  # every changed class moved away from the table, to the truth
        table_value = table.classes[name].target["gap"]
        assert abs(fitted[name] / scale - value) < 0.3 * abs(table_value - value)


@pytest.mark.parametrize("strength", [10.0, 20.0, 40.0])
def test_a_class_seen_on_few_frames_keeps_the_table_target(strength):
    table = load_table("en")
    phones = sentence(40.0, 3, classes=["AA", "DD", "E", "PP"])
    phones.append(TimedPhone(39.0, 39.06, "i", "I"))  # one short /i/ in 40 s
    frames = int(40 * FPS)
    truth = {c: table.classes[c].target["gap"] for c in table.classes} | {"I": 1.0}
    fitted = fit_speaker(phones, table, FPS, frames, {"gap": speaker_curve(phones, table, frames, truth, 0.005, 3)},
                         SpeakerFit(strength=strength))["gap"]
    table_value = table.classes["I"].target["gap"]
    assert abs(fitted["I"] - table_value) < 0.25 * (1.0 - table_value)  # not a quarter of the way to what it showed
    assert all(fitted[c] == pytest.approx(table.classes[c].target["gap"], abs=1e-3) for c in ("U", "O", "SH"))  # never seen


def test_ridge_is_the_table_without_evidence_and_least_squares_without_strength():
    rng = np.random.default_rng(0)
    design = rng.uniform(0, 1, (200, 3))
    truth, prior = np.array([0.2, 0.5, 0.9]), np.array([0.4, 0.4, 0.4])
    observed = design @ truth
    assert fit_targets(design, observed, prior, 1e-9) == pytest.approx(truth, abs=1e-6)
    assert fit_targets(design, observed, prior, 1e9) == pytest.approx(prior, abs=1e-4)
    observed[:50] = np.nan  # unmeasured frames are left out, not read as zero
    assert fit_targets(design, observed, prior, 1e-9) == pytest.approx(truth, abs=1e-6)


def test_too_few_measured_frames_fit_nothing():
    table = load_table("en")
    phones = sentence(4.0, 0)
    frames = int(4 * FPS)
    measured = np.full(frames, np.nan)
    measured[:30] = 0.1
    assert fit_speaker(phones, table, FPS, frames, {"gap": measured}, SpeakerFit(min_frames=50)) == {}


@pytest.mark.parametrize("frames, blocks, guard", [(100, 2, 12), (123, 4, 12), (300, 6, 0)])
def test_held_out_blocks_tile_the_clip_and_never_train_on_test_frames(frames, blocks, guard):
    folds = list(time_folds(frames, blocks, guard))
    assert len(folds) == blocks
    tested = np.sum([test for _, test in folds], axis=0)
    assert np.all(tested == 1)  # every frame predicted exactly once
    for train, test in folds:
        assert not np.any(train & test)
        where = np.flatnonzero(test)
        near = np.zeros(frames, bool)
        near[max(0, where[0] - guard):min(frames, where[-1] + guard + 1)] = True
        assert not np.any(train & near)


def test_the_fit_does_not_read_the_held_out_frames():
    table = load_table("en")
    phones = sentence(20.0, 5)
    frames = int(20 * FPS)
    measured = speaker_curve(phones, table, frames, {"I": 0.8}, 0.005, 5)
    classes, design = basis(phones, table, FPS, frames, "gap")
    train, test = next(time_folds(frames, 2, 12))
    first = fit_param(classes, design, measured, train, table, "gap", SpeakerFit())
    scrambled = measured.copy()
    scrambled[test] = np.random.default_rng(0).uniform(0, 5, test.sum())
    assert fit_param(classes, design, scrambled, train, table, "gap", SpeakerFit()) == first


def test_basis_reproduces_the_stage_curve():
    table = load_table("en")
    phones = sentence(10.0, 7)
    frames = int(10 * FPS)
    classes, design = basis(phones, table, FPS, frames, "gap")
    prior = np.array([table.classes[c].target["gap"] for c in classes])
    assert design @ prior == pytest.approx(compute_curves(phones, table, FPS, frames).params["gap"], abs=1e-9)


@pytest.mark.parametrize("targets", [{"PP": 1.0, "sil": 1.0, "FF": 1.0}, {c: 1.0 for c in SPOKEN + [SILENCE]},
                                     {c: 0.0 for c in SPOKEN + [SILENCE]}])
@pytest.mark.parametrize("lang", ["es", "en"])
def test_dub_checks_hold_whatever_the_fitted_targets(targets, lang):
    """Bilabials close, long pauses close and no frame jumps beyond max_step with any fitted targets:
    the closures and the slew limit come after the blend."""
    table = with_targets(load_table(lang), "gap", targets)
    phones = sentence(12.0, 11, pause_every=6)
    smoothing = Smoothing(max_step=0.5, settle_s=0.25)
    curves = compute_curves(phones, table, FPS, int(12 * FPS), Dominance(0.16, 0.12), smoothing)
    result = check(curves, table, 0.1, smoothing.min_pause_s, smoothing.max_step)
    assert result["bilabials"] > 5 and result["long_pauses"] > 3 and result["ok"]


def _face(gap: float) -> np.ndarray:
    lm = np.zeros((68, 2))
    lm[36:42] = [0.0, 0.0]
    lm[42:48] = [1.0, 0.0]
    lm[33], lm[8], lm[48], lm[54] = [0.5, 0.6], [0.5, 1.8], [0.1, 1.2], [0.9, 1.2]
    for top, bottom in ((61, 67), (62, 66), (63, 65)):
        lm[top], lm[bottom] = [0.5, 1.2 - gap / 2], [0.5, 1.2 + gap / 2]
    return lm


def test_measured_curves_place_each_frame_and_leave_out_others_and_hidden_mouths(tmp_path):
    path = tmp_path / "faces.npz"
    gaps = [0.1, 0.2, 0.3, 0.4]
    np.savez(path, landmarks_raw=np.stack([_face(g) for g in gaps]), frame=np.array([0, 2, 2, 5]), track=np.array([0, 0, 1, 0]),
             visibility=np.array([1.0, 1.0, 1.0, 0.1]), pose=np.zeros((4, 3)))
    gap = measured_curves(path, 6, track=0)["gap"]
    assert gap[[0, 2]] == pytest.approx([0.1, 0.2]) and np.isnan(gap[[1, 3, 4, 5]]).all()
    assert measured_curves(path, 6, track=1)["gap"][2] == pytest.approx(0.3)


class SourceAligner:
    """Phones from given IPA (no models): the dub from the segments, the source from each word's text read as IPA."""

    def __init__(self, **_):
        self.asr = self

    def align_audio(self, audio, table, words):
        return [p for start, end, text in words for p in spread(table.tokenize(text), start, end)]

    def align(self, audio, segments, table, speaker_of, retiming=None):
        phones = [p for s in segments for p in spread(table.tokenize(s.phonemes), s.start, s.start + s.duration)]
        return Alignment(phones, ["S0"] * len(phones), "fake")


def test_stage_fits_the_source_speaker_and_records_the_targets(tmp_path, tone):
    from tasks import artifacts
    from tasks.artifacts import DubbedSegment, DubbedSpeech, Probe, Segment, Transcript, Word
    from tasks.media import write_wav
    from tasks.stage import StageContext
    from tasks.visemes.__main__ import run

    seconds, frames = 12.0, 300
    data = tmp_path / "data"
    words = []
    t = 0.3
    for k in range(40):  # "ti" and "ba" words: this speaker opens wide on /i/ (table 0.3)
        words.append(Word(round(t, 3), round(t + 0.2, 3), "ti" if k % 2 else "ba"))
        t += 0.28
    table = load_table("en")
    source_phones = [p for w in words for p in spread(table.tokenize(w.text), w.start, w.end)]
    truth = {c: table.classes[c].target["gap"] for c in table.classes} | {"I": 0.9, "DD": 0.7}
    gap = speaker_curve(source_phones, table, frames, truth, 0.003, 0)
    (data / "face" / "clip").mkdir(parents=True)
    np.savez(data / "face" / "clip" / "faces.npz",
             landmarks_raw=np.stack([_face(g) for g in gap]), frame=np.arange(frames), track=np.zeros(frames, int))
    artifacts.write(data / "asr" / "clip" / "transcript.json", Transcript("en", 1.0, (Segment(0, 0.3, t, "", "S0", tuple(words)),)))
    write_wav(data / "ingest" / "clip" / "audio.wav", tone(seconds), 16000)
    artifacts.write(data / "ingest" / "clip" / "probe.json", Probe("x.mp4", 64, 64, FPS, frames, seconds, "h264", "aac", 44100, 1))
    write_wav(data / "tts" / "clip" / "es" / "voice.wav", tone(seconds), 16000)
    artifacts.write(data / "tts" / "clip" / "es" / "segments.json", DubbedSpeech("es", 44100, (
        DubbedSegment(0, 0.5, 3.0, 3.0, "v", 1.0, 2.5, 0.0, "mi tía", "mi tˈia"),)))
    config = yaml.safe_load((TABLES_DIR.parent / "default.yaml").read_text())
    config.update(aligner={"_target_": "tests.test_visemes_speaker_fit.SourceAligner"}, plot=False)
    config["speaker_fit"] = {**config["speaker_fit"], "enabled": True}
    run(StageContext("visemes", "clip", "es", tmp_path, {"visemes": config}))
    speaker = schema.read(data / "visemes" / "clip" / "es" / "visemes.json").speakers[0]
    targets = speaker.calibration.targets["gap"]
    table_gap = {c: table.classes[c].target["gap"] for c in ("I", "DD", "AA")}
    assert targets["I"] > table_gap["I"] + 0.1 and targets["DD"] > table_gap["DD"]
    assert targets["AA"] - targets["I"] < table_gap["AA"] - table_gap["I"] - 0.1  # /i/ nearly as open as /a/, as shown
    assert targets["O"] == pytest.approx(table.classes["O"].target["gap"], abs=1e-3)  # never said: the table's
    assert speaker.checks["ok"]
    config["speaker_fit"]["enabled"] = False
    run(StageContext("visemes", "clip", "es", tmp_path, {"visemes": config}))
    plain = schema.read(data / "visemes" / "clip" / "es" / "visemes.json").speakers[0]
    assert plain.calibration.targets == {}

    def on_i(curves):  # the dub's /i/ opens as this speaker's /i/ did
        return max(g for g, label in zip(curves.params["gap"], curves.labels) if label == "I")

    assert on_i(speaker) > on_i(plain) + 0.05


def test_validator_scores_the_fit_on_held_out_blocks_only():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "scripts" / "visemes_validate.py"
    spec = importlib.util.spec_from_file_location("visemes_validate", path)
    validate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(validate)
    table = load_table("en")
    frames = int(40 * FPS)
    phones = sentence(40.0, 9)
    truth = {c: table.classes[c].target["gap"] for c in table.classes} | {"I": 0.8, "DD": 0.7, "SS": 0.6}
    measured = speaker_curve(phones, table, frames, truth, 0.01, 9)
    settings = {"dominance": Dominance(), "smoothing": Smoothing(), "loudness": Loudness(gain=0.0),
                "speaker_fit": SpeakerFit(strength=5.0)}
    times = np.arange(frames) / FPS
    result = validate.heldout_check(phones, table, FPS, frames, times, measured, None, settings, blocks=4)
    assert len(result["per_block_current_vs_heldout"]) == 4 and all(fitted for _, _, fitted in result["per_block_current_vs_heldout"])
    assert result["r_heldout"] > result["r_current"] + 0.03
    assert abs(result["best_lag_ms_heldout"]) <= 40
    # a speaker who follows the table gains nothing on held-out frames
    plain = validate.heldout_check(phones, table, FPS, frames, times, speaker_curve(phones, table, frames, {}, 0.01, 9), None,
                                   settings, blocks=4)
    assert plain["r_heldout"] == pytest.approx(plain["r_current"], abs=0.02)
