from dataclasses import replace

from tasks import artifacts
from tasks.artifacts import atomic_dir
from tasks.asr import merge_fragments, trim_to_speech, unheard
from tasks.stage import StageContext, StageError, instantiate, log, main


def trimmed_to_speech(recognizer, audio, transcript, vad_threshold: float = 0.5, **options):
    """`transcript` with each segment's edges on the speech the recogniser's voice activity detector hears."""
    if not hasattr(recognizer, "speech"):
        log.info("segment edges kept as recognised: %s has no voice activity detector", recognizer.name)
        return transcript
    trimmed = trim_to_speech(transcript.segments, recognizer.speech(audio, vad_threshold), **options)
    moved = sum(a.start != b.start or a.end != b.end for a, b in zip(transcript.segments, trimmed))
    log.info("segment edges moved onto the speech: %d of %d segments", moved, len(trimmed))
    return replace(transcript, segments=trimmed)


def without_unheard(recognizer, audio, transcript, vad_threshold: float = 0.5, **options):
    """`transcript` without the segments no voice was heard in and Whisper was unsure of (`unheard`)."""
    if not hasattr(recognizer, "speech") or not transcript.segments:
        return transcript
    dropped = set(unheard(transcript.segments, recognizer.speech(audio, vad_threshold), **options))
    for index in sorted(dropped):
        segment = transcript.segments[index]
        log.info("dropped %.2f-%.2f s %r: no voice in it, and Whisper was unsure of its words (a hallucination)",
                 segment.start, segment.end, segment.text[:60])
    return replace(transcript, segments=tuple(s for i, s in enumerate(transcript.segments) if i not in dropped))


def run(context: StageContext) -> None:
    recognizer = instantiate(context.config, "backend")
    audio = context.input_dir("ingest") / "audio.wav"
    transcript = recognizer.transcribe(audio)
    unvoiced = dict(context.config.get("drop_unheard") or {})
    if unvoiced.pop("enabled", False):   # before the merge folds a lone hallucinated word into a real line
        transcript = without_unheard(recognizer, audio, transcript, **unvoiced)
    if merge := context.config.get("merge"):
        transcript = replace(transcript, segments=merge_fragments(transcript.segments, **merge))
    trim = dict(context.config.get("trim") or {})
    if trim.pop("enabled", False) and transcript.segments:
        transcript = trimmed_to_speech(recognizer, audio, transcript, **trim)
    if not transcript.segments:
        raise StageError("no speech was recognised in the audio track: nothing to dub")
    with atomic_dir(context.out_dir()) as out:
        artifacts.write(out / "transcript.json", transcript)
    log.info("language %s (p=%.2f), %d segments: %s", transcript.language, transcript.language_probability,
             len(transcript.segments), transcript.text[:120])


if __name__ == "__main__":
    main("asr", run)
