import json

from tasks import artifacts
from tasks.artifacts import DubbedSpeech, Metrics, Translation, atomic_path
from tasks.evaluate import timing_report, word_error_rate
from tasks.media import SPEECH_RATE, extract_audio
from tasks.stage import StageContext, instantiate, log, main


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
    metrics = Metrics(
        language=context.lang,
        detected_language=heard.language,
        detected_language_probability=heard.language_probability,
        wer=round(word_error_rate(translation.text, heard.text), 4),
        reference=translation.text,
        hypothesis=heard.text,
        extra=timing_report(speech, {s.id: s.end for s in translation.segments}),
    )
    with atomic_path(out / "metrics.json") as tmp:
        summary = {"wer": metrics.wer, "language_ok": float(heard.language == context.lang), **metrics.extra}
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
    artifacts.write(out / "report.json", metrics)
    log.info("dubbed %s heard as %s (p=%.2f), WER %.1f%%", context.lang, heard.language,
             heard.language_probability, 100 * metrics.wer)


if __name__ == "__main__":
    main("evaluate", run)
