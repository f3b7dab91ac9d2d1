import json

from tasks import artifacts
from tasks.artifacts import DubbedSpeech, Metrics, Transcript, Translation, atomic_path
from tasks.evaluate import timing_report, word_error_rate
from tasks.media import SPEECH_RATE, extract_audio
from tasks.stage import StageContext, instantiate, log, main, source_video


SYNC_FIGURES = ("closure_rate", "closure_excess", "aperture_contrast", "sync_confidence", "sync_offset_ms")


def lip_sync_figures(context: StageContext, rendered, heard, source_language: str, plot_path) -> dict[str, float]:
    """Lip sync of the dubbed video against its dubbed audio, and of the source against its own
    audio (what the real person achieves), measured the same way, independently of the synthesizer;
    what the measure read is drawn at `plot_path`."""
    from tasks.evaluate.lipsync import measure, mouth_track
    from tasks.evaluate.plot import plot_lipsync
    from tasks.visemes.align import AsrAligner

    aligner = AsrAligner(**dict(context.config.get("lipsync_aligner") or {}))
    reading = {"equalisation": context.config.get("lipsync_equalisation"),
               "landmarker": context.config.get("lipsync_landmarker") or "dlib",
               "jitter": dict(context.config["lipsync_jitter"]) if context.config.get("lipsync_jitter") else None}
    stops = context.config.get("lipsync_stops")
    stops = dict(stops) if stops else None
    transcript = artifacts.read(context.input_dir("asr") / "transcript.json", Transcript)
    source = source_video(context.root, context.video)
    # words heard in another language would place the wrong phones: the measure then runs its own
    # recognition forced to the dubbed language
    videos = {"lipsync": (rendered, context.lang, words_of(heard) if heard.language == context.lang else None),
              "source_lipsync": (source, source_language, words_of(transcript))}
    runs, mouths = {}, {}
    for prefix, (video, language, words) in videos.items():
        mouths[prefix] = mouth_track(video, **reading)
        runs[prefix] = measure(video, None, language, mouth=mouths[prefix], aligner=aligner, words=words, stops=stops)
    plot_lipsync(plot_path, [(f"source ({source_language}), its own audio", mouths["source_lipsync"], runs["source_lipsync"]),
                             (f"dub ({context.lang})", mouths["lipsync"], runs["lipsync"])])
    figures = {}
    for prefix, scores in runs.items():
        values = scores.as_dict()
        figures.update({f"{prefix}_{name}": values[name] for name in SYNC_FIGURES if values.get(name) is not None})
    log.info("lip sync, dubbed vs source: closure excess %s vs %s, aperture contrast %s vs %s (%s)",
             figures.get("lipsync_closure_excess"), figures.get("source_lipsync_closure_excess"),
             figures.get("lipsync_aperture_contrast"), figures.get("source_lipsync_aperture_contrast"), plot_path.name)
    return figures


def words_of(transcript) -> list[tuple[float, float, str]]:
    return [(w.start, w.end, w.text) for segment in transcript.segments for w in segment.words]


def run(context: StageContext) -> None:
    translation = artifacts.read(context.input_dir("mt") / "translation.json", Translation)
    speech = artifacts.read(context.input_dir("tts") / "segments.json", DubbedSpeech)
    rendered = sorted(context.input_dir("render").glob(f"{context.video}.{context.lang}.*"))
    out = context.out_dir()
    out.mkdir(parents=True, exist_ok=True)
    audio = extract_audio(rendered[0], out / "dubbed_audio.wav", SPEECH_RATE, 1)
    recognizer = instantiate(context.config, "recognizer")
    heard = recognizer.transcribe(audio)
    audio.unlink()
    extra = timing_report(speech, {s.id: s.end for s in translation.segments})
    if context.config.get("lipsync", True):
        extra.update(lip_sync_figures(context, rendered[0], heard, translation.source_language, out / "lipsync.png"))
    else:
        from tasks.evaluate.plot import plot_switched_off

        plot_switched_off(out / "lipsync.png")
    metrics = Metrics(
        language=context.lang,
        detected_language=heard.language,
        detected_language_probability=heard.language_probability,
        wer=round(word_error_rate(translation.text, heard.text), 4),
        reference=translation.text,
        hypothesis=heard.text,
        extra=extra,
    )
    with atomic_path(out / "metrics.json") as tmp:
        summary = {"wer": metrics.wer, "language_ok": float(heard.language == context.lang), **metrics.extra}
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
    artifacts.write(out / "report.json", metrics)
    log.info("dubbed %s heard as %s (p=%.2f), WER %.1f%%", context.lang, heard.language,
             heard.language_probability, 100 * metrics.wer)


if __name__ == "__main__":
    main("evaluate", run)
