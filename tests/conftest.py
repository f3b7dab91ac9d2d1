"""Shared fixtures: real media from ../shared/media when present, generated media otherwise."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

PROJECT = Path(__file__).resolve().parent.parent
SHARED_MEDIA = Path(os.environ.get("DUB_SHARED_MEDIA", PROJECT.parent / "shared" / "media"))


def make_workspace(root: Path) -> Path:
    """A project workspace (conf, tasks, dvc.yaml, DVC without git) in which `dub` runs for real."""
    for name in ("conf", "tasks"):
        shutil.copytree(PROJECT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(PROJECT / "dvc.yaml", root)
    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=root, check=True)
    shutil.copy(PROJECT / ".dvc" / "config", root / ".dvc" / "config")
    subprocess.run([sys.executable, "-m", "dvc", "config", "core.no_scm", "true"], cwd=root, check=True)
    return root


def run_dub(workspace: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """The `dub` CLI on `workspace`, as a user runs it."""
    env = {**os.environ, "DUB_ROOT": str(workspace), "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], cwd=workspace, env=env,
                          capture_output=True, text=True, timeout=timeout)


def run_face_stage(root: Path, clip: Path, speech_s: float, **face_options) -> Path:
    """Register `clip` as video "clip" under `root`, ingest it, give it one speaker talking from 0 to
    `speech_s`, and run the real face stage on it; returns the face stage's output folder."""
    import yaml

    from tasks.artifacts import Segment
    from tasks.face.__main__ import run
    from tasks.ingest import ingest
    from tasks.speakers.schema import SpeakerTurn, Speakers
    from tasks.speakers.schema import write as write_speakers
    from tasks.stage import StageContext

    (root / "data" / "input" / "clip").mkdir(parents=True)
    (root / "data" / "input" / "clip" / clip.name).symlink_to(clip)
    ingest(clip, root / "data" / "ingest" / "clip")
    write_speakers(root / "data" / "speakers" / "clip" / "speakers.json",
                   Speakers("test", 1, (SpeakerTurn(0.0, speech_s, "S0"),), (),
                            (Segment(0, 0.0, speech_s, "speech", "S0"),)))
    config = yaml.safe_load((PROJECT / "conf" / "face" / "dlib.yaml").read_text())
    config.update(progress=False, **face_options)
    run(StageContext("face", "clip", None, root, {"face": config}))
    return root / "data" / "face" / "clip"


def shared_media(relative: str) -> Path:
    path = SHARED_MEDIA / relative
    if not path.exists():
        pytest.skip(f"real test media absent: {path} (the shared media folder is not beside this checkout)")
    return path


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


def make_clip(path: Path, seconds: float = 2.0, audio: bool = True, size: str = "160x120", rate: int = 25) -> Path:
    """A small generated test clip: a test pattern, with a tone when `audio`."""
    from tasks.media import run_ffmpeg

    args = ["-f", "lavfi", "-i", f"testsrc=size={size}:rate={rate}:duration={seconds}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={seconds}", "-c:a", "aac"]
    run_ffmpeg(*args, "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path))
    return path


@pytest.fixture(scope="session")
def generated_clip(media_dir) -> Path:
    return make_clip(media_dir / "tone.mp4")


@pytest.fixture(scope="session")
def silent_clip(media_dir) -> Path:
    return make_clip(media_dir / "no_audio.mp4", audio=False)


@pytest.fixture(scope="session")
def not_a_video(media_dir) -> Path:
    path = media_dir / "notes.mp4"
    path.write_text("this is a text file with a video extension\n")
    return path


@pytest.fixture(scope="session")
def truncated_clip(media_dir, generated_clip) -> Path:
    path = media_dir / "truncated.mp4"
    path.write_bytes(generated_clip.read_bytes()[:2000])
    return path


@pytest.fixture
def tone():
    def make(seconds: float, rate: int = 16000, frequency: float = 220.0) -> np.ndarray:
        t = np.arange(int(seconds * rate)) / rate
        return (0.3 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)

    return make
