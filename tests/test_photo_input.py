"""A still photo as input: checks, the video it becomes, its registration, the CLI, and (slow) a
real photo dubbed end to end, then re-rendered as ProRes."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from flows.config import PHOTO_STAMP, compose, register_photo
from tasks.ingest.photo import PhotoSettings, build_video, check_request, fingerprint, load_portrait
from tasks.media import probe, run_ffmpeg, write_wav
from tasks.stage import StageError, source_video
from tests.conftest import make_workspace, run_dub, shared_media


def save_image(path: Path, size: tuple[int, int], mode: str = "RGB", exif_orientation: int | None = None) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (size[1], size[0], len(mode)), dtype=np.uint8)
    image = Image.fromarray(pixels.squeeze(), mode)
    if exif_orientation:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        image.save(path, exif=exif)
    else:
        image.save(path)
    return path


@pytest.fixture
def speech(tmp_path, tone) -> Path:
    return write_wav(tmp_path / "speech.wav", tone(1.5, 22050), 22050)


@pytest.fixture
def photo(tmp_path) -> Path:
    return save_image(tmp_path / "portrait.png", (161, 121))


def test_portrait_is_cropped_to_even_size_upright_and_bounded(tmp_path):
    assert load_portrait(save_image(tmp_path / "odd.png", (161, 121)), 1920).size == (160, 120)
    # EXIF orientation 6: the camera was turned, the picture is shown rotated by 90 degrees
    assert load_portrait(save_image(tmp_path / "turned.jpg", (200, 100), exif_orientation=6), 1920).size == (100, 200)
    assert load_portrait(save_image(tmp_path / "big.png", (800, 400)), 400).size == (400, 200)
    assert load_portrait(save_image(tmp_path / "alpha.png", (40, 30), "RGBA"), 1920).mode == "RGB"


def test_photo_becomes_a_video_as_long_as_its_speech(photo, speech, tmp_path):
    video = build_video(photo, speech, tmp_path / "portrait.mp4", PhotoSettings(fps=25))
    description = probe(video)
    assert (description.width, description.height) == (160, 120)
    assert (description.video_codec, description.audio_codec) == ("h264", "aac")
    assert description.fps == pytest.approx(25.0)
    assert description.duration == pytest.approx(1.5, abs=0.05)
    assert description.frames == pytest.approx(1.5 * 25, abs=1)


@pytest.mark.parametrize("make_settings,message", [
    (lambda d, s: PhotoSettings(), "is a still photo: give its speech with --audio"),
    (lambda d, s: PhotoSettings(audio=str(d / "missing.wav")), "audio not found"),
    (lambda d, s: PhotoSettings(audio=str((d / "notes.wav").write_text("text") and d / "notes.wav")), "readable audio|no audio stream"),
    (lambda d, s: PhotoSettings(audio=str(s), script=str(s)), "either --audio or --script"),
    (lambda d, s: PhotoSettings(script=str(d / "missing.txt")), "script not found"),
    (lambda d, s: PhotoSettings(script=str((d / "empty.txt").write_text(" \n") and d / "empty.txt")), "script is empty"),
])
def test_bad_photo_requests_raise_one_clear_error(photo, speech, tmp_path, make_settings, message):
    with pytest.raises(StageError, match=message):
        check_request(photo, make_settings(tmp_path, speech))


def test_unreadable_image(tmp_path, speech):
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(StageError, match="not a readable image"):
        check_request(tmp_path / "broken.jpg", PhotoSettings(audio=str(speech)))


def test_fingerprint_follows_content_not_paths(photo, speech, tmp_path, tone):
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    same = PhotoSettings(audio=str(shutil.copy(speech, moved / "other_name.wav")))
    assert fingerprint(photo, PhotoSettings(audio=str(speech))) == fingerprint(Path(shutil.copy(photo, moved)), same)
    louder = write_wav(tmp_path / "louder.wav", 2 * tone(1.5, 22050), 22050)
    assert fingerprint(photo, PhotoSettings(audio=str(speech))) != fingerprint(photo, PhotoSettings(audio=str(louder)))
    assert fingerprint(photo, PhotoSettings(audio=str(speech))) != fingerprint(photo, PhotoSettings(audio=str(speech), fps=30))
    script = PhotoSettings(script=str(speech))
    assert fingerprint(photo, script, {"style": "a"}) != fingerprint(photo, script, {"style": "b"}), "a new voice re-voices"


def test_registration_builds_once_and_rebuilds_when_the_speech_changes(photo, speech, tmp_path, tone):
    config = compose([f"ingest.photo.audio={speech}"])
    assert register_photo(photo, config, tmp_path) == "portrait"
    registered = source_video(tmp_path, "portrait")
    assert registered.name == "portrait.mp4" and (registered.parent / PHOTO_STAMP).exists()
    first = registered.stat().st_mtime_ns
    register_photo(photo, config, tmp_path)
    assert registered.stat().st_mtime_ns == first, "the same request must keep the registered file"
    longer = write_wav(tmp_path / "longer.wav", tone(2.5, 22050), 22050)
    register_photo(photo, compose([f"ingest.photo.audio={longer}"]), tmp_path)
    assert probe(registered).duration == pytest.approx(2.5, abs=0.05)
    assert sorted(p.name for p in registered.parent.iterdir()) == [PHOTO_STAMP, "portrait.mp4"]


def test_cli_turns_a_path_and_options_into_overrides(tmp_path):
    from flows.cli import expand_arguments

    photo, audio = tmp_path / "my photo.jpg", tmp_path / "it's.wav"
    config = compose(expand_arguments([str(photo), "--audio", str(audio), "langs=[es]"]))
    assert (config["input"], config["ingest"]["photo"]["audio"], config["langs"]) == (str(photo), str(audio), ["es"])
    script = compose(expand_arguments([str(photo), f"--script={tmp_path / 'words.txt'}"]))
    assert script["ingest"]["photo"]["script"] == str(tmp_path / "words.txt")


@pytest.mark.parametrize("args,message", [
    (lambda d, p, s: [str(p), "langs=[es]"], "is a still photo: give its speech with --audio"),
    (lambda d, p, s: [str((d / "x.jpg").write_text("no") and d / "x.jpg"), "--audio", str(s)], "not a readable image"),
    (lambda d, p, s: [str(p), "--audio", str(d / "missing.wav")], "audio not found"),
    (lambda d, p, s: [str(p), "--audio", "langs=[es]"], "--audio needs a file"),
    (lambda d, p, s: [str(p), "--voice", "x"], "unknown option --voice"),
    (lambda d, p, s: [str(p), "--script", str((d / "w.txt").write_text("Hola.") and d / "w.txt"), "ingest.photo.script_lang=xx"],
     "no voice for the script's language xx"),
])
def test_cli_refuses_bad_photo_input_in_one_line(photo, speech, tmp_path, args, message):
    result = run_dub(tmp_path, *args(tmp_path, photo, speech), timeout=120)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("dub: error:") and message in lines[0], result.stderr
    assert not (tmp_path / "data").exists()


@pytest.mark.slow
def test_a_script_is_voiced_by_the_projects_own_tts(photo, tmp_path):
    (tmp_path / "words.txt").write_text("Good morning.\n\nThis portrait is speaking.\n")
    config = compose([f"ingest.photo.script={tmp_path / 'words.txt'}", "ingest.photo.script_lang=en"])
    register_photo(photo, config, tmp_path)
    from tasks.media import read_wav

    run_ffmpeg("-i", str(source_video(tmp_path, "portrait")), "-vn", str(tmp_path / "heard.wav"))
    samples, rate = read_wav(tmp_path / "heard.wav")
    loud = np.abs(samples[:, 0]) > 0.05
    assert 2.0 < len(samples) / rate < 8.0
    assert loud[: int(0.5 * rate)].sum() == 0, "the script starts after a pause"
    assert loud.mean() > 0.05, "the script is actually spoken"


# ------------------------------------------------------------------------------- end to end (slow)

PHOTO = "photo/obama.jpg"
AUDIO = "audio/ljspeech_en.wav"


def ran_stages(output: str) -> set[str]:
    """Stage items the flow ran (it logs `running -m tasks.<module> --video V [--lang L]`)."""
    found = re.findall(r"running -m tasks\.([\w.]+) --video (\w+)(?: --lang (\w+))?", output)
    return {f"{module.split('.')[-1]}@{video}" + (f"-{lang}" if lang else "") for module, video, lang in found}


def audio_tracks(path: Path) -> list[tuple[str, str, bool]]:
    import av

    with av.open(str(path)) as container:
        return [(s.codec_context.name, s.metadata.get("language", ""), bool(s.disposition & av.stream.Disposition.default))
                for s in container.streams.audio]


@pytest.fixture(scope="module")
def photo_dub(tmp_path_factory):
    """obama.jpg speaking the first sentence of the LJSpeech clip, dubbed to Spanish."""
    portrait, audio = shared_media(PHOTO), shared_media(AUDIO)
    root = tmp_path_factory.mktemp("photo_dub")
    speech = root / "speech.wav"
    run_ffmpeg("-i", str(audio), "-t", "4.2", str(speech))  # "Printing, in the only sense ... concerned,"
    workspace = make_workspace(root / "workspace")
    args = [str(portrait), "--audio", str(speech), "langs=[es]", "multitrack.enabled=true", "evaluate.lipsync=false"]
    result = run_dub(workspace, *args)
    assert result.returncode == 0, result.stderr[-3000:]
    return workspace, portrait, args


@pytest.mark.slow
def test_photo_dub_is_a_video_of_the_photo_speaking_the_dubbed_language(photo_dub):
    from PIL import Image

    workspace, portrait, _ = photo_dub
    width, height = Image.open(portrait).size
    result = probe(workspace / "data" / "render" / "obama" / "es" / "obama.es.mp4")
    assert (result.width, result.height) == (width - width % 2, height - height % 2)
    assert (result.video_codec, result.audio_codec) == ("h264", "aac")
    assert result.duration == pytest.approx(4.2, abs=0.1)
    metrics = json.loads((workspace / "data" / "evaluate" / "obama" / "es" / "metrics.json").read_text())
    assert metrics["language_ok"] == 1.0, metrics
    tracks = audio_tracks(workspace / "data" / "multitrack" / "obama" / "obama.mul.mp4")
    assert tracks == [("aac", "spa", True), ("aac", "eng", False)]


@pytest.mark.slow
def test_same_photo_request_again_runs_nothing(photo_dub):
    workspace, _, args = photo_dub
    result = run_dub(workspace, *args)
    assert result.returncode == 0, result.stderr[-3000:]
    assert ran_stages(result.stdout + result.stderr) == set()


@pytest.mark.slow
def test_prores_rerenders_only_render_and_after(photo_dub):
    workspace, _, args = photo_dub
    result = run_dub(workspace, *args, "render=prores")
    assert result.returncode == 0, result.stderr[-3000:]
    assert ran_stages(result.stdout + result.stderr) == {"render@obama-es", "evaluate@obama-es", "multitrack@obama"}
    source = probe(source_video(workspace, "obama"))
    mov = probe(workspace / "data" / "render" / "obama" / "es" / "obama.es.mov")
    assert (mov.video_codec, mov.audio_codec) == ("prores", "pcm_s16le")
    assert (mov.width, mov.height, mov.frames) == (source.width, source.height, source.frames)
    tracks = audio_tracks(workspace / "data" / "multitrack" / "obama" / "obama.mul.mov")
    assert tracks == [("pcm_s16le", "spa", True), ("pcm_s16le", "eng", False)]


@pytest.mark.slow
def test_multitrack_settings_rerun_only_multitrack(photo_dub):
    workspace, _, args = photo_dub
    result = run_dub(workspace, *args, "render=prores", "multitrack.include_original=false")
    assert result.returncode == 0, result.stderr[-3000:]
    assert ran_stages(result.stdout + result.stderr) == {"multitrack@obama"}
    assert audio_tracks(workspace / "data" / "multitrack" / "obama" / "obama.mul.mov") == [("pcm_s16le", "spa", True)]
