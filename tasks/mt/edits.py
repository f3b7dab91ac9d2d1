"""Corrections of a machine translation, given by a person: {language: {segment id: text}}.

`dub talk.mp4 langs=[es] edits=fixes.yaml` keeps the file as `data/edits/<video>/edits.yaml` (a
dependency of every mt stage of that video, so later runs keep the corrections until another file
replaces them); the mt stage translates as usual, then puts each corrected text in place and marks
its segment `edited`. Only the languages whose translation changed are voiced and rendered again.
Each mt run writes `edits.yaml` beside its translation: every segment's text in this format, with
its time, speaker and source text as comments, ready to be copied and corrected. Lines under the
source's own language correct what the speech recognition heard, before any translation: every
target language is translated again from the corrected text.
"""
from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import yaml

from tasks.artifacts import Transcript, Translation
from tasks.stage import StageError

EDITS_FILE = "edits.yaml"
LANGUAGE = re.compile(r"^[a-z]{2,3}$")


def kept_edits(root: Path, video: str) -> Path:
    """Where `dub` keeps a video's corrections and its mt stages read them: data/edits/<video>/edits.yaml."""
    return Path(root) / "data" / "edits" / video / EDITS_FILE


def parse_edits(data, origin: str = "edits") -> dict[str, dict[int, str]]:
    """Check and normalise decoded YAML: {language: {segment id: non-empty text}}; StageError says what is wrong."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise StageError(f"{origin}: expected `language: {{segment id: text}}` mappings, got {type(data).__name__}")
    out: dict[str, dict[int, str]] = {}
    for lang, lines in data.items():
        if not isinstance(lang, str) or not LANGUAGE.match(lang):
            raise StageError(f"{origin}: {lang!r} is not a language code (es, pt, fr, ...)")
        if not isinstance(lines, dict):
            raise StageError(f"{origin}: under {lang}, expected `segment id: text` lines")
        for key, text in (lines or {}).items():
            if isinstance(key, bool) or not isinstance(key, int) or key < 0:
                raise StageError(f"{origin}: {lang}: {key!r} is not a segment id (0, 1, 2, ...)")
            if not isinstance(text, str) or not text.strip():
                raise StageError(f"{origin}: {lang}: segment {key} has no text (to keep the machine's, leave the line out)")
            out.setdefault(lang, {})[key] = " ".join(text.split())
    return out


def read_edits(path: Path) -> dict[str, dict[int, str]]:
    """A corrections file (missing or empty: no corrections)."""
    path = Path(path)
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise StageError(f"{path.name} is not valid YAML: {str(error).splitlines()[0]}") from None
    return parse_edits(data, path.name)


def check_ids(lines: dict[int, str], ids: set[int], what: str) -> None:
    unknown = sorted(set(lines) - ids)
    if unknown:
        raise StageError(f"edits for {what}: no segment {', '.join(map(str, unknown))} (this video's segments are "
                         f"{min(ids, default=0)}-{max(ids, default=-1)}; see data/mt/<video>/<language>/{EDITS_FILE})")


def correct_source(transcript: Transcript, lines: dict[int, str]) -> Transcript:
    """The transcript with the corrected segments' text replaced (what is translated; word timings stay)."""
    check_ids(lines, {segment.id for segment in transcript.segments}, f"{transcript.language} (the source)")
    return replace(transcript, segments=tuple(replace(s, text=lines[s.id]) if s.id in lines else s for s in transcript.segments))


def apply_edits(translation: Translation, lines: dict[int, str]) -> Translation:
    """The translation with each corrected segment's text replaced and marked `edited` (a line that
    repeats the machine's text, as the template does, changes nothing)."""
    by_id = {segment.id: segment.text for segment in translation.segments}
    check_ids(lines, set(by_id), translation.target_language)
    changed = {k: text for k, text in lines.items() if text != " ".join(by_id[k].split())}
    segments = tuple(replace(s, text=changed[s.id], edited=True) if s.id in changed else s for s in translation.segments)
    return replace(translation, segments=segments)


def edits_template(translation: Translation) -> str:
    """Every segment's text as a corrections file, its time, speaker and source text as comments."""
    lang = translation.target_language
    rows = [f"# Corrections of the {lang} translation: copy this file, change the lines that are wrong (a line left",
            f"# as it is changes nothing) and run: dub <the video> langs=[{lang}] --edits <the copy>. Segment id: text.",
            "# Files for several languages can be joined into one; lines under the source's language",
            f"# ({translation.source_language}:) correct what the speech recognition heard, before every translation.",
            f"{lang}:"]
    for s in translation.segments:
        rows.append(f"  {s.id}: {json.dumps(s.text, ensure_ascii=False)}   "
                    f"# {s.start:.2f}-{s.end:.2f} {s.speaker}: {json.dumps(s.source_text, ensure_ascii=False)}"
                    + (" (corrected)" if s.edited else ""))
    return "\n".join(rows) + "\n"
