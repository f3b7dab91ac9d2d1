"""render's ffmpeg command, evaluate's scoring and the artifact round trip (no models)."""
from __future__ import annotations

import json
from dataclasses import dataclass

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


class HearsAs:
    """A recogniser double: detects `detected` and says what each language would transcribe."""

    def __init__(self, detected: str, texts: dict[str, str]):
        self.detected, self.texts, self.calls = detected, texts, []

    def transcribe(self, audio, language=None):
        self.calls.append(language)
        said = language or self.detected
        return Transcript(said, 0.5, (Segment(0, 0.0, 1.0, self.texts[said]),))


@pytest.mark.parametrize("detected, calls, wer", [
    ("es", [None], 0.0),           # heard as the dub's language: one transcript
    ("it", [None, "es"], 0.0),     # heard as Italian: the WER from a transcript forced to Spanish
])
def test_the_wer_reads_the_dub_as_its_own_language(detected, calls, wer):
    from tasks.evaluate.__main__ import hear

    reference = "contra el mago que desaparecería"
    recognizer = HearsAs(detected, {"es": reference, "it": "contra il mago che desapareceria"})
    heard, as_dubbed = hear(recognizer, "dub.wav", "es")
    assert recognizer.calls == calls and heard.language == detected
    assert word_error_rate(reference, as_dubbed.text) == wer
    assert word_error_rate(reference, heard.text) == (0.0 if detected == "es" else 0.6)


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


def render_settings(option: str) -> RenderSettings:
    """The render settings a `render=<option>` run uses, as the render stage builds them."""
    from flows.config import compose

    config = compose([f"render={option}"])["render"]
    return RenderSettings(**{**config, "copy_video_codecs": tuple(config["copy_video_codecs"])})


def test_prores_render_is_a_prores_mov_with_pcm_and_every_frame(generated_clip, tmp_path, tone):
    source = probe(generated_clip)
    write_wav(tmp_path / "speech.wav", tone(source.duration, 44100), 44100)
    out = render(generated_clip, tmp_path / "speech.wav", source, render_settings("prores"), tmp_path / "out.mov", "es")
    result = probe(out)
    assert (result.video_codec, result.audio_codec) == ("prores", "pcm_s16le")
    assert (result.width, result.height, result.frames) == (source.width, source.height, source.frames)
    assert stream_summary(out)[1:] == [("audio", "pcm_s16le", "spa", True)]


def stream_summary(path) -> list[tuple[str, str, str, bool]]:
    import av

    with av.open(str(path)) as container:
        return [(s.type, s.codec_context.name, s.metadata.get("language", ""),
                 bool(s.disposition & av.stream.Disposition.default)) for s in container.streams]


def packets(path, kind: str, index: int = 0) -> list[bytes]:
    import av

    with av.open(str(path)) as container:
        stream = getattr(container.streams, kind)[index]
        return [bytes(p) for p in container.demux(stream) if p.size]


@pytest.fixture
def rendered_languages(tmp_path, media_dir, tone):
    """A project root with video "v" rendered in es, pt and fr, its soundtrack and its transcript."""
    from tests.conftest import make_clip

    for lang, seconds in (("es", 1.0), ("pt", 1.0), ("fr", 1.0)):
        folder = tmp_path / "data" / "render" / "v" / lang
        folder.mkdir(parents=True)
        make_clip(folder / f"v.{lang}.mp4", seconds=seconds)
    write_wav(tmp_path / "data" / "ingest" / "v" / "soundtrack.wav", tone(1.0, 44100), 44100)
    artifacts.write(tmp_path / "data" / "asr" / "v" / "transcript.json", Transcript("en", 0.9, ()))
    return tmp_path


def run_multitrack(root, langs, **options):
    from flows.config import compose
    from tasks.render import multitrack
    from tasks.stage import StageContext

    params = compose([f"langs=[{','.join(langs)}]", "multitrack.enabled=true",
                      *(f"multitrack.{key}={value}" for key, value in options.items())])
    multitrack.run(StageContext("multitrack", "v", None, root, params))
    return root / "data" / "multitrack" / "v"


def test_multitrack_has_one_picture_and_a_tagged_track_per_language(rendered_languages):
    out = run_multitrack(rendered_languages, ["es", "pt", "fr"])
    assert stream_summary(out / "v.mul.mp4") == [
        ("video", "h264", "und", True),
        ("audio", "aac", "spa", True), ("audio", "aac", "por", False), ("audio", "aac", "fra", False),
        ("audio", "aac", "eng", False),  # the original soundtrack, in the language ASR heard
    ]
    es = rendered_languages / "data" / "render" / "v" / "es" / "v.es.mp4"
    assert packets(out / "v.mul.mp4", "video") == packets(es, "video"), "the picture is stream-copied"
    assert packets(out / "v.mul.mp4", "audio", 0) == packets(es, "audio"), "the dubs are stream-copied"
    report = json.loads((out / "tracks.json").read_text())
    assert [t["iso639_2"] for t in report["tracks"]] == ["spa", "por", "fra", "eng"]
    assert not [p.name for p in out.parent.iterdir() if p.name.startswith(".")], "a temp folder was left"


def test_multitrack_picture_follows_picture_lang_and_the_original_is_optional(rendered_languages):
    out = run_multitrack(rendered_languages, ["es", "pt"], picture_lang="pt", include_original="false")
    assert [(lang, default) for _, _, lang, default in stream_summary(out / "v.mul.mp4")[1:]] == [("spa", False), ("por", True)]
    pt = rendered_languages / "data" / "render" / "v" / "pt" / "v.pt.mp4"
    assert packets(out / "v.mul.mp4", "video") == packets(pt, "video")


def test_multitrack_refuses_a_missing_language_and_writes_only_its_report_when_off(rendered_languages):
    from flows.config import compose
    from tasks.render import multitrack
    from tasks.stage import StageContext, StageError

    with pytest.raises(StageError, match="no render of v in de"):
        run_multitrack(rendered_languages, ["es", "de"])
    with pytest.raises(StageError, match="picture_lang=fr is not one of"):
        run_multitrack(rendered_languages, ["es", "pt"], picture_lang="fr")
    multitrack.run(StageContext("multitrack", "v", None, rendered_languages, compose(["langs=[es]"])))
    out = rendered_languages / "data" / "multitrack" / "v"
    assert sorted(p.name for p in out.iterdir()) == ["tracks.json"]
    assert json.loads((out / "tracks.json").read_text())["enabled"] is False


# ---------------------------------------------------------------- subtitles

@dataclass(frozen=True)
class Line:
    start: float
    end: float
    text: str


@pytest.mark.parametrize("lines,duration,expected", [
    ([Line(0.5, 2.25, "Hola a todos.")], None, "1\n00:00:00,500 --> 00:00:02,250\nHola a todos.\n"),
    # time order, blank text dropped, whitespace folded
    ([Line(4.0, 5.0, "  segunda \n frase "), Line(1.0, 2.0, ""), Line(0.0, 1.0, "primera")], None,
     "1\n00:00:00,000 --> 00:00:01,000\nprimera\n\n2\n00:00:04,000 --> 00:00:05,000\nsegunda frase\n"),
    # cut at the end of the video; a line after it dropped
    ([Line(3661.0, 3662.5, "tarde"), Line(3663.0, 3664.0, "fuera")], 3662.0, "1\n01:01:01,000 --> 01:01:02,000\ntarde\n"),
    # wrapped at 42 characters, words kept whole
    ([Line(0.0, 3.0, "Mi nombre es Jordi y soy de Barcelona, y amo esta ciudad tanto como el mar.")], None,
     "1\n00:00:00,000 --> 00:00:03,000\nMi nombre es Jordi y soy de Barcelona, y\namo esta ciudad tanto como el mar.\n"),
    ([], None, ""),
])
def test_srt(lines, duration, expected):
    from tasks.render.subtitles import srt

    assert srt(lines, duration) == expected


def test_render_adds_the_dubs_text_as_a_soft_subtitle_track_in_its_language(generated_clip, tmp_path, tone):
    from tasks.media import run_ffmpeg
    from tasks.render.subtitles import srt

    source = probe(generated_clip)
    write_wav(tmp_path / "speech.wav", tone(source.duration, 44100), 44100)
    subtitles = tmp_path / "v.es.srt"
    subtitles.write_text(srt([Line(0.2, 1.0, "Hola."), Line(1.1, 1.9, "¿Qué tal?")]), encoding="utf-8")
    args = ffmpeg_args(generated_clip, tmp_path / "speech.wav", source, RenderSettings(), tmp_path / "o.mp4", "es", subtitles)
    assert args[args.index("-c:s") + 1] == "mov_text" and "2:s:0" in args
    out = render(generated_clip, tmp_path / "speech.wav", source, RenderSettings(), tmp_path / "out.mp4", "es", subtitles)
    assert [row[:3] for row in stream_summary(out)[1:]] == [("audio", "aac", "spa"), ("subtitle", "mov_text", "spa")]
    run_ffmpeg("-i", str(out), "-map", "0:s:0", str(tmp_path / "back.srt"))
    assert (tmp_path / "back.srt").read_text(encoding="utf-8").split() == subtitles.read_text(encoding="utf-8").split()
    assert (probe(out).width, probe(out).frames) == (source.width, source.frames)


def test_multitrack_carries_each_dubs_subtitles(rendered_languages, tone):
    from tasks.render.subtitles import srt

    source = probe(rendered_languages / "data" / "render" / "v" / "es" / "v.es.mp4")
    for lang, text in (("es", "Hola."), ("pt", "Olá.")):
        folder = rendered_languages / "data" / "render" / "v" / lang
        original = folder / f"v.{lang}.mp4"
        plain = original.rename(folder / "plain.mp4")
        write_wav(folder / "speech.wav", tone(source.duration, 44100), 44100)
        (folder / f"v.{lang}.srt").write_text(srt([Line(0.1, 0.9, text)]), encoding="utf-8")
        render(plain, folder / "speech.wav", source, RenderSettings(), original, lang, folder / f"v.{lang}.srt")
        plain.unlink()
        (folder / "speech.wav").unlink()
    out = run_multitrack(rendered_languages, ["es", "pt"], include_original="false")
    assert [row[:3] for row in stream_summary(out / "v.mul.mp4")] == [
        ("video", "h264", "und"), ("audio", "aac", "spa"), ("audio", "aac", "por"),
        ("subtitle", "mov_text", "spa"), ("subtitle", "mov_text", "por")]
    assert [row[3] for row in stream_summary(out / "v.mul.mp4")][1:3] == [True, False]   # the picture's language first


@pytest.mark.parametrize("basis, still", [
    ({"S0": "still picture: order"}, True),                          # a portrait
    ({"S0": "still picture: stereo", "S1": "still picture: stereo"}, True),
    ({"S0": "sync"}, False),
    ({"S0": "chosen"}, False),                                        # chosen by hand in a video
    ({"S0": "chosen, still picture"}, True),                          # ... in a photo
    ({}, False),                                                      # tracks.json of before the basis
])
def test_a_source_whose_mouths_never_move_is_no_lip_sync_reference(tmp_path, basis, still):
    from tasks.evaluate.__main__ import source_is_still
    from tasks.face.schema import FaceTracks, write_tracks

    write_tracks(tmp_path / "tracks.json", FaceTracks("v", 640, 360, 25.0, 10, "test", (), (), {}, speaker_basis=basis))
    assert source_is_still(tmp_path) is still
