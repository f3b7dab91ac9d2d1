from tasks.artifacts import atomic_dir
from tasks.ingest import ingest
from tasks.stage import StageContext, instantiate, log, main, source_video


def run(context: StageContext) -> None:
    source = source_video(context.root, context.video)
    background = instantiate(context.config, "background") if context.config.get("background") else None
    with atomic_dir(context.out_dir()) as out:
        description = ingest(source, out, max_channels=context.config.get("max_channels", 2), background=background)
    log.info("%s: %dx%d%s, %.3f fps%s, %d frames, %.2f s, audio %s %d Hz x%d", source.name, description.width,
             description.height, f" (turned {description.rotation} degrees for display)" if description.rotation else "",
             description.fps, "" if description.constant_rate else " (a variable frame rate: the stages read its picture "
             "at this constant rate, written to picture.mkv)", description.frames, description.duration,
             description.audio_codec, description.audio_rate, description.audio_channels)
    if description.video_stream:
        log.info("the picture is video stream %d, not the first (a cover picture or another video before it): "
                 "the stages read it from picture.mkv", description.video_stream)
    if description.audio_stream:
        log.info("the sound dubbed is audio stream %d, not the first (the one marked default, or the first not marked "
                 "as commentary or description)", description.audio_stream)
    if background is not None:
        log.info("background.wav: the soundtrack without its speech (%s), played under the dub", background.name)


if __name__ == "__main__":
    main("ingest", run)
