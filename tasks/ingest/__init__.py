"""ingest: probe the container and extract the audio every later stage listens to.

Outputs in `data/ingest/<video>/`: `probe.json` (fps, size, frame count, duration), `audio.wav`
(16 kHz mono, for recognition), `soundtrack.wav` (the original track at its own rate, which
the dub is mixed into) and, with a `background` separator configured, `background.wav` (that track
with its speech taken out: what plays under the dub, `tasks.ingest.background`); for a source whose
frames drift from k / fps (a variable frame rate), whose size is odd or whose picture is not its
first video stream (a cover picture before it), `picture.mkv`, its picture at a constant rate and an
even size, which every stage reads instead (`stage.picture_video`).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from tasks import artifacts
from tasks.artifacts import Probe
from tasks.media import SPEECH_RATE, extract_audio, picture_copy, probe, read_wav, write_wav

PICTURE = "picture.mkv"   # the picture the stages read where the source's own will not do (see `ingest`)
BACKGROUND = "background.wav"  # the soundtrack without its speech (see `ingest`)


def ingest(source: Path, out: Path, max_channels: int = 2, background=None) -> Probe:
    """Probe `source`, extract its sound (and, given a `background` separator, the sound without its
    speech), and where its frames drift from k / fps (a variable frame rate), its size is odd or its
    picture is not its first video stream, write the picture the stages read instead: that stream, at
    a constant rate, cropped by a pixel to an even size."""
    description = probe(source)
    width, height = description.width // 2 * 2, description.height // 2 * 2
    if needs_picture_copy(description):
        frames = picture_copy(source, out / PICTURE, None if description.constant_rate else description.fps, width, height,
                              description.video_stream)
        description = replace(description, width=width, height=height, frames=frames,
                              duration=round(frames / description.fps, 6) if not description.constant_rate else description.duration)
    artifacts.write(out / "probe.json", description)
    extract_audio(source, out / "audio.wav", SPEECH_RATE, 1)
    extract_audio(source, out / "soundtrack.wav", None, min(description.audio_channels, max_channels))
    if background is not None:
        samples, rate = read_wav(out / "soundtrack.wav")
        write_wav(out / BACKGROUND, background.background(samples, rate), rate)
    return description


def needs_picture_copy(description: Probe) -> bool:
    """Whether the stages cannot read the source's own picture: frames off k / fps (a variable
    rate), an odd size, or a picture that is not the first video stream (ffmpeg's and OpenCV's)."""
    odd = description.width % 2 or description.height % 2
    return not description.constant_rate or bool(odd) or description.video_stream != 0
