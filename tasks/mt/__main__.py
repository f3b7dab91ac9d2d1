from dataclasses import replace

from tasks import artifacts
from tasks.artifacts import Transcript, atomic_dir
from tasks.mt import translate_transcript
from tasks.mt.edits import EDITS_FILE, apply_edits, correct_source, edits_template, kept_edits, read_edits
from tasks.speakers.schema import read as read_speakers
from tasks.stage import StageContext, StageError, instantiate, log, main


def run(context: StageContext) -> None:
    transcript = artifacts.read(context.input_dir("asr") / "transcript.json", Transcript)
    speakers = read_speakers(context.input_dir("speakers") / "speakers.json")
    transcript = replace(transcript, segments=speakers.segments)  # the same speech, with who says it
    corrections = read_edits(kept_edits(context.root, context.video))
    if context.lang != transcript.language:   # re-voicing in the source's language: its lines are the translation's
        transcript = correct_source(transcript, corrections.get(transcript.language, {}))
    translator = instantiate(context.config)
    try:
        translation = translate_transcript(transcript, translator, context.lang)
    except ValueError as error:  # an unsupported pair: the route table says which exist
        raise StageError(str(error)) from None
    translation = apply_edits(translation, corrections.get(context.lang, {}))
    with atomic_dir(context.out_dir()) as out:
        artifacts.write(out / "translation.json", translation)
        (out / EDITS_FILE).write_text(edits_template(translation), encoding="utf-8")
    for segment in translation.segments:
        log.info("[%6.2f-%6.2f] %s -> %s%s", segment.start, segment.end, segment.source_text, segment.text,
                 "  (corrected)" if segment.edited else "")


if __name__ == "__main__":
    main("mt", run)
