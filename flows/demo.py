"""A demo input that needs no outside file: a portrait that ships with scikit-image, speaking
English sentences voiced by the packaged Piper voice."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tasks.artifacts import atomic_path
from tasks.media import run_ffmpeg, write_wav

DEMO_LINES = (
    "Hello, and welcome to our channel.",
    "Today we will talk about the weather in the mountains.",
    "Thank you for watching, and see you next week.",
)


def build_demo_video(target: Path, lines: tuple[str, ...] = DEMO_LINES, pause_s: float = 0.6, fps: int = 25) -> Path:
    if target.exists():
        return target
    from skimage import data
    from skimage.io import imsave

    from tasks.tts.voices import PiperVoice

    voice = PiperVoice()
    silence = np.zeros(int(pause_s * voice.sample_rate), dtype=np.float32)
    pieces = [silence]
    for line in lines:
        pieces += [voice.synthesize(line), silence]
    target.parent.mkdir(parents=True, exist_ok=True)
    speech = write_wav(target.with_suffix(".wav"), np.concatenate(pieces), voice.sample_rate)
    portrait = target.with_suffix(".png")
    imsave(portrait, data.astronaut(), check_contrast=False)
    with atomic_path(target) as tmp:
        run_ffmpeg("-loop", "1", "-framerate", str(fps), "-i", str(portrait), "-i", str(speech),
                   "-c:v", "libx264", "-tune", "stillimage", "-pix_fmt", "yuv420p", "-c:a", "aac",
                   "-shortest", "-f", "mp4", str(tmp))
    return target
