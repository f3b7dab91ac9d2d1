"""ingest: probe the container and extract the audio every later stage listens to.

Outputs in `data/ingest/<video>/`: `probe.json` (fps, size, frame count, duration), `audio.wav`
(16 kHz mono, for recognition), `soundtrack.wav` (the original track at its own rate, which
the dub is mixed into) and, with a `background` separator configured, `background.wav` (that track
with its speech taken out: what plays under the dub, `tasks.ingest.background`); for a source whose frames drift from k / fps (a variable frame rate) or
whose size is odd, `picture.mkv`, its picture at a constant rate and an even size, which every stage
reads instead (`stage.picture_video`).
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
    speech), and where its frames drift from k / fps (a variable frame rate) or its size is odd,
    write the picture the stages read instead: at a constant rate, cropped by a pixel to an even
    size."""
    description = probe(source)
    width, height = description.width // 2 * 2, description.height // 2 * 2
    if not description.constant_rate or (width, height) != (description.width, description.height):
        frames = picture_copy(source, out / PICTURE, None if description.constant_rate else description.fps, width, height)
        description = replace(description, width=width, height=height, frames=frames,
                              duration=round(frames / description.fps, 6) if not description.constant_rate else description.duration)
    artifacts.write(out / "probe.json", description)
    extract_audio(source, out / "audio.wav", SPEECH_RATE, 1)
    extract_audio(source, out / "soundtrack.wav", None, min(description.audio_channels, max_channels))
    if background is not None:
        samples, rate = read_wav(out / "soundtrack.wav")
        write_wav(out / BACKGROUND, background.background(samples, rate), rate)
    return description
