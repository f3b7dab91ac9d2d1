"""The run's summary: one table of what each language's dub came out as, from the evaluate stage's
metrics.json (and the lines a person corrected, from the mt stage's translation.json), for the
Prefect UI (a markdown artifact of the flow run) and the log."""
from __future__ import annotations

import json
import re
from pathlib import Path


def _number(value, form: str) -> str:
    return "-" if value is None else form.format(value)


def _ratio(dub, source, source_still: bool = False) -> str:
    """dub / source, with the ratio where the source's figure is positive; a still source (a photo)
    is no reference: 'dub / still picture'."""
    if dub is not None and source_still:
        return f"{dub:.2f} / still picture"
    if dub is None or source is None:
        return "-"
    ratio = f" ({dub / source:.2f}x)" if source > 0 else ""
    return f"{dub:.2f} / {source:.2f}{ratio}"


def release_offset(metrics: dict) -> str:
    """'+14 ms (5 of 5)': how much after the dub's own bilabial releases its lips reopen (median, of
    the releases seen of those counted); '-' where the evaluate stage did not read it."""
    releases = metrics.get("lipsync_releases")
    if releases is None:
        return "-"
    seen = int(metrics.get("lipsync_releases_seen", 0))
    offset = metrics.get("lipsync_release_offset_ms")
    return f"{'-' if offset is None else f'{offset:+.0f} ms'} ({seen} of {int(releases)})"


def corrected_lines(translation: dict) -> str:
    """'k of n' lines a person corrected (tasks/mt/edits.py) in a translation.json's data; '-' without one."""
    segments = translation.get("segments")
    if segments is None:
        return "-"
    return f"{sum(1 for s in segments if s.get('edited'))} of {len(segments)}"


def speaker_voices(segments: dict, lang: str) -> str:
    """'S0 jm_kumo, S1 fitted' from a segments.json's data: each speaker's voice as tts.cast names
    it (the candidate, without the language), a voice fitted to the speaker as 'fitted'; '-' without one."""
    voices: dict[str, str] = {}
    for segment in segments.get("segments") or []:
        name = re.sub(rf"-{re.escape(lang)}$", "", segment.get("voice", ""))
        voices.setdefault(segment.get("speaker", "?"), "fitted" if ":" in name else name)
    return ", ".join(f"{speaker} {voice}" for speaker, voice in sorted(voices.items())) or "-"


def faces_edited(report: dict, tracks: dict) -> str:
    """'S0 face 1, 44 frames; S1 face 0, 86 frames (3 at rest); S2 no face' from the lipsync stage's
    report.json and the face stage's tracks.json (data): which face each voice moved and on how many
    frames, with the frames held at rest, and why that face where it was not found by its motion
    (a still picture's layout, a choice by hand); '-' without a report."""
    if not report:
        return "-"
    basis = tracks.get("speaker_basis") or {}
    parts = []
    for track in report.get("tracks") or []:
        speaker = track.get("speaker", "?")
        held = int(track.get("held_at_rest", 0))
        why = basis.get(speaker, "sync")
        parts.append(f"{speaker} face {track.get('track')}, {int(track.get('frames_edited', 0))} frames"
                     + (f" ({held} at rest)" if held else "") + ("" if why in ("sync", "sole moving face") else f" [{why}]"))
    parts += [f"{speaker} no face" for speaker in report.get("unmatched_speakers") or []]
    return "; ".join(parts) or "-"


def language_row(lang: str, output: str, state: str, metrics: dict, corrected: str = "-", voices: str = "-",
                 faces: str = "-") -> str:
    return " | ".join([
        f"| {lang}", f"`{output}`", state, voices, faces, corrected,
        _number(metrics.get("wer"), "{:.1%}"),
        "yes" if metrics.get("language_ok") == 1.0 else ("no" if "language_ok" in metrics else "-"),
        _number(metrics.get("ends_within_300ms"), "{:.0%}"),
        _number(metrics.get("max_speed"), "{:.2f}x"),
        _ratio(metrics.get("lipsync_closure_excess"), metrics.get("source_lipsync_closure_excess"), bool(metrics.get("source_still"))),
        _ratio(metrics.get("lipsync_aperture_contrast"), metrics.get("source_lipsync_aperture_contrast"),
               bool(metrics.get("source_still"))),
        release_offset(metrics),
    ]) + " |"


def summary_markdown(video: str, root: Path, outputs: dict[str, str], states: dict[str, str]) -> str:
    """Markdown for the dubs of `video`: per language its output, whether this run made it or found
    it up to date, and the evaluate stage's figures (missing ones shown as -)."""
    lines = [f"# Dubbed: {video}", "",
             "| language | output | this run | voices | faces moved | lines corrected | WER of the dub | heard as that language "
             "| segments ending on time | fastest speech | bilabial closure, dub / source | open-vowel contrast, dub / source "
             "| lips reopening after the dub's /p b m/ |",
             "|---|---|---|---|---|---:|---:|---|---:|---:|---|---|---|"]
    tracks = _json(root / "data" / "face" / video / "tracks.json")
    for lang, output in outputs.items():
        metrics, translation, segments, lipsync = (
            _json(root / "data" / stage / video / lang / name) for stage, name in
            (("evaluate", "metrics.json"), ("mt", "translation.json"), ("tts", "segments.json"), ("lipsync", "report.json")))
        lines.append(language_row(lang, output, states.get(lang, "-"), metrics, corrected_lines(translation),
                                  speaker_voices(segments, lang), faces_edited(lipsync, tracks)))
    lines += ["", "Lip sync drawn per language in `data/evaluate/<video>/<language>/lipsync.png`; "
              "ratios under 0.8x of the source, or lips reopening more than 40 ms from the dub's releases, are "
              "worth a look there. A wrong line, or one too long to end on time: correct it in `data/mt/<video>/<language>/edits.yaml` and run again with `--edits` that file. "
              "Another voice for a speaker: run again with `+tts.cast.<language>.<speaker>=<voice>` (a name of "
              "`matching.candidates` in `conf/tts/auto.yaml`)."]
    return "\n".join(lines) + "\n"


def _json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def artifact_key(video: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes."""
    return "dub-" + (re.sub(r"[^a-z0-9-]+", "-", video.lower()).strip("-") or "video")
