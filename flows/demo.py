"""A demo input that needs no outside file: a portrait that ships with scikit-image, speaking
English sentences voiced by the packaged Piper voice (the same path as `dub photo --script`)."""
from __future__ import annotations

import tempfile
from pathlib import Path

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

    from tasks.ingest.photo import PhotoSettings, build_video, voice_script
    from tasks.media import write_wav
    from tasks.tts.voices import PiperVoice

    voice = PiperVoice()
    target.parent.mkdir(parents=True, exist_ok=True)
    speech = write_wav(target.with_suffix(".wav"), voice_script("\n\n".join(lines), voice, pause_s), voice.sample_rate)
    with tempfile.TemporaryDirectory(prefix="demo-") as scratch:
        portrait = Path(scratch) / "astronaut.png"
        imsave(portrait, data.astronaut(), check_contrast=False)
        return build_video(portrait, speech, target, PhotoSettings(fps=fps, pause_s=pause_s))
