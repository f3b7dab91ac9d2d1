"""render's ffmpeg command, evaluate's scoring and the artifact round trip (no models)."""
from __future__ import annotations

import json

import pytest

from tasks import artifacts
from tasks.artifacts import ArtifactError, Probe, Segment, Transcript, Word
from tasks.evaluate import normalise, word_error_rate
from tasks.render import RenderSettings, ffmpeg_args, render
from tasks.media import probe, write_wav

PROBE = Probe("in.mp4", 700, 700, 25.0, 150, 6.0, "h264", "aac", 44100, 2)


@pytest.mark.parametrize("codec,settings,expect,absent", [
    ("h264", RenderSettings(), ["-c:v", "copy"], "libx264"),
    ("mpeg4", RenderSettings(), ["libx264", "passthrough"], "copy"),
    ("h264", RenderSettings(container="mov", video_codec="prores_ks", copy_video_codecs=(), audio_codec="pcm_s16le"),
     ["prores_ks", "mov"], "aac"),
])
def test_render_copies_h264_and_encodes_the_rest(tmp_path, codec, settings, expect, absent):
    described = Probe(**{**PROBE.__dict__, "video_codec": codec})
    args = ffmpeg_args(tmp_path / "v.mp4", tmp_path / "a.wav", described, settings, tmp_path / "out")
    for token in expect:
        assert token in args
    assert absent not in args
    assert args[args.index("-t") + 1] == "6.000000"


def test_render_keeps_frames_and_size(generated_clip, tmp_path, tone):
    source = probe(generated_clip)
    write_wav(tmp_path / "speech.wav", tone(source.duration, 44100), 44100)
    out = render(generated_clip, tmp_path / "speech.wav", source, RenderSettings(), tmp_path / "out.mp4")
    result = probe(out)
    assert (result.width, result.height, result.frames) == (source.width, source.height, source.frames)
    assert result.audio_codec == "aac"


@pytest.mark.parametrize("text,expected", [
    ("Olá, Mundo!", "olá mundo"),
    ("  ¿Qué tal?  ", "qué tal"),
    ("l’homme d'affaires.", "l'homme d'affaires"),
])
def test_normalise(text, expected):
    assert normalise(text) == expected


@pytest.mark.parametrize("reference,hypothesis,wer", [
    ("hola mundo", "Hola, mundo.", 0.0),
    ("hola mundo", "hola", 0.5),
    ("a b c d", "a x c d", 0.25),
    ("", "", 0.0),
])
def test_word_error_rate(reference, hypothesis, wer):
    assert word_error_rate(reference, hypothesis) == pytest.approx(wer)


def test_artifacts_round_trip_and_refuse_the_wrong_kind(tmp_path):
    transcript = Transcript("en", 0.99, (Segment(0, 0.0, 1.0, "hi", words=(Word(0.0, 0.5, "hi"),)),), "m")
    path = artifacts.write(tmp_path / "t.json", transcript)
    assert artifacts.read(path, Transcript) == transcript
    with pytest.raises(ArtifactError, match="expected Probe"):
        artifacts.read(path, Probe)
    data = json.loads(path.read_text())
    data["schema"] = 999
    path.write_text(json.dumps(data))
    with pytest.raises(ArtifactError, match="schema"):
        artifacts.read(path, Transcript)


def test_atomic_dir_leaves_nothing_when_interrupted(tmp_path):
    target = tmp_path / "stage" / "out"
    with pytest.raises(KeyboardInterrupt):
        with artifacts.atomic_dir(target) as tmp:
            (tmp / "half.wav").write_bytes(b"x")
            raise KeyboardInterrupt
    assert not target.exists()
    assert list((tmp_path / "stage").iterdir()) == []


@pytest.mark.parametrize("ends,original,within,drift", [
    ([1.0, 3.1], {0: 1.0, 1: 3.0}, 1.0, 0.05),
    ([1.5, 3.0], {0: 1.0, 1: 3.0}, 0.5, 0.25),
])
def test_timing_report_measures_end_drift(ends, original, within, drift):
    from tasks.artifacts import DubbedSegment, DubbedSpeech
    from tasks.evaluate import timing_report

    rows = tuple(DubbedSegment(i, 0.0, end, end + 1, "v", 1.0, end, 0.0, "t") for i, end in enumerate(ends))
    report = timing_report(DubbedSpeech("es", 16000, rows), original)
    assert report["ends_within_300ms"] == within
    assert report["mean_end_drift_s"] == pytest.approx(drift)
