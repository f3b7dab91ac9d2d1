"""Typed, versioned stage artifacts and their atomic reading and writing.

Every stage reads and writes its artifacts through this module only, so the on-disk format has
one owner. Each artifact carries `schema` so an old file is refused instead of misread.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import tempfile
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, TypeVar

SCHEMA_VERSION = 1
T = TypeVar("T")


@dataclass(frozen=True)
class Probe:
    """What ingest learned about the source container."""

    path: str
    width: int
    height: int
    fps: float
    frames: int
    duration: float
    video_codec: str
    audio_codec: str
    audio_rate: int
    audio_channels: int
    # Seconds the first picture is shown after the first audio sample (negative: audio starts
    # later). Extracted audio is shifted by it, so frame k sits at k / fps in every stage.
    video_delay: float = 0.0
    # Degrees the picture is turned for display (a phone's portrait video stored landscape). `width`
    # and `height` are as displayed: ffmpeg and OpenCV, which read the frames for every stage, turn them.
    rotation: int = 0
    # False: the source's frames are not at k / fps (a variable frame rate). Ingest then writes
    # `picture.mkv`, the picture at `fps` (frames repeated or dropped to follow their timestamps, CRF 10),
    # and `fps`, `frames` and `duration` describe it; the stages read it instead of the source. (It
    # writes one for an odd size too, cropped by a pixel to the even `width` x `height` given here.)
    constant_rate: bool = True
    # Which of the source's video streams is the picture (0: the first). Another one (a cover picture
    # stored first, `tasks.media.main_video`): ingest writes `picture.mkv` from it, which the stages read.
    video_stream: int = 0
    # Which of its audio streams is dubbed (`tasks.media.main_audio`: the default one, else the first).
    audio_stream: int = 0


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    text: str
    probability: float = 1.0


@dataclass(frozen=True)
class Segment:
    id: int
    start: float
    end: float
    text: str
    speaker: str = "S0"
    words: tuple[Word, ...] = ()


@dataclass(frozen=True)
class Transcript:
    language: str
    language_probability: float
    segments: tuple[Segment, ...]
    model: str = ""

    @property
    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.segments).strip()


@dataclass(frozen=True)
class TranslatedSegment:
    id: int
    start: float
    end: float
    speaker: str
    source_text: str
    text: str
    edited: bool = False      # the text is a person's correction (tasks/mt/edits.py), not the machine's


@dataclass(frozen=True)
class Translation:
    source_language: str
    target_language: str
    backend: str
    segments: tuple[TranslatedSegment, ...]

    @property
    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.segments).strip()


@dataclass(frozen=True)
class DubbedSegment:
    """How one translated segment was voiced and placed on the timeline."""

    id: int
    start: float
    end: float
    slot_end: float
    voice: str
    speed: float
    duration: float
    overrun: float
    text: str
    phonemes: str = ""
    speaker: str = "S0"
    conversion: str = ""


@dataclass(frozen=True)
class DubbedSpeech:
    language: str
    sample_rate: int
    segments: tuple[DubbedSegment, ...]


@dataclass(frozen=True)
class Metrics:
    language: str
    detected_language: str
    detected_language_probability: float
    wer: float
    reference: str
    hypothesis: str
    extra: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class SourceLipSync:
    """The source's own lip sync, its lips against its own audio, as the evaluate stage's measure
    reads it (the `reference` stage, once per video): what every dub's figures are compared with."""
    language: str                              # the source speech's language (the asr stage's)
    measured: bool                             # False: the measure is switched off (evaluate.lipsync)
    fps: float = 0.0
    track: int = -1                            # the face track read (-1: no face found)
    iod_px: float = 0.0
    opening: tuple[float | None, ...] = ()     # inner-lip gap / inter-ocular distance per frame (None: no face)
    scores: dict[str, Any] = field(default_factory=dict)   # tasks.evaluate.lipsync.LipSyncScores, as_dict()
    settings: dict[str, Any] = field(default_factory=dict)  # the measure's settings it was read with (lipsync_* keys)


def _coerce(hint: Any, value: Any) -> Any:
    """Turn decoded JSON back into the annotated type: nested dataclasses, tuples, dicts, optionals."""
    if value is None:
        return None
    if dataclasses.is_dataclass(hint):
        return build(hint, value)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], item) for item in value)
        return tuple(_coerce(arg, item) for arg, item in zip(args, value)) if args else tuple(value)
    if origin is dict and args:
        return {key: _coerce(args[1], item) for key, item in value.items()}
    if origin in (typing.Union, types.UnionType):
        options = [arg for arg in args if arg is not type(None)]
        return _coerce(options[0], value) if len(options) == 1 else value
    return value


def build(cls: type[T], data: dict[str, Any]) -> T:
    """A dataclass (and the dataclasses inside it) from its `dataclasses.asdict` form."""
    hints = typing.get_type_hints(cls)
    return cls(**{f.name: _coerce(hints[f.name], data[f.name])
                  for f in dataclasses.fields(cls) if f.name in data})  # type: ignore[arg-type]


class ArtifactError(RuntimeError):
    """An artifact is missing, of the wrong kind or of an unknown schema version."""


def to_json(artifact: Any, schema: int = SCHEMA_VERSION, compact: bool = False) -> str:
    payload = {"schema": schema, "kind": type(artifact).__name__, **dataclasses.asdict(artifact)}
    if compact:
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return json.dumps(payload, indent=2, ensure_ascii=False)


def write(path: Path | str, artifact: Any, schema: int = SCHEMA_VERSION, compact: bool = False) -> Path:
    """Write a dataclass artifact as JSON, tagged with its kind and schema version, atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(to_json(artifact, schema, compact) + "\n", encoding="utf-8")
    return path


def read(path: Path | str, cls: type[T], schema: int = SCHEMA_VERSION) -> T:
    """Read an artifact written by `write`, refusing another kind or another schema version."""
    path = Path(path)
    if not path.exists():
        raise ArtifactError(f"missing artifact {path}: run the upstream stage first")
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("kind") != cls.__name__:
        raise ArtifactError(f"{path} holds a {data.get('kind')!r}, expected {cls.__name__}")
    if data.get("schema") != schema:
        raise ArtifactError(f"{path} has schema {data.get('schema')}, this code reads {schema}: rerun its stage")
    return build(cls, data)


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary sibling of `path`; rename it onto `path` only if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix or ".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Yield an empty temporary folder that replaces `path` whole when the block succeeds.

    A stage writes all its outputs here, so an interrupted run never leaves a half-written
    output folder for DVC to mistake as finished.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*"):  # left by a run that was killed
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
