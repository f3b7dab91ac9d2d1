"""render: mux the (possibly lip-synced) video with the dubbed audio into the delivery file.

The video stream is copied bit for bit when nothing upstream changed it and its codec already
fits the container; otherwise it is encoded with the configured codec, frame for frame
(`-fps_mode passthrough`), so the output keeps the source's resolution, frame count and duration.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tasks.artifacts import Probe, atomic_path
from tasks.media import run_ffmpeg
from tasks.render.languages import iso639_2
from tasks.stage import StageError, stage_dir

CONTAINERS = ("mp4", "mov")


@dataclass(frozen=True)
class RenderSettings:
    container: str = "mp4"
    video_codec: str = "libx264"
    copy_video_codecs: tuple[str, ...] = ("h264",)
    crf: int = 18
    preset: str = "medium"
    pixel_format: str = "yuv420p"
    prores_profile: int = 3
    audio_codec: str = "aac"
    audio_bitrate: str = "192k"
    subtitles: bool = True          # the dub's text as a soft subtitle track, and `<video>.<lang>.srt` beside it


def rendered_file(root: Path, video: str, lang: str) -> Path:
    """The delivery file the render stage wrote for `video` in `lang` (`<video>.<lang>.mp4` or `.mov`)."""
    folder = stage_dir(root, "render", video, lang)
    for container in CONTAINERS:
        if (folder / f"{video}.{lang}.{container}").exists():
            return folder / f"{video}.{lang}.{container}"
    raise StageError(f"no render of {video} in {lang} under {folder}: run the render stage first")


def ffmpeg_args(video: Path, audio: Path, probe: Probe, settings: RenderSettings, target: Path,
                language: str | None = None, subtitles: Path | None = None) -> list[str]:
    """`language` (ISO 639-1) tags the audio track, so players name the dub's language. `subtitles`
    (an SRT file) becomes a soft subtitle track in that language (a viewer switches it on or off)."""
    args = ["-i", str(video), "-t", f"{probe.duration:.6f}", "-i", str(audio)]
    args += ["-i", str(subtitles)] if subtitles else []
    args += ["-map", "0:v:0", "-map", "1:a:0"]
    args += ["-map", "2:s:0", "-c:s", "mov_text"] if subtitles else []
    if probe.video_codec in settings.copy_video_codecs:
        args += ["-c:v", "copy"]
    elif settings.video_codec == "prores_ks":
        args += ["-c:v", "prores_ks", "-profile:v", str(settings.prores_profile), "-fps_mode", "passthrough"]
    else:
        args += ["-c:v", settings.video_codec, "-crf", str(settings.crf), "-preset", settings.preset,
                 "-pix_fmt", settings.pixel_format, "-fps_mode", "passthrough"]
    args += ["-c:a", settings.audio_codec]
    if settings.audio_codec == "aac":
        args += ["-b:a", settings.audio_bitrate]
    if language:
        args += ["-metadata:s:a:0", f"language={iso639_2(language)}"]
        args += ["-metadata:s:s:0", f"language={iso639_2(language)}"] if subtitles else []
    if settings.container == "mp4":
        args += ["-movflags", "+faststart"]
    return [*args, "-f", settings.container, str(target)]


def render(video: Path, audio: Path, probe: Probe, settings: RenderSettings, target: Path,
           language: str | None = None, subtitles: Path | None = None) -> Path:
    with atomic_path(target) as tmp:
        run_ffmpeg(*ffmpeg_args(video, audio, probe, settings, tmp, language, subtitles))
    return target
