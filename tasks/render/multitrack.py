"""multitrack: every language's dub of one video in one file, one audio track per language.

A per-video stage after render (`python -m tasks.render.multitrack --video V`), configured by the
`multitrack` group (conf/render/multitrack/, beside the render options it belongs to). It muxes
the per-language renders without re-encoding them: one video stream, then each language's audio
track tagged with its ISO 639-2 code, and the original soundtrack as an extra track if asked.
A picture can only be lip-synced to one language: it is taken from the render of `picture_lang`
(the first of `langs` unless set), whose track is marked default.

Outputs in `data/multitrack/<video>/`: `<video>.mul.<container>` ("mul": ISO 639-2 for multiple
languages) and `tracks.json`; with the option off, only `tracks.json` saying so (DVC needs the
stage's output either way).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tasks import artifacts
from tasks.artifacts import Transcript, atomic_dir
from tasks.media import run_ffmpeg
from tasks.render import rendered_file
from tasks.render.languages import iso639_2, language_name
from tasks.stage import StageContext, StageError, log, main

STAGE = "multitrack"
@dataclass(frozen=True)
class Track:
    index: int          # audio track number in the file, from 0
    lang: str           # ISO 639-1 as the pipeline names it
    iso639_2: str       # the tag written into the file
    title: str
    source: str         # the file it came from, relative to the project root
    default: bool


@dataclass(frozen=True)
class Tracks:
    enabled: bool
    file: str = ""
    picture_lang: str = ""
    tracks: tuple[Track, ...] = ()


def mux_args(picture: Path, dubs: list[tuple[str, Path]], original: tuple[str, Path] | None,
             picture_lang: str, audio_codec: str, audio_bitrate: str, container: str, target: Path,
             subtitled: tuple[str, ...] = ()) -> list[str]:
    """ffmpeg arguments: the picture's video stream and each dub's audio stream copied as they
    are; the original soundtrack (decoded WAV) encoded like the dubs' audio; the subtitle track of
    each dub in `subtitled` (languages whose render carries one), copied."""
    inputs = [picture] + [path for _, path in dubs] + ([original[1]] if original else [])
    args = [arg for path in inputs for arg in ("-i", str(path))]
    args += ["-map", "0:v:0"] + [arg for i in range(1, len(inputs)) for arg in ("-map", f"{i}:a:0")]
    with_text = [(i, lang) for i, (lang, _) in enumerate(dubs, start=1) if lang in subtitled]
    args += [arg for i, _ in with_text for arg in ("-map", f"{i}:s:0")]
    args += ["-c", "copy", "-map_metadata", "-1", "-metadata:s:v:0", f"title=lip-synced to {language_name(picture_lang)}"]
    for index, (lang, _) in enumerate(dubs):
        args += [f"-metadata:s:a:{index}", f"language={iso639_2(lang)}",
                 f"-metadata:s:a:{index}", f"title={language_name(lang)} (dubbed)",
                 f"-disposition:a:{index}", "default" if lang == picture_lang else "0"]
    if original:
        index = len(dubs)
        args += [f"-c:a:{index}", audio_codec] + ([f"-b:a:{index}", audio_bitrate] if audio_codec == "aac" else [])
        args += [f"-metadata:s:a:{index}", f"language={iso639_2(original[0])}",
                 f"-metadata:s:a:{index}", f"title={language_name(original[0])} (original)",
                 f"-disposition:a:{index}", "0"]
    for index, (_, lang) in enumerate(with_text):
        args += [f"-metadata:s:s:{index}", f"language={iso639_2(lang)}",
                 f"-metadata:s:s:{index}", f"title={language_name(lang)} (dubbed)"]
    if container == "mp4":
        args += ["-movflags", "+faststart"]
    return [*args, "-f", container, str(target)]


def run(context: StageContext) -> None:
    settings = context.config
    render = context.params.get("render") or {}
    out_dir = context.out_dir()
    if not settings.get("enabled"):
        with atomic_dir(out_dir) as out:
            artifacts.write(out / "tracks.json", Tracks(enabled=False))
        log.info("off (multitrack.enabled=false): nothing to mux")
        return
    langs = [str(lang) for lang in context.params.get("langs") or []]
    picture_lang = str(settings.get("picture_lang") or (langs[0] if langs else ""))
    if picture_lang not in langs:
        raise StageError(f"multitrack.picture_lang={picture_lang} is not one of langs={langs}")
    root = Path(context.root)
    dubs = [(lang, rendered_file(root, context.video, lang)) for lang in langs]
    original = None
    if settings.get("include_original"):
        source_lang = artifacts.read(context.input_dir("asr") / "transcript.json", Transcript).language
        original = (source_lang, context.input_dir("ingest") / "soundtrack.wav")
    container = dict(dubs)[picture_lang].suffix.lstrip(".")  # the renders' own container
    name = f"{context.video}.mul.{container}"
    sources = [(lang, path, "dubbed") for lang, path in dubs] + ([(*original, "original")] if original else [])
    tracks = tuple(Track(i, lang, iso639_2(lang), f"{language_name(lang)} ({kind})",
                         str(path.relative_to(root) if path.is_relative_to(root) else path),
                         kind == "dubbed" and lang == picture_lang)
                   for i, (lang, path, kind) in enumerate(sources))
    with atomic_dir(out_dir) as out:
        run_ffmpeg(*mux_args(dict(dubs)[picture_lang], dubs, original, picture_lang,
                             str(render.get("audio_codec", "aac")), str(render.get("audio_bitrate", "192k")),
                             container, out / name, tuple(lang for lang, path in dubs if path.with_suffix(".srt").exists())))
        artifacts.write(out / "tracks.json", Tracks(True, name, picture_lang, tracks))
    log.info("wrote %s: picture lip-synced to %s, audio %s", out_dir / name, picture_lang,
             ", ".join(f"{t.iso639_2}{'*' if t.default else ''}" for t in tracks))


if __name__ == "__main__":
    main(STAGE, run)
