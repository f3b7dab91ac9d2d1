from dataclasses import replace

from tasks import artifacts
from tasks.artifacts import atomic_dir
from tasks.asr import merge_fragments
from tasks.stage import StageContext, StageError, instantiate, log, main


def run(context: StageContext) -> None:
    recognizer = instantiate(context.config, "backend")
    transcript = recognizer.transcribe(context.input_dir("ingest") / "audio.wav")
    if merge := context.config.get("merge"):
        transcript = replace(transcript, segments=merge_fragments(transcript.segments, **merge))
    if not transcript.segments:
        raise StageError("no speech was recognised in the audio track: nothing to dub")
    with atomic_dir(context.out_dir()) as out:
        artifacts.write(out / "transcript.json", transcript)
    log.info("language %s (p=%.2f), %d segments: %s", transcript.language, transcript.language_probability,
             len(transcript.segments), transcript.text[:120])


if __name__ == "__main__":
    main("asr", run)
