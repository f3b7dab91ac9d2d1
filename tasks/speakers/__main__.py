from tasks import artifacts
from tasks.artifacts import Transcript, atomic_dir
from tasks.media import read_wav
from tasks.speakers import relabel_segments
from tasks.speakers.schema import SpeakerTurn, Speakers, write
from tasks.stage import StageContext, StageError, instantiate, log, main


def run(context: StageContext) -> None:
    transcript = artifacts.read(context.input_dir("asr") / "transcript.json", Transcript)
    audio, rate = read_wav(context.input_dir("ingest") / "audio.wav")
    wav = audio.mean(axis=1)
    diarizer = instantiate(context.config, "backend")
    num_speakers = context.config.get("num_speakers")
    if num_speakers is not None and int(num_speakers) < 1:
        raise StageError(f"speakers.num_speakers must be null or >= 1, got {num_speakers}")
    turns, _ = diarizer.diarize(wav, rate, num_speakers=num_speakers)
    if not turns:  # no speech found by the VAD: one speaker over the ASR segments
        from tasks.speakers import Turn

        turns = [Turn(s.start, s.end, "S0") for s in transcript.segments]
    primary = [t for t in turns if not t.overlap]  # one speaker per moment: segment labels and voices
    segments = relabel_segments(transcript.segments, primary)
    profiles = diarizer.profiles(wav, rate, primary)
    result = Speakers(backend=diarizer.name, num_speakers=len(profiles),
                      turns=tuple(SpeakerTurn(t.start, t.end, t.speaker) for t in primary),
                      profiles=tuple(profiles), segments=segments, language=transcript.language,
                      params={k: v for k, v in context.config.items() if k != "backend"},
                      overlaps=tuple(SpeakerTurn(t.start, t.end, t.speaker) for t in turns if t.overlap))
    with atomic_dir(context.out_dir()) as out:
        write(out / "speakers.json", result)
    for p in profiles:
        log.info("%s: %.1f s of speech, median f0 %.0f Hz (%.0f-%.0f), %s", p.speaker, p.speech_s, p.median_f0,
                 p.f0_low, p.f0_high, p.gender)
    log.info("%d speakers, %d turns, %d overlapped turns, %d segments", len(profiles), len(primary),
             len(result.overlaps), len(segments))


if __name__ == "__main__":
    main("speakers", run)
