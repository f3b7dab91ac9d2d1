"""`python -m tasks.visemes --video V --lang L`: data/tts/V/L/{voice.wav,segments.json} +
data/ingest/V/probe.json (+ data/face/V/faces.npz when present; with `speaker_fit` on, also
data/asr/V/transcript.json and data/ingest/V/audio.wav, the source the speaker's own targets are
fitted on) -> data/visemes/V/L/{visemes.json,visemes.png}."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from tasks import artifacts
from tasks.artifacts import DubbedSpeech, Probe, Transcript, Translation, atomic_dir
from tasks.stage import StageContext, StageError, instantiate, log, main, picture_video
from tasks.visemes import schema
from tasks.visemes.calibration import apply, calibrate, measured_curves
from tasks.visemes.coarticulation import Dominance, TimedPhone
from tasks.visemes.align import ENVELOPE_RATE, AsrAligner, envelope
from tasks.visemes.curves import Loudness, check, compute_curves
from tasks.visemes.smoothing import Smoothing
from tasks.visemes.speaker_fit import SpeakerFit, fit_speaker, with_targets
from tasks.visemes.tables import TABLES_DIR, load_table

def tables_dir(context: StageContext, config: dict) -> Path:
    folder = Path(config.get("tables") or TABLES_DIR)
    if not folder.is_absolute():
        folder = Path(context.root) / folder
    return folder if (folder / "visemes.yaml").exists() else TABLES_DIR


def speakers_of(context: StageContext, segments) -> dict[int, str]:
    """Segment id -> speaker: from translation.json, else from the dubbed segments when they carry it."""
    found: dict[int, str] = {}
    path = context.input_dir("mt") / "translation.json"
    if path.exists():
        try:
            found = {s.id: s.speaker for s in artifacts.read(path, Translation).segments}
        except artifacts.ArtifactError as error:
            log.warning("speakers unknown (%s): one speaker", error)
    for segment in segments:
        if getattr(segment, "speaker", None) and segment.id not in found:
            found[segment.id] = segment.speaker
    return found


def face_tracks(path: Path) -> dict[str, int]:
    """speaker -> face track id from the face stage's tracks.json (`speakers` mapping), if any."""
    if not path.exists():
        return {}
    try:
        mapping = json.loads(path.read_text(encoding="utf-8")).get("speakers") or {}
        return {str(k): int(v) for k, v in mapping.items() if v is not None}
    except (ValueError, TypeError, AttributeError) as error:
        log.warning("cannot read speaker tracks from %s (%s): one calibration for all speakers", path, error)
        return {}


def _settings(section: dict | None) -> dict:
    return {k: (tuple(v) if isinstance(v, list) else v) for k, v in (section or {}).items()}


def curve_models(config: dict) -> tuple[Dominance, Smoothing, Loudness]:
    return (Dominance(**(config.get("dominance") or {})), Smoothing(**_settings(config.get("smoothing"))),
            Loudness(**_settings(config.get("loudness"))))


def build(phones: list[TimedPhone], speakers: list[str], table, probe: Probe, config: dict, calibration_for,
          loudness: tuple[np.ndarray, float] | None = None) -> tuple[list, dict]:
    """Curves of every speaker; each speaker's mouth rests while the others speak, and aims at
    their own fitted targets where the calibration carries them."""
    dominance, smoothing, loudness_model = curve_models(config)
    threshold = float((config.get("checks") or {}).get("closure_threshold", 0.1))
    names = sorted(set(speakers)) or ["S0"]
    out, results = [], {}
    for name in names:
        own = [p for p, s in zip(phones, speakers) if s == name]
        calibration = calibration_for(name)
        own_table = table
        for param, targets in calibration.targets.items():
            own_table = with_targets(own_table, param, targets)
        curves = compute_curves(own, own_table, probe.fps, probe.frames, dominance, smoothing, loudness, loudness_model)
        checks = check(curves, own_table, threshold, smoothing.min_pause_s, smoothing.max_step)
        out.append((name, curves, calibration, checks))
        results[name] = checks
    return out, results


def source_targets(context: StageContext, config: dict, aligner, tracks: dict[str, int], faces: Path, probe: Probe) -> dict:
    """speaker -> param -> class -> target fitted on the source: the speaker's own phones (the asr
    stage's word timings, phonemized and refined on the source audio) against their own mouth
    measured by the face stage. Empty when off or when anything it needs is missing (logged)."""
    settings = SpeakerFit(**_settings(config.get("speaker_fit")))
    if not settings.enabled:
        return {}
    transcript_json, audio = context.input_dir("asr") / "transcript.json", context.input_dir("ingest") / "audio.wav"
    missing = [str(p) for p in (faces, transcript_json, audio) if not p.exists()]
    if missing:
        log.warning("speaker fit skipped, missing: %s", ", ".join(missing))
        return {}
    transcript = artifacts.read(transcript_json, Transcript)
    try:
        table = load_table(transcript.language, tables_dir(context, config))
    except KeyError as error:
        log.warning("speaker fit skipped: %s", error.args[0])
        return {}
    owner = speakers_of(context, transcript.segments)
    words = [(w.start, w.end, w.text) for s in transcript.segments for w in s.words]
    if not words:
        log.warning("speaker fit skipped: the transcript has no word timings")
        return {}
    asr = getattr(aligner, "asr", None) or AsrAligner(**((config.get("aligner") or {}).get("asr") or {}))
    phones = asr.align_audio(audio, table, words)
    from tasks.media import read_wav

    samples, rate = read_wav(audio)
    loudness = (envelope(samples.mean(axis=1), rate), ENVELOPE_RATE)
    dominance, smoothing, loudness_model = curve_models(config)
    calibration_cfg = config.get("calibration") or {}
    fitted = {}
    for name in sorted({owner.get(s.id, s.speaker) for s in transcript.segments}):
        spans = [(s.start, s.end) for s in transcript.segments if owner.get(s.id, s.speaker) == name]
        own = [p for p in phones if any(a <= p.center <= b for a, b in spans)]
        measured = measured_curves(faces, probe.frames, tracks.get(name), float(calibration_cfg.get("min_visibility", 0.5)),
                                   float(calibration_cfg.get("max_yaw", 30.0)))
        targets = fit_speaker(own, table, probe.fps, probe.frames, measured, settings, model=dominance,
                              smoothing=smoothing, loudness=loudness, loudness_model=loudness_model)
        if targets:
            fitted[name] = targets
            log.info("speaker %s: own targets fitted on %d source phones: %s", name, len(own),
                     "; ".join(f"{p} " + " ".join(f"{c} {t:.2f}" for c, t in v.items()) for p, v in targets.items()))
        else:
            log.info("speaker %s: too few measured source frames under speech for own targets: the table's", name)
    return fitted


def retiming(tts_dir: Path) -> dict[int, tuple[float, tuple]]:
    """Per dubbed segment, how tts moved the synthesized speech (stretch, pauses added)."""
    from tasks.tts.timing import read_report

    path = tts_dir / "timing.json"
    if not path.exists():
        return {}
    return {s.id: (s.time_scale, s.inserted_pauses) for s in read_report(path).segments}


def run(context: StageContext) -> None:
    config = context.config
    tts_dir = context.input_dir("tts")
    voice_wav, segments_json = tts_dir / "voice.wav", tts_dir / "segments.json"
    if not voice_wav.exists():
        raise StageError(f"{voice_wav} is missing: rerun tts (it writes the dubbed voice alone for this stage)")
    dubbed = artifacts.read(segments_json, DubbedSpeech)
    probe = artifacts.read(context.input_dir("ingest") / "probe.json", Probe)
    try:
        table = load_table(context.lang, tables_dir(context, config))
    except KeyError as error:
        raise StageError(str(error.args[0])) from None
    aligner = instantiate(config, "aligner")
    alignment = aligner.align(voice_wav, dubbed.segments, table, speakers_of(context, dubbed.segments),
                              retiming(tts_dir))
    if table.unknown:
        log.warning("IPA symbols without a viseme in the %s table (skipped): %s", table.language, " ".join(sorted(table.unknown)))
    log.info("%d phones aligned by %s", len(alignment.phones), alignment.method)

    faces = context.input_dir("face") / "faces.npz"
    tracks = face_tracks(context.input_dir("face") / "tracks.json")
    calibration_cfg = config.get("calibration") or {}
    cache: dict = {}
    fitted = source_targets(context, config, aligner, tracks, faces, probe)

    def calibration_for(name: str):
        return replace(ranges_for(name), targets=fitted.get(name, {}))

    def ranges_for(name: str):
        track = tracks.get(name)
        if track not in cache:
            if calibration_cfg.get("enabled", True):
                try:
                    video = picture_video(context.root, context.video)
                except StageError:
                    video = None
                cache[track] = calibrate(faces if faces.exists() else None, video, int(calibration_cfg.get("max_frames", 60)), track,
                                         float(calibration_cfg.get("min_visibility", 0.5)), float(calibration_cfg.get("max_yaw", 30.0)))
            else:
                cache[track] = calibrate(None, None)
        return cache[track]

    from tasks.media import read_wav

    samples, rate = read_wav(voice_wav)
    samples = samples.mean(axis=1)
    loudness = (envelope(samples, rate), ENVELOPE_RATE)
    results, checks = build(alignment.phones, alignment.speakers, table, probe, config, calibration_for, loudness)
    for name, result in checks.items():
        log.info("speaker %s: %d/%d bilabials closed, %d/%d long pauses closed, max jump %.2f",
                 name, result["bilabials_closed"], result["bilabials"], result["long_pauses_closed"], result["long_pauses"], result["max_jump"])
    phones = tuple(schema.PhoneInterval(round(p.start, 4), round(p.end, 4), p.symbol, p.viseme, s)
                   for p, s in zip(alignment.phones, alignment.speakers))
    speakers = tuple(
        schema.SpeakerCurves(name, calibration, {k: np.round(v, 4).tolist() for k, v in curves.params.items()},
                             {k: np.round(v, 4).tolist() for k, v in apply(curves.params, calibration).items()},
                             curves.labels, result)
        for name, curves, calibration, result in results)
    artifact = schema.Visemes(context.lang, probe.fps, probe.frames, alignment.method, list(table.params), phones, speakers)
    with atomic_dir(context.out_dir()) as out:
        schema.write(out / "visemes.json", artifact)
        if config.get("plot", True):
            from tasks.visemes.plot import plot

            plot(out / "visemes.png", samples, rate, probe.fps, [(n, c.params) for n, c, _, _ in results],
                 list(phones), title=f"{context.video} {context.lang}: {alignment.method}", max_seconds=config.get("plot_max_s"))
        (out / "checks.json").write_text(json.dumps(checks, indent=2) + "\n")


if __name__ == "__main__":
    main("visemes", run)
