from dataclasses import replace

from tasks import artifacts
from tasks.artifacts import DubbedSpeech, Probe, atomic_dir
from tasks.render import RenderSettings, render
from tasks.render.subtitles import srt
from tasks.stage import StageContext, log, main, picture_video, source_video


def run(context: StageContext) -> None:
    probe = artifacts.read(context.input_dir("ingest") / "probe.json", Probe)
    config = dict(context.config)
    config["copy_video_codecs"] = tuple(config.get("copy_video_codecs", ()))
    settings = RenderSettings(**config)
    name = f"{context.video}.{context.lang}.{settings.container}"
    lip_synced = context.input_dir("lipsync") / "video.mkv"
    if lip_synced.exists():  # the new mouths: encode it (never stream-copied, it is lossless)
        video, settings = lip_synced, replace(settings, copy_video_codecs=())
    else:  # the source's own picture, or ingest's copy of it (re-encoded: a CRF 10 intermediate)
        video = picture_video(context.root, context.video)
        if video != source_video(context.root, context.video):
            settings = replace(settings, copy_video_codecs=())
    with atomic_dir(context.out_dir()) as out:
        subtitles = None
        if settings.subtitles:
            speech = artifacts.read(context.input_dir("tts") / "segments.json", DubbedSpeech)
            text = srt(speech.segments, probe.duration)
            if text:
                subtitles = out / f"{context.video}.{context.lang}.srt"
                subtitles.write_text(text, encoding="utf-8")
        render(video, context.input_dir("tts") / "speech.wav", probe, settings, out / name, context.lang, subtitles)
    log.info("wrote %s%s", context.out_dir() / name, " and its subtitles" if subtitles else "")


if __name__ == "__main__":
    main("render", run)
