"""A still photo as input: the portrait becomes a video that speaks the given audio (or a script
voiced by the project's own TTS), which is then registered like any other input video.

A photo has no footage of its own, so every later stage sees an ordinary H.264 video of the
still frame; the lipsync stage finds a bank of one mouth and falls back to warping it.
"""
from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tasks.artifacts import atomic_path
from tasks.media import audio_stream, main_audio, run_ffmpeg, write_wav
from tasks.stage import StageError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
# Bumped when the way a photo becomes a video changes, so that older registrations are rebuilt.
BUILD_VERSION = 1


@dataclass(frozen=True)
class PhotoSettings:
    """conf/ingest `photo`: how a still becomes a video, and what it says."""

    audio: str | None = None
    script: str | None = None
    script_lang: str = "en"
    fps: int = 25
    max_side: int = 1920
    crf: int = 18
    pause_s: float = 0.6
    audio_bitrate: str = "192k"

    @classmethod
    def from_config(cls, config: dict[str, Any] | None) -> "PhotoSettings":
        return cls(**(config or {}))


def is_photo(path: Path | str) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def load_portrait(path: Path, max_side: int):
    """The photo upright (EXIF orientation applied), RGB, at most `max_side` pixels on its longer
    side, cropped by at most one pixel per axis to even dimensions (H.264 in 4:2:0 needs them)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not path.exists():
        raise StageError(f"input not found: {path}")
    try:
        with Image.open(path) as opened:
            image = ImageOps.exif_transpose(opened)
            image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise StageError(f"not a readable image: {path} ({error.__class__.__name__})") from None
    if image.mode in ("RGBA", "LA", "P"):
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    image = image.convert("RGB")
    if max(image.size) > max_side:
        scale = max_side / max(image.size)
        image = image.resize((max(2, round(image.width * scale)), max(2, round(image.height * scale))), Image.LANCZOS)
    width, height = image.width - image.width % 2, image.height - image.height % 2
    if width < 2 or height < 2:
        raise StageError(f"image too small to dub: {path} ({image.width}x{image.height})")
    return image.crop((0, 0, width, height))


def audio_duration(path: Path) -> float:
    """Seconds of the audio stream of `path` to dub (`main_audio`), or a StageError saying why it cannot be used."""
    import av

    if not path.exists():
        raise StageError(f"audio not found: {path}")
    if not path.is_file():
        raise StageError(f"audio is not a file: {path}")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as error:
        raise StageError(f"not a readable audio file: {path} ({error.__class__.__name__})") from None
    with container:
        heard = main_audio(container)
        if heard is None:
            raise StageError(f"no audio stream in {path}")
        stream = heard[1]
        if stream.duration:
            seconds = float(stream.duration * stream.time_base)
        else:  # some containers (raw FLAC, WAV) only know it from decoding
            seconds = sum(frame.samples / frame.sample_rate for frame in container.decode(stream))
    if seconds <= 0.1:
        raise StageError(f"audio too short to dub: {path} ({seconds:.2f} s)")
    return seconds


def read_script(path: Path) -> str:
    if not path.exists():
        raise StageError(f"script not found: {path}")
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (UnicodeDecodeError, IsADirectoryError) as error:
        raise StageError(f"script is not UTF-8 text: {path} ({error.__class__.__name__})") from None
    if not text:
        raise StageError(f"script is empty: {path}")
    return text


def check_request(photo: Path, settings: PhotoSettings) -> None:
    """Raise StageError (one line) unless `photo` can be dubbed with the speech `settings` give."""
    load_portrait(photo, settings.max_side)
    if settings.audio and settings.script:
        raise StageError("give the photo either --audio or --script, not both")
    if settings.audio:
        audio_duration(Path(settings.audio))
    elif settings.script:
        read_script(Path(settings.script))
    else:
        raise StageError(f"{photo.name} is a still photo: give its speech with --audio speech.wav "
                         f"or its words with --script script.txt")


def fingerprint(photo: Path, settings: PhotoSettings, voice: dict[str, Any] | None = None) -> str:
    """What the built video depends on: the photo's and speech's bytes, the build settings and the
    voice config of a script (not the paths), so the same request reuses the registered video."""
    digest = hashlib.sha256()
    build = {**asdict(settings), "audio": None, "script": None, "version": BUILD_VERSION,
             "voice": None if settings.audio else voice}
    digest.update(json.dumps(build, sort_keys=True).encode())
    for path in (photo, Path(settings.audio or settings.script or "")):
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def voice_script(text: str, voice, pause_s: float) -> np.ndarray:
    """The script spoken paragraph by paragraph, with `pause_s` of silence around and between."""
    silence = np.zeros(int(pause_s * voice.sample_rate), dtype=np.float32)
    pieces = [silence]
    for paragraph in (p.strip() for p in text.split("\n\n")):
        if paragraph:
            pieces += [voice.synthesize(" ".join(paragraph.split())), silence]
    return np.concatenate(pieces)


def build_video(photo: Path, speech: Path, target: Path, settings: PhotoSettings) -> Path:
    """Encode the still as a video as long as `speech`, with `speech` as its audio (AAC)."""
    portrait = load_portrait(photo, settings.max_side)
    duration = audio_duration(speech)
    with tempfile.TemporaryDirectory(prefix="photo-") as scratch, atomic_path(target) as tmp:
        still = Path(scratch) / "still.png"
        portrait.save(still)
        run_ffmpeg("-loop", "1", "-framerate", str(settings.fps), "-i", str(still), "-i", str(speech),
                   "-map", "0:v:0", "-map", f"1:a:{audio_stream(speech)}", "-t", f"{duration:.6f}",
                   "-c:v", "libx264", "-tune", "stillimage", "-crf", str(settings.crf), "-pix_fmt", "yuv420p",
                   "-c:a", "aac", "-b:a", settings.audio_bitrate, "-movflags", "+faststart",
                   "-fflags", "+bitexact", "-f", "mp4", str(tmp))
    return target


def build_from_request(photo: Path, settings: PhotoSettings, target: Path, voices: dict[str, Any]) -> Path:
    """The video for `photo`: with the given audio, or with the script voiced in `script_lang` by
    the voice `voices` (conf/tts `voices`) configures for that language."""
    check_request(photo, settings)
    if settings.audio:
        return build_video(photo, Path(settings.audio), target, settings)
    from tasks.stage import instantiate

    voice = instantiate(voices, settings.script_lang)
    speech = voice_script(read_script(Path(settings.script)), voice, settings.pause_s)
    with tempfile.TemporaryDirectory(prefix="script-") as scratch:
        wav = write_wav(Path(scratch) / "speech.wav", speech, voice.sample_rate)
        return build_video(photo, wav, target, settings)
