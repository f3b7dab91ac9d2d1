import json

from tasks import artifacts
from tasks.artifacts import DubbedSpeech, Metrics, Transcript, Translation, atomic_path
from tasks.evaluate import timing_report, word_error_rate
from tasks.media import SPEECH_RATE, extract_audio
from tasks.stage import StageContext, instantiate, log, main, source_video


SYNC_FIGURES = ("closure_rate", "closure_excess", "aperture_contrast", "sync_confidence", "sync_offset_ms")


def lip_sync_figures(context: StageContext, rendered, heard, source_language: str) -> dict[str, float]:
    """Lip sync of the dubbed video against its dubbed audio, and of the source against its own
    audio (what the real person achieves), measured the same way, independently of the synthesizer."""
    from tasks.evaluate.lipsync import measure
    from tasks.visemes.align import AsrAligner

    aligner = AsrAligner(**dict(context.config.get("lipsync_aligner") or {}))
    equalisation = context.config.get("lipsync_equalisation")
    landmarker = context.config.get("lipsync_landmarker") or "dlib"
    jitter = context.config.get("lipsync_jitter")
    jitter = dict(jitter) if jitter else None
    stops = context.config.get("lipsync_stops")
    stops = dict(stops) if stops else None
    transcript = artifacts.read(context.input_dir("asr") / "transcript.json", Transcript)
    runs = {
        # words heard in another language would place the wrong phones: the measure then runs its
        # own recognition forced to the dubbed language
        "lipsync": measure(rendered, None, context.lang, aligner=aligner,
                           words=words_of(heard) if heard.language == context.lang else None, equalisation=equalisation,
                           landmarker=landmarker, stops=stops, jitter=jitter),
        "source_lipsync": measure(source_video(context.root, context.video), None, source_language, aligner=aligner,
                                  words=words_of(transcript), equalisation=equalisation, landmarker=landmarker,
                                  stops=stops, jitter=jitter),
    }
    figures = {}
    for prefix, scores in runs.items():
        values = scores.as_dict()
        figures.update({f"{prefix}_{name}": values[name] for name in SYNC_FIGURES if values.get(name) is not None})
    log.info("lip sync, dubbed vs source: closure excess %s vs %s, aperture contrast %s vs %s",
             figures.get("lipsync_closure_excess"), figures.get("source_lipsync_closure_excess"),
             figures.get("lipsync_aperture_contrast"), figures.get("source_lipsync_aperture_contrast"))
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
        extra.update(lip_sync_figures(context, rendered[0], heard, translation.source_language))
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
