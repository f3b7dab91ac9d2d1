"""python -m tasks.reference --video V: the source's lip sync against its own audio (report.json)."""
from __future__ import annotations

from tasks import artifacts
from tasks.artifacts import SourceLipSync, Transcript
from tasks.stage import StageContext, log, main, picture_video, source_video


def run(context: StageContext) -> None:
    transcript = artifacts.read(context.input_dir("asr") / "transcript.json", Transcript)
    report = context.out_dir() / "report.json"
    if not context.config.get("lipsync", True):
        artifacts.write(report, SourceLipSync(transcript.language, measured=False))
        log.info("lip-sync measure switched off (evaluate.lipsync: false): nothing measured")
        return
    from tasks.evaluate.lipsync import (measure, measure_settings, mouth_track, setting_values, source_reading,
                                        speaker_spans, speaking_faces, words_of)
    from tasks.speakers.schema import read as read_speakers

    aligner, reading, stops = measure_settings(context.config)
    source = picture_video(context.root, context.video)   # the frames (ingest's picture copy, where it made one) ...
    sound = source_video(context.root, context.video)      # ... and the sound, from the source itself
    # several people: each one's lips while they speak (speakers.json's segments, the face stage's faces)
    speaking = speaking_faces(context.input_dir("face"), speaker_spans(read_speakers(context.input_dir("speakers") / "speakers.json").segments))
    mouth = mouth_track(source, **reading, progress="lips of the source", speaking=speaking)
    scores = measure(source, sound, transcript.language, mouth=mouth, aligner=aligner, words=words_of(transcript), stops=stops)
    artifacts.write(report, source_reading(mouth, scores, transcript.language, setting_values(context.config)))
    figure = lambda value: "-" if value is None else f"{value:.2f}"   # None: nothing to measure it on
    log.info("source (%s) against its own audio: closure excess %s over %d bilabials, aperture contrast %s, "
             "face on %.0f%% of frames", transcript.language, figure(scores.closure_excess), scores.closures,
             figure(scores.aperture_contrast), 100 * scores.face_coverage)


if __name__ == "__main__":
    main("reference", run)
