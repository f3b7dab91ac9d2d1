"""Validate the lip-sync measures (issue 6) on the real clips in ../shared/media/video.

Two modes.

`--workspaces WS...`: the per-clip table of issue 6 from dubbed workspaces (each one `dub` run; its
evaluate stage measured the dub against its audio and the source against its own): source and dub
closure excess and aperture contrast, dub/source ratios (target >= 0.8), the dub's audio-visual
offset (target +-40 ms), PSNR outside the mouth (target >= 40 dB on every frame), boundary gradient,
flicker (of the skin; of the lips' luma) and fine detail (`tasks.lipsync.core.detail`) against the source, the frames edited (and of
them, torn: lips opened beyond their exemplar's by over 0.02 inter-ocular; lent: the inner mouth
shown came from a wider exemplar), and the frames left untouched by design per reason.

    python scripts/lipsync_validate.py --workspaces /tmp/ws_a /tmp/ws_b [--lang es] [--fresh] [--out table.json]
    python scripts/lipsync_validate.py --workspaces /tmp/ws_a /tmp/ws_b --pooled-offset

`--pooled-offset`: the envelope's audio-visual offset of each source and dub, and pooled over all the
clips (their correlation curves averaged, weighted by length), with all audio shifted by -0.1, 0 and
+0.1 s, and with each clip left out: one 5-12 s clip reads it +-200 ms off, the clips together do not.

`--fresh` measures both afresh here with the measure's forced-language ASR instead of reading the
evaluate stage's figures (those use evaluate's re-transcription, wrong when it heard another language),
and adds what the figures rest on: bilabials and open vowels counted (source / dub), the 90% bootstrap
interval of each dub/source ratio over those phones with a verdict against 0.8 (PASS: all of the
interval above; pass: the ratio above; unclear: the ratio below but the interval reaches 0.8; FAIL: all
of it below), the offset read from the phones beside the envelope's, and the two figures with every
clip's phones pooled, and the dub's lips at the synthesizer's own bilabial releases: where the visemes
stage took Kokoro's durations (exact phone times of the dub's audio), the median delay (ms) from each
/p b m/ released into a vowel to the rendered lips reopening through the closed threshold, with the
events found and their spread (validation of the +-40 ms offset target; the envelope and phone
offsets read +-140..200 ms on sources whose lips and bursts agree within about 30 ms).

`--stops off on` (either mode): the measure's /p b/ as the ASR placed them and snapped onto the
audio's own closures (tasks/evaluate/stops.py), one table each from the same face analysis and ASR
words; default: conf/evaluate `lipsync_stops`.

`--landmarkers dlib mesh` (either mode): the lips read by each (tasks.evaluate.lipsync.mouth_tracks,
one face analysis per video), one table per lip reader; default: conf/evaluate `lipsync_landmarker`.

Default mode, the measure's own validation. Per clip: the original video with its own audio, the same audio delayed by 0.5 s, and the next
clip's audio (trimmed or zero-padded to the same length). A measure is trusted only where own
audio scores clearly above both. Prints a markdown table; writes JSON.

    python scripts/lipsync_validate.py [--media ../shared/media/video] [--out /tmp/lipsync_validation.json]
           [--clips frontal_man_suit frontal_man_map ...] [--shift 0.5]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

DEFAULT_CLIPS = ["frontal_man_suit", "frontal_man_map", "frontal_woman_flag", "frontal_woman_glasses",
                 "head_turns_woman", "backlit_webcam", "stage_mic_cuts"]
TARGET_RATIO = 0.8     # issue 6: dub / source
INTERVAL_LEVEL = 0.9
MEASURES = ("closure_rate", "closure_chance", "closure_excess", "aperture_contrast", "sync_confidence", "sync_offset_ms")


def fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.0f}" if abs(value) >= 10 else f"{value:.2f}"
    return str(value)


def ratio(dub, source):
    if dub is None or source is None or source <= 0:
        return None
    return dub / source


def evaluate_config() -> dict:
    """conf/evaluate/default.yaml, where the measure's settings live (read as the evaluate stage has them)."""
    import yaml

    return yaml.safe_load((PROJECT / "conf" / "evaluate" / "default.yaml").read_text())


def conf_settings() -> tuple[object, dict, dict | None]:
    """The measure's settings as the evaluate stage reads them (tasks.evaluate.lipsync.measure_settings
    on conf/evaluate/default.yaml): (aligner, mouth_track keyword arguments, stop snapping)."""
    from tasks.evaluate.lipsync import measure_settings

    return measure_settings(evaluate_config())


def measure_aligner():
    """The measure's phone aligner with the evaluate stage's settings (`lipsync_aligner`), so that
    this script measures what the stage does."""
    return conf_settings()[0]


EQUALISE_ANYWAY: dict | None = None  # --equalise: this instead of conf's setting


def measure_equalisation():
    """The measure's landmarker equalisation (`lipsync_equalisation`; None: the frame as it is), or
    `EQUALISE_ANYWAY` where set."""
    if EQUALISE_ANYWAY is not None:
        return EQUALISE_ANYWAY
    return conf_settings()[1]["equalisation"]


JITTER: str = "conf"  # --jitter: "on" (tasks/evaluate/landmarks.py defaults), "off", or conf's setting


def measure_jitter():
    """The measure's box jitter (`lipsync_jitter`; None: one fit per face), or as forced by --jitter."""
    import dataclasses

    from tasks.evaluate.landmarks import Jitter

    if JITTER != "conf":
        return dataclasses.asdict(Jitter()) if JITTER == "on" else None
    return conf_settings()[1]["jitter"]


def measure_landmarker() -> str:
    """The measure's lip reader (`lipsync_landmarker`: dlib or mesh)."""
    return conf_settings()[1]["landmarker"]


def measure_stops(snapping: str = "conf") -> dict | None:
    """The measure's stop snapping (conf/evaluate/default.yaml `lipsync_stops`), or with its switch
    forced: "on", "off" (--stops), "conf" as configured."""
    stops = dict(conf_settings()[2] or {})
    if snapping != "conf":
        stops["enabled"] = snapping == "on"
    return stops


def readings(landmarkers, snappings) -> list[tuple[str, str, str]]:
    """(table name, landmarker, stop snapping) for each way of reading: one table per landmarker,
    and per --stops setting when more than one is asked for."""
    return [(name if len(snappings) == 1 else f"{name}, stops {snapping}", name, snapping)
            for name in landmarkers for snapping in snappings]


def remeasure(workspace: Path, video: str, lang: str, aligner=None, landmarkers=("dlib",), snappings=("conf",)) -> dict[str, dict]:
    """The dub (rendered file, its own audio, `lang`) and the source (its own audio, the language the
    asr stage heard) measured afresh, with the measure's own forced-language ASR: the evaluate stage
    passes its re-transcription's words, which are garbage when it heard another language. Also
    the dub's lips at the synthesizer's own bilabial releases (`synth_release_offsets`). One face
    analysis per video for all `landmarkers`, one ASR run per audio for all `snappings` (--stops);
    {table name: figures} (see `readings`), each with the per-frame openings."""
    from tasks import artifacts
    from tasks.artifacts import Transcript
    from tasks.evaluate.lipsync import measure, mouth_tracks
    from tasks.stage import source_video

    from tasks.render import rendered_file

    rendered = rendered_file(workspace, video, lang)
    source_language = artifacts.read(workspace / "data" / "asr" / video / "transcript.json", Transcript).language
    from tasks.evaluate.lipsync import load_audio

    aligner = aligner or measure_aligner()
    ways = readings(landmarkers, snappings)
    out = {key: {} for key, _, _ in ways}
    for prefix, path, language in (("lipsync", rendered, lang), ("source_lipsync", source_video(workspace, video), source_language)):
        mouths = mouth_tracks(path, landmarkers, equalisation=measure_equalisation(), jitter=measure_jitter())
        words = heard_words(load_audio(path), language, aligner)
        for key, name, snapping in ways:
            mouth = mouths[name]
            values = measure(path, None, language, mouth=mouth, aligner=aligner, words=words, stops=measure_stops(snapping)).as_dict()
            out[key].update({f"{prefix}_{k}": values.get(k) for k in ("closure_excess", "aperture_contrast", "sync_offset_ms",
                                                                      "sync_confidence", "closures", "open_vowels", "extra")})
            out[key][f"{prefix}_opening"] = [None if not np.isfinite(v) else round(float(v), 4) for v in mouth.opening]
            if prefix == "lipsync":
                out[key].update(synth_release_offsets(workspace, video, lang, mouth))
            print(f"{video} {prefix} {key}: " + " ".join(f"{k}={fmt(values.get(k))}" for k in ("closure_excess", "aperture_contrast", "sync_offset_ms")),
                  file=sys.stderr, flush=True)
    return out


def synth_release_offsets(workspace: Path, video: str, lang: str, mouth) -> dict:
    """The dub's audio-visual offset from events, as the evaluate stage reads it beside the measure
    (which must not know the synthesizer; `tasks.evaluate.lipsync.dub_releases`): where the visemes
    stage took the synthesizer's own phone durations (Kokoro's, which place every phone of the dub's
    audio exactly), each bilabial released into a vowel is an acoustic instant, and the rendered lips
    (re-detected) must reopen there (`reopening_offsets`). On the 7 source clips the same
    lips-against-release reading by hand (13 releases, spectrogram and landmarks) found every source
    within about +-30 ms, while the envelope and phone offsets read up to +-200 ms. Only the aligner
    when the visemes stage fell back to ASR timings (no exact instants)."""
    from tasks.evaluate.lipsync import dub_releases

    reading = dub_releases(workspace / "data" / "visemes" / video / lang / "visemes.json", lang, mouth)
    if "releases" not in reading:
        return {"release_aligner": reading["aligner"]} if reading else {}
    return {"release_aligner": reading["aligner"], "lipsync_release_count": reading["releases"],
            "lipsync_release_offsets_ms": reading["offsets_ms"], "lipsync_release_offset_ms": reading["offset_ms"]}


def ratio_interval(dub_extra: dict, source_extra: dict, figure: str, level: float):
    from tasks.evaluate.lipsync import ratio_interval as interval

    return interval(dub_extra, source_extra, figure, level)


def dubbed_rows(workspaces: list[Path], lang: str, fresh: bool = False, aligner=None,
                landmarkers=None, snappings=("conf",)) -> dict[str, list[dict]]:
    """Per landmarker, one row per dubbed video found in the workspaces (data/lipsync/<video>/<lang>);
    `fresh`: measure lip sync here (with `aligner`, default `measure_aligner()`, and each of
    `landmarkers`, default conf's, and stop `snappings`) instead of reading the evaluate stage's
    metrics (conf's landmarker and snapping)."""
    landmarkers = list(landmarkers or [measure_landmarker()])
    if not fresh:
        landmarkers, snappings = [measure_landmarker()], ("conf",)
    tables = {key: [] for key, _, _ in readings(landmarkers, snappings)}
    for workspace in workspaces:
        for folder in sorted((workspace / "data" / "lipsync").glob(f"*/{lang}")):
            video = folder.parent.name
            report = json.loads((folder / "report.json").read_text())
            metrics_file = workspace / "data" / "evaluate" / video / lang / "metrics.json"
            stage_metrics = json.loads(metrics_file.read_text()) if metrics_file.exists() else {}
            measured = remeasure(workspace, video, lang, aligner, landmarkers, snappings) if fresh else {landmarkers[0]: stage_metrics}
            for name, metrics in measured.items():
                tables[name].append(dubbed_row(video, report, metrics))
    return tables


def dubbed_row(video: str, report: dict, metrics: dict) -> dict:
    """The table's row of one dubbed video: its lipsync report and the lip-sync figures."""
    untouched = {}
    for track in report["tracks"]:
        for reason, count in track["untouched"].items():
            untouched[reason] = untouched.get(reason, 0) + int(count)
    row = {"video": video, "frames": report["frames"], "frames_edited": report["frames_edited"],
           "bank": [t["bank_size"] for t in report["tracks"]], "untouched": untouched,
           "torn_frames": sum(int(t.get("torn_frames", 0)) for t in report["tracks"]),
           "inner_mouths_lent": sum(int(t.get("inner_mouths_lent", 0)) for t in report["tracks"]), **report["metrics"]}
    for name in ("closure_excess", "aperture_contrast", "sync_offset_ms", "sync_confidence"):
        row[f"source_{name}"] = metrics.get(f"source_lipsync_{name}")
        row[f"dub_{name}"] = metrics.get(f"lipsync_{name}")
    for name in ("closures", "open_vowels", "extra"):
        row[f"source_{name}"] = metrics.get(f"source_lipsync_{name}")
        row[f"dub_{name}"] = metrics.get(f"lipsync_{name}")
    for name in ("release_offset_ms", "release_offsets_ms", "release_count"):
        row[f"dub_{name}"] = metrics.get(f"lipsync_{name}")
    row["closure_ratio"] = ratio(row["dub_closure_excess"], row["source_closure_excess"])
    row["aperture_ratio"] = ratio(row["dub_aperture_contrast"], row["source_aperture_contrast"])
    for figure, key in (("closure_excess", "closure"), ("aperture_contrast", "aperture")):
        interval = (None, None)
        if row["dub_extra"] and row["source_extra"]:
            interval = ratio_interval(row["dub_extra"], row["source_extra"], figure, INTERVAL_LEVEL)
        row[f"{key}_ratio_interval"] = list(interval)
        row[f"{key}_verdict"] = verdict(row[f"{key}_ratio"], interval)
    offset = row["dub_sync_offset_ms"]
    row["passes"] = {"closure": row["closure_ratio"] is not None and row["closure_ratio"] >= TARGET_RATIO,
                     "aperture": row["aperture_ratio"] is not None and row["aperture_ratio"] >= TARGET_RATIO,
                     "offset": offset is not None and abs(offset) <= 40, "psnr": row["psnr_outside_min"] >= 40}
    if row["dub_release_offset_ms"] is not None:
        row["passes"]["release_offset"] = abs(row["dub_release_offset_ms"]) <= 40
    for prefix in ("source", "dub"):
        row[f"{prefix}_opening"] = metrics.get(f"{'source_' if prefix == 'source' else ''}lipsync_opening")
    return row


def verdict(point, interval) -> str:
    """Against the target ratio, with the bootstrap interval over the phones counted: PASS (the whole
    interval at or above it), pass (the ratio is, its interval reaches below), unclear (the ratio is
    below, its interval reaches the target: more phones could go either way), FAIL (the whole
    interval below). Without an interval, the point alone: pass or FAIL."""
    low, high = interval
    if point is None:
        return "FAIL"
    if low is None or high is None:
        return "pass" if point >= TARGET_RATIO else "FAIL"
    if point >= TARGET_RATIO:
        return "PASS" if low >= TARGET_RATIO else "pass"
    return "unclear" if high >= TARGET_RATIO else "FAIL"


def pooled(rows: list[dict]) -> dict:
    """Closure excess and aperture contrast with every clip's phones pooled (dub phones against
    source phones over all clips with a moving source mouth): 3-10 bilabials per clip, 30-60 over
    all of them. Each phone keeps its own clip's chance and speaker's range."""
    from tasks.evaluate.lipsync import bootstrap_interval, contrast_of, excess_of

    out = {}
    for side in ("dub", "source"):
        extras = [r[f"{side}_extra"] for r in rows if r.get("dub_extra") and r.get("source_extra")]
        evidence = np.concatenate([np.asarray(e.get("closure_evidence") or [], dtype=np.float64).reshape(-1, 2) for e in extras]) \
            if extras else np.zeros((0, 2))
        # openings in each speaker's own range units, so that clips add up
        opens = np.concatenate([np.asarray(e["open_vowel_openings"]) / e["opening_range"] for e in extras
                                if e.get("opening_range") and e.get("open_vowel_openings") and e.get("bilabial_openings")] or [np.zeros(0)])
        closes = np.concatenate([np.asarray(e["bilabial_openings"]) / e["opening_range"] for e in extras
                                 if e.get("opening_range") and e.get("open_vowel_openings") and e.get("bilabial_openings")] or [np.zeros(0)])
        out[side] = {"closures": len(evidence), "open_vowels": len(opens),
                     "closure_excess": excess_of(evidence) if len(evidence) else None,
                     "closure_excess_interval": bootstrap_interval(excess_of, [evidence], INTERVAL_LEVEL),
                     "aperture_contrast": contrast_of(opens, closes, 1.0) if len(opens) and len(closes) else None,
                     "aperture_contrast_interval": bootstrap_interval(lambda o, c: contrast_of(o, c, 1.0), [opens, closes], INTERVAL_LEVEL)}
    for figure, key in (("closure_excess", "closure"), ("aperture_contrast", "aperture")):
        out[f"{key}_ratio"] = ratio(out["dub"][figure], out["source"][figure])
    return out


def dubbed_table(rows: list[dict]) -> str:
    lines = ["| clip | closure excess src / dub (ratio) | aperture contrast src / dub (ratio) | dub offset ms (conf) | "
             "PSNR outside mouth min dB | boundary gradient out/src | flicker out/src (edit's own; lips) | detail out/src | "
             "edited / frames (torn; lent) | untouched by design |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        untouched = ", ".join(f"{k} {v}" for k, v in r["untouched"].items() if v) or "-"
        mark = {k: ("" if v else " FAIL") for k, v in r["passes"].items()}
        if r.get("dub_extra") and r.get("source_extra"):
            mark["closure"] = f" [{interval_text(r['closure_ratio_interval'])}] {r['closure_verdict']}; bilabials {r['source_closures']} / {r['dub_closures']}"
            mark["aperture"] = f" [{interval_text(r['aperture_ratio_interval'])}] {r['aperture_verdict']}; open vowels {r['source_open_vowels']} / {r['dub_open_vowels']}"
        lines.append(
            f"| {r['video']} | {fmt(r['source_closure_excess'])} / {fmt(r['dub_closure_excess'])} ({fmt(r['closure_ratio'])}{mark['closure']}) | "
            f"{fmt(r['source_aperture_contrast'])} / {fmt(r['dub_aperture_contrast'])} ({fmt(r['aperture_ratio'])}{mark['aperture']}) | "
            f"{fmt(r['dub_sync_offset_ms'])}{mark['offset']} ({fmt(r['dub_sync_confidence'])}){phone_offset_text(r)} | {r['psnr_outside_min']:.1f}{mark['psnr']} | "
            f"x{r['boundary_gradient_ratio']:.2f} | x{r['flicker_ratio']:.2f} ({r['edit_flicker']:.2f}; lips x{r.get('lips_flicker_ratio', 1.0):.2f}) | x{r.get('detail_ratio', 1.0):.2f} | "
            f"{r['frames_edited']} / {r['frames']} ({r.get('torn_frames', 0)}; {r.get('inner_mouths_lent', 0)}) | {untouched} |")
    return "\n".join(lines)


def phone_offset_text(row: dict) -> str:
    """The offset read from the phones (aperture contrast peak) of the dub and of the source."""
    dub, source = row.get("dub_extra") or {}, row.get("source_extra") or {}
    text = "" if "phone_offset_ms" not in dub else f"; phones {fmt(dub.get('phone_offset_ms'))} (src {fmt(source.get('phone_offset_ms'))})"
    offsets = row.get("dub_release_offsets_ms")
    if offsets:
        mark = "" if row["passes"].get("release_offset") else " FAIL"
        text += (f"; lips at synth releases {int(row['dub_release_offset_ms'])}{mark} "
                 f"({len(offsets)} of {row['dub_release_count']}: {min(offsets)}..{max(offsets)})")
    return text


def interval_text(interval) -> str:
    low, high = interval
    return "-" if low is None or high is None else f"{fmt(low)}..{fmt(high)}"


def pooled_text(summary: dict, clips: list[str]) -> str:
    dub, source = summary["dub"], summary["source"]
    return (f"Pooled over {', '.join(clips)}: closure excess source {fmt(source['closure_excess'])} "
            f"[{interval_text(source['closure_excess_interval'])}] on {source['closures']} bilabials, dub {fmt(dub['closure_excess'])} "
            f"[{interval_text(dub['closure_excess_interval'])}] on {dub['closures']} (ratio {fmt(summary['closure_ratio'])}); "
            f"aperture contrast source {fmt(source['aperture_contrast'])} [{interval_text(source['aperture_contrast_interval'])}] "
            f"on {source['open_vowels']} open vowels, dub {fmt(dub['aperture_contrast'])} [{interval_text(dub['aperture_contrast_interval'])}] "
            f"on {dub['open_vowels']} (ratio {fmt(summary['aperture_ratio'])}). Intervals: {INTERVAL_LEVEL:.0%} bootstrap over phones.")


POOL_SHIFTS = (-0.1, 0.0, 0.1)


def pooled_offsets(workspaces: list[Path], lang: str) -> dict:
    """The envelope's audio-visual offset of the sources (their own audio) and of the dubs (theirs),
    clip by clip and pooled over all clips (`tasks.evaluate.lipsync.pooled_offset`), with every
    clip's audio shifted by -0.1 / 0 / +0.1 s (a reading that follows the shift is reading timing),
    and the pooled figure with each clip left out in turn. Prints a markdown table."""
    from tasks.evaluate.lipsync import envelope_curve, load_audio, mouth_track, pooled_offset, shift_audio
    from tasks.render import rendered_file
    from tasks.stage import source_video

    curves: dict[tuple[str, float], list] = {}
    rows = []
    for workspace in workspaces:
        for folder in sorted((workspace / "data" / "lipsync").glob(f"*/{lang}")):
            video = folder.parent.name
            row = {"video": video}
            for side, path in (("source", source_video(workspace, video)), ("dub", rendered_file(workspace, video, lang))):
                mouth = mouth_track(path, equalisation=measure_equalisation(), jitter=measure_jitter(), landmarker=measure_landmarker())
                samples = load_audio(path)
                for shift in POOL_SHIFTS:
                    heard = shift_audio(samples, 16_000, shift) if shift else samples
                    lags, curve = envelope_curve(mouth.opening, mouth.fps, heard, 16_000)
                    curves.setdefault((side, shift), []).append((lags, curve, mouth.frames / mouth.fps))
                row[side] = pooled_offset(curves[(side, 0.0)][-1:])
            rows.append(row)
            print(f"{video}: envelope offset source {fmt(row['source'])}, dub {fmt(row['dub'])} ms", file=sys.stderr, flush=True)
    result = {"clips": rows, "pooled": {}}
    print("| clip | source offset ms | dub offset ms |\n|---|---|---|")
    for row in rows:
        print(f"| {row['video']} | {fmt(row['source'])} | {fmt(row['dub'])} |")
    print("\n| audio | pooled source ms | pooled dub ms | dub, each clip left out |\n|---|---|---|---|")
    for shift in POOL_SHIFTS:
        pooled = {side: pooled_offset(curves[(side, shift)]) for side in ("source", "dub")}
        left_out = [pooled_offset(curves[("dub", shift)][:k] + curves[("dub", shift)][k + 1:]) for k in range(len(rows))]
        spread = [v for v in left_out if v is not None]
        result["pooled"][f"{shift:+.1f}"] = {**pooled, "dub_left_out": left_out}
        print(f"| shifted {shift:+.1f} s | {fmt(pooled['source'])} | {fmt(pooled['dub'])} | "
              f"{fmt(min(spread)) if spread else '-'}..{fmt(max(spread)) if spread else '-'} |")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspaces", nargs="*", type=Path, help="dubbed workspaces: print the per-clip dub table instead")
    parser.add_argument("--lang", default="es", help="with --workspaces: the dubbed language")
    parser.add_argument("--fresh", action="store_true", help="with --workspaces: measure lip sync here (forced-language ASR)")
    parser.add_argument("--pooled-offset", action="store_true",
                        help="with --workspaces: the envelope offset of sources and dubs clip by clip and pooled over the clips")
    parser.add_argument("--media", default=os.environ.get("DUB_SHARED_MEDIA", str(PROJECT.parent / "shared" / "media")) + "/video")
    parser.add_argument("--clips", nargs="*", default=DEFAULT_CLIPS)
    parser.add_argument("--shift", type=float, default=0.5)
    parser.add_argument("--language", default="en")
    parser.add_argument("--smoothed", action="store_true", help="use the face stage's smoothed landmarks")
    parser.add_argument("--equalise", action="store_true",
                        help="the landmarker fits on the CLAHE-equalised face (tasks/evaluate/landmarks.py defaults), whatever conf says")
    parser.add_argument("--jitter", choices=("conf", "on", "off"), default="conf",
                        help="each landmark the median of fits from a grid of boxes (conf/evaluate lipsync_jitter): "
                             "as configured, forced on (tasks/evaluate/landmarks.py defaults) or off")
    parser.add_argument("--landmarkers", nargs="*", choices=("dlib", "mesh"),
                        help="lip readers to measure with, from one face analysis per video (default: conf's lipsync_landmarker)")
    parser.add_argument("--stops", nargs="*", choices=("conf", "on", "off"), default=["conf"],
                        help="the measure's /p b/ snapped onto the audio's closures (conf/evaluate lipsync_stops): "
                             "as configured, forced on or off; several: one table each, from one face analysis and ASR run")
    parser.add_argument("--out", default="/tmp/lipsync_validation.json")
    args = parser.parse_args()
    global JITTER
    JITTER = args.jitter
    if args.equalise:
        import dataclasses

        from tasks.evaluate.landmarks import Equalisation

        global EQUALISE_ANYWAY
        EQUALISE_ANYWAY = dataclasses.asdict(Equalisation())
    if args.workspaces and args.pooled_offset:
        Path(args.out).write_text(json.dumps(pooled_offsets(args.workspaces, args.lang), indent=2) + "\n")
        print(f"\nJSON: {args.out}", file=sys.stderr)
        return
    if args.workspaces:
        tables = dubbed_rows(args.workspaces, args.lang, args.fresh, measure_aligner(), args.landmarkers, args.stops)
        results = {}
        for name, rows in tables.items():
            print(f"\n### lips read by {name}\n")
            print(dubbed_table(rows))
            moving = [r for r in rows if (r.get("source_closure_excess") or 0) > 0 and r.get("dub_extra")]
            summary = pooled(moving) if moving else None
            if summary:
                print("\n" + pooled_text(summary, [r["video"] for r in moving]))
            results[name] = {"rows": rows, "pooled": summary}
        Path(args.out).write_text(json.dumps(results if len(results) > 1 else results[next(iter(results))],
                                             indent=2, default=float) + "\n")
        print(f"\nJSON: {args.out}", file=sys.stderr)
        return

    from tasks.evaluate.lipsync import fit_length, load_audio, mouth_tracks, score, shift_audio

    media = Path(args.media)
    clips = [c for c in args.clips if (media / f"{c}.mp4").exists()]
    if len(clips) < 2:
        sys.exit(f"need at least two clips in {media}")
    audio = {c: load_audio(media / f"{c}.mp4") for c in clips}
    aligner = measure_aligner()
    landmarkers = list(args.landmarkers or [measure_landmarker()])
    ways = readings(landmarkers, args.stops)
    rows = {key: [] for key, _, _ in ways}
    for i, clip in enumerate(clips):
        started = time.perf_counter()
        mouths = mouth_tracks(media / f"{clip}.mp4", landmarkers, smoothed=args.smoothed, equalisation=measure_equalisation(),
                              jitter=measure_jitter())
        first = mouths[landmarkers[0]]
        length = int(round(first.frames / first.fps * 16_000))
        own = fit_length(audio[clip], max(length, len(audio[clip])))
        other = clips[(i + 1) % len(clips)]
        variants = {"own": own, f"shift{args.shift:+.1f}s": shift_audio(own, 16_000, args.shift),
                    f"swap:{other}": fit_length(audio[other], len(own))}
        for variant, samples in variants.items():
            words = heard_words(samples, args.language, aligner)  # one ASR run for every landmarker
            for key, name, snapping in ways:
                result = score(mouths[name], samples, 16_000, args.language, aligner=aligner, words=words,
                               stops=measure_stops(snapping))
                row = {"clip": clip, "audio": variant, "landmarker": name, "stops": snapping, **result.as_dict()}
                rows[key].append(row)
                print(f"{clip:24s} {variant:28s} {key:5s} " + " ".join(f"{m}={fmt(row[m])}" for m in MEASURES),
                      file=sys.stderr, flush=True)
        for key in rows:
            for row in rows[key][-3:]:
                row["clip_seconds"] = round(time.perf_counter() - started, 1)
    results = {}
    for key in rows:
        print(f"\n### lips read by {key}\n")
        results[key] = own_audio_tables(rows[key], clips)
    Path(args.out).write_text(json.dumps(results if len(results) > 1 else results[next(iter(results))], indent=2) + "\n")
    print(f"\nJSON: {args.out}", file=sys.stderr)


def heard_words(samples: np.ndarray, language: str, aligner) -> list[tuple[float, float, str]]:
    """The measure's ASR word timings of mono 16 kHz samples."""
    import tempfile

    from tasks.media import write_wav

    with tempfile.TemporaryDirectory(prefix="lipsync-validate-") as tmp:
        wav = write_wav(Path(tmp) / "speech.wav", np.asarray(samples, dtype=np.float32).reshape(-1, 1), 16_000)
        return list(aligner.words(wav, language))


def own_audio_tables(rows: list[dict], clips: list[str]) -> dict:
    """Print the own / shifted / swapped tables of one lip reader; its rows, summary and margins."""
    print("| clip | audio | closure rate (chance) | closure excess | bilabials | aperture contrast | open vowels | LSE-C-like conf | offset ms | best corr | face cov | s/clip |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['clip']} | {r['audio']} | {fmt(r['closure_rate'])} ({fmt(r['closure_chance'])}) | {fmt(r['closure_excess'])} | {r['closures']} | "
              f"{fmt(r['aperture_contrast'])} | {r['open_vowels']} | {fmt(r['sync_confidence'])} | {fmt(r['sync_offset_ms'])} | "
              f"{fmt(r['sync_correlation'])} | {fmt(r['face_coverage'])} | {r['clip_seconds']} |")
    # separation: own above both mismatched variants, per measure
    print()
    print("| measure | clips where own > shifted and own > swapped | mean own | mean shifted | mean swapped |")
    print("|---|---|---|---|---|")
    summary = {}
    for m in ("closure_rate", "closure_excess", "aperture_contrast", "sync_confidence"):
        wins, values = 0, {"own": [], "shift": [], "swap": []}
        for clip in clips:
            trio = [r for r in rows if r["clip"] == clip]
            own, shifted, swapped = (r[m] for r in trio)
            for key, v in zip(("own", "shift", "swap"), (own, shifted, swapped)):
                if v is not None:
                    values[key].append(v)
            if None not in (own, shifted, swapped) and own > shifted and own > swapped:
                wins += 1
        means = {k: (float(np.mean(v)) if v else None) for k, v in values.items()}
        summary[m] = {"wins": wins, "clips": len(clips), **means}
        print(f"| {m} | {wins}/{len(clips)} | {fmt(means['own'])} | {fmt(means['shift'])} | {fmt(means['swap'])} |")
    print()
    keys = ("closure_excess", "aperture_contrast", "sync_confidence")
    print("| clip | " + " | ".join(f"{k}: own - max(shifted, swapped)" for k in keys) + " |")
    print("|---|" + "---|" * len(keys))
    margins = {}
    for clip in clips:
        trio = [r for r in rows if r["clip"] == clip]
        cells = []
        for k in keys:
            own, shifted, swapped = (r[k] for r in trio)
            if None in (own, shifted, swapped):
                cells.append("-")
                continue
            margin = own - max(shifted, swapped)
            margins.setdefault(clip, {})[k] = round(margin, 4)
            cells.append(f"{margin:+.2f} {'yes' if margin > 0 else 'NO'}")
        print(f"| {clip} | " + " | ".join(cells) + " |")
    means = {k: round(float(np.mean([m[k] for m in margins.values() if k in m])), 4) for k in keys
             if any(k in m for m in margins.values())}
    print("| mean margin | " + " | ".join(f"{means[k]:+.2f}" if k in means else "-" for k in keys) + " |")
    return {"rows": rows, "summary": summary, "margins": margins, "mean_margins": means}


if __name__ == "__main__":
    main()
