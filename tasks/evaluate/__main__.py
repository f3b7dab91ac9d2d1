import json

from tasks import artifacts
from tasks.artifacts import DubbedSpeech, Metrics, SourceLipSync, Translation, atomic_path
from tasks.evaluate import timing_report, word_error_rate
from tasks.media import SPEECH_RATE, extract_audio
from tasks.render import rendered_file
from tasks.stage import StageContext, StageError, instantiate, log, main


SYNC_FIGURES = ("closure_rate", "closure_excess", "aperture_contrast", "sync_confidence", "sync_offset_ms")


def source_reference(context: StageContext) -> SourceLipSync:
    """The reference stage's reading of the source, read with the settings this stage reads the dub with."""
    from tasks.evaluate.lipsync import setting_values

    reference = artifacts.read(context.input_dir("reference") / "report.json", SourceLipSync)
    if not reference.measured:
        raise StageError("the reference stage ran with the lip-sync measure switched off: rerun it (dvc repro reference)")
    if reference.settings != setting_values(context.config):
        raise StageError("the source's lip sync was read with other settings than this dub's (conf/reference must "
                         "take them from conf/evaluate): rerun the reference stage with evaluate's")
    return reference


def lip_sync_figures(context: StageContext, reference: SourceLipSync, rendered, heard, plot_path,
                     speech: DubbedSpeech) -> dict[str, float]:
    """Lip sync of the dubbed video against its dubbed audio, beside the source's against its own
    (what the real person achieves: the reference stage's reading, measured the same way once per
    video), independently of the synthesizer; what the measure read is drawn at `plot_path`."""
    from tasks.evaluate.lipsync import (from_source_reading, measure, measure_settings, mouth_track, speaker_spans,
                                        speaking_faces, words_of)
    from tasks.evaluate.plot import plot_lipsync

    aligner, reading, stops = measure_settings(context.config)
    # words heard in another language would place the wrong phones: the measure then runs its own
    # recognition forced to the dubbed language
    words = words_of(heard) if heard.language == context.lang else None
    # several people: each one's lips while their dub speaks (segments.json, the face stage's faces)
    speaking = speaking_faces(context.input_dir("face"), speaker_spans(speech.segments))
    mouth = mouth_track(rendered, **reading, progress="lips of the dub", speaking=speaking)
    runs = {"lipsync": measure(rendered, None, context.lang, mouth=mouth, aligner=aligner, words=words, stops=stops)}
    source_mouth, runs["source_lipsync"] = from_source_reading(reference)
    releases = dub_release_reading(context, mouth)
    still = source_is_still(context.input_dir("face"))
    source_title = f"source ({reference.language}), its own audio" + (" - a still picture, no reference" if still else "")
    plot_lipsync(plot_path, [(source_title, source_mouth, runs["source_lipsync"]),
                             (f"dub ({context.lang})", mouth, runs["lipsync"])], releases)
    figures = {**release_figures(releases), "source_still": float(still)}
    for prefix, scores in runs.items():
        values = scores.as_dict()
        figures.update({f"{prefix}_{name}": values[name] for name in SYNC_FIGURES if values.get(name) is not None})
        # the face read: a track of the measure's own, or SPEAKING_FACES (-2): each speaker's while they speak
        figures[f"{prefix}_track"] = int(values["extra"].get("track", -1))
    log.info("lip sync, dubbed vs source: closure excess %s vs %s, aperture contrast %s vs %s (%s)",
             figures.get("lipsync_closure_excess"), figures.get("source_lipsync_closure_excess"),
             figures.get("lipsync_aperture_contrast"), figures.get("source_lipsync_aperture_contrast"), plot_path.name)
    return figures


def source_is_still(face_dir) -> bool:
    """Whether the face stage found no mouth moving through the source's speech (a photo: its
    `speaker_basis` "still picture: ...", "chosen, still picture"): the source's lip-sync figures are then the jitter of a
    still mouth against speech, no reference for the dub's."""
    from tasks.face.schema import read_tracks

    basis = read_tracks(face_dir / "tracks.json").speaker_basis
    return any("still picture" in how for how in basis.values())


def dub_release_reading(context: StageContext, mouth) -> dict:
    """The dub's audio-visual offset read from its own bilabial releases (`dub_releases`: the lips of
    `mouth` reopening after each /p b m/ released into a vowel), where the visemes stage timed the
    phones by the synthesizer's durations; {} where it took word timings from speech recognition
    (no exact instants). On the seven real clips the envelope's offset also reads the original
    recordings up to +-200 ms off; this reading is the one that checks the +-40 ms target."""
    from tasks.evaluate.lipsync import dub_releases

    reading = dub_releases(context.input_dir("visemes") / "visemes.json", context.lang, mouth)
    if "releases" not in reading:
        return {}
    log.info("the dub's lips reopen %s ms after its own bilabial releases (median of %d seen of %d)",
             reading["offset_ms"], len(reading["offsets_ms"]), reading["releases"])
    return reading


def release_figures(reading: dict) -> dict[str, float]:
    """metrics.json's figures of a `dub_release_reading` (none where it was not read)."""
    if not reading:
        return {}
    figures = {"lipsync_releases": reading["releases"], "lipsync_releases_seen": len(reading["offsets_ms"])}
    if reading["offset_ms"] is not None:
        figures["lipsync_release_offset_ms"] = reading["offset_ms"]
    return figures


def hear(recognizer, audio, language: str):
    """The dub transcribed as the recogniser hears it (its language detected), and as the dubbed
    `language`: the same transcript where it heard that language, else a second one forced to it.
    Heard as another language (a short or fast line), the words are that language's, and a WER
    against the translation says nothing of whether the dub's words can be understood."""
    heard = recognizer.transcribe(audio)
    return heard, heard if heard.language == language else recognizer.transcribe(audio, language=language)


def run(context: StageContext) -> None:
    translation = artifacts.read(context.input_dir("mt") / "translation.json", Translation)
    speech = artifacts.read(context.input_dir("tts") / "segments.json", DubbedSpeech)
    rendered = rendered_file(context.root, context.video, context.lang)
    reference = source_reference(context) if context.config.get("lipsync", True) else None
    out = context.out_dir()
    out.mkdir(parents=True, exist_ok=True)
    audio = extract_audio(rendered, out / "dubbed_audio.wav", SPEECH_RATE, 1)
    recognizer = instantiate(context.config, "recognizer")
    heard, as_dubbed = hear(recognizer, audio, context.lang)
    audio.unlink()
    extra = timing_report(speech, {s.id: s.end for s in translation.segments})
    if reference is not None:
        extra.update(lip_sync_figures(context, reference, rendered, heard, out / "lipsync.png", speech))
    else:
        from tasks.evaluate.plot import plot_switched_off

        plot_switched_off(out / "lipsync.png")
    metrics = Metrics(
        language=context.lang,
        detected_language=heard.language,
        detected_language_probability=heard.language_probability,
        wer=round(word_error_rate(translation.text, as_dubbed.text), 4),
        reference=translation.text,
        hypothesis=as_dubbed.text,
        extra=extra if as_dubbed is heard else {**extra, "wer_as_detected": round(word_error_rate(translation.text, heard.text), 4)},
    )
    with atomic_path(out / "metrics.json") as tmp:
        summary = {"wer": metrics.wer, "language_ok": float(heard.language == context.lang), **metrics.extra}
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
    artifacts.write(out / "report.json", metrics)
    log.info("dubbed %s heard as %s (p=%.2f), WER %.1f%%%s", context.lang, heard.language, heard.language_probability,
             100 * metrics.wer, "" if as_dubbed is heard else f" transcribed as {context.lang} "
             f"({100 * metrics.extra['wer_as_detected']:.1f}% as {heard.language})")


if __name__ == "__main__":
    main("evaluate", run)
