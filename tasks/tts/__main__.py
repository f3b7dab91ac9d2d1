import numpy as np
from tqdm import tqdm

from tasks import artifacts
from tasks.artifacts import DubbedSpeech, Probe, Translation, atomic_dir
from tasks.ingest import BACKGROUND
from tasks.media import SPEECH_RATE, read_wav, resample, write_wav
from tasks.stage import StageContext, StageError, instantiate, log, main
from tasks.speakers.schema import read as read_speakers
from tasks.tts import Timing, aimed_lengths, describe, fit_to_slot, mix, report_row, slots, synthesize_shortened
from tasks.tts.audition import Listener
from tasks.tts.matching import NoMatch, assign_voices, cast_voices, match_loudness, speaker_lines
from tasks.tts.memo import RememberingVoice
from tasks.tts.timing import SegmentTiming, TimingReport, insert_pauses, plan_fit, write_report


def run(context: StageContext) -> None:
    translation = artifacts.read(context.input_dir("mt") / "translation.json", Translation)
    probe = artifacts.read(context.input_dir("ingest") / "probe.json", Probe)
    soundtrack, rate = read_wav(context.input_dir("ingest") / "soundtrack.wav")
    voices = context.config.get("voices") or {}
    if context.lang not in voices:
        raise StageError(f"no voice configured for {context.lang!r} in conf/tts (have: {', '.join(sorted(voices))})")
    default_voice = instantiate(voices, context.lang)
    speakers = read_speakers(context.input_dir("speakers") / "speakers.json")
    matching = context.config.get("matching") or {}
    candidates = {name: instantiate(node) for name, node in ((matching.get("candidates") or {}).get(context.lang) or {}).items()}
    defaults = tuple(name for name, voice in candidates.items() if repr(voice) == repr(default_voice))
    # the audition's renderings of the chosen voice are the stage's first syntheses of those lines
    remembered_s = float(context.config.get("remembered_speech_s") or 0)
    remember = (lambda voice: RememberingVoice(voice, remembered_s)) if remembered_s > 0 else (lambda voice: voice)
    candidates = {name: remember(voice) for name, voice in candidates.items()}
    default_voice = candidates[defaults[0]] if defaults else remember(default_voice)
    converter = instantiate(matching, "converter") if matching.get("converter") else NoMatch()
    fitter = instantiate(matching, "fitting") if (matching.get("fitting") or {}).get("_target_") else None
    timing = Timing(**(context.config.get("timing") or {}))
    aims = aimed_lengths(translation.segments, probe.duration, timing.free_after_s)
    listening = matching.get("intelligibility") or {}
    listener = Listener(instantiate(listening, "recognizer"), context.lang) if listening.get("recognizer") else None
    # voices a person cast: those speakers skip the fitting and the audition
    cast = cast_voices(context.config.get("cast"), context.lang, candidates, [p.speaker for p in speakers.profiles])
    uncast = tuple(p for p in speakers.profiles if p.speaker not in cast)
    voice_of, auditions = assign_voices(uncast, candidates, context.lang, speaker_lines(translation.segments, seconds=aims),
                                        int(matching.get("auditioned", 1)), defaults, pace=timing.pace,
                                        converter=converter if matching.get("rank_converted") else None,
                                        listener=listener,
                                        max_wer_over_default=float(listening.get("max_wer_over_default", 0.1)),
                                        passing_wer=float(listening.get("passing_wer", 0.0)),
                                        workers=int(matching.get("audition_workers", 1)),
                                        fitter=fitter, wrap=remember, late_after_s=timing.late_after_s)
    voice_of.update({speaker: candidates[name] for speaker, name in cast.items()})
    for speaker, voice in voice_of.items():
        if speaker in cast:
            log.info("speaker %s: base voice %s as cast (tts.cast), conversion %s", speaker, voice.name, converter.name)
            continue
        heard = ", ".join(f"{name} {score:.3f}" for name, score in auditions.get(speaker, {}).items())
        log.info("speaker %s: base voice %s, conversion %s%s", speaker, voice.name, converter.name,
                 f" (auditioned: {heard})" if heard else "")
    dub = np.zeros(len(soundtrack), dtype=np.float32)
    rows, dub_spans, timings = [], [], []
    ordered = sorted(translation.segments, key=lambda s: s.start)
    previous_end = 0.0
    for segment, slot in tqdm(list(zip(ordered, slots(ordered, probe.duration))), desc=f"tts {context.lang}", unit="seg"):
        if not segment.text:
            continue
        voice = voice_of.get(segment.speaker, default_voice)
        end = min(segment.end, slot[1])  # the original may run past the end of the video
        speech, speed, shortened = synthesize_shortened(voice, segment.text, aims[segment.id], timing.pace)
        speech = resample(speech, voice.sample_rate, rate)
        speech, inserted = insert_pauses(speech, rate, end - segment.start - len(speech) / rate,
                                         timing.max_pause_gain_s) if not shortened else (speech, shortened)
        pauses_added = sum(length for _, length in inserted)
        # the stretch only adds to what the synthesis rate did, up to a total speed-up
        min_time_scale = max(timing.min_time_scale, speed / timing.max_total_speed)
        fit = plan_fit(len(speech) / rate, segment.start, end, previous_end, slot[1], min(min_time_scale, 1.0),
                       timing.max_time_scale, timing.max_early_s, timing.stretch_dead_band_s, timing.free_after_s)
        speech, conversion = converter.match(speech, rate, speakers.profile(segment.speaker), fit.time_scale)
        speech, overrun = fit_to_slot(speech, rate, slot[1] - fit.start, timing.fade_s)
        first = int(round(fit.start * rate))
        placed = speech[: max(0, len(dub) - first)]
        dub[first:first + len(placed)] += placed
        placed_end = fit.start + len(placed) / rate
        dub_spans.append((fit.start, placed_end))
        previous_end = placed_end
        if fit.time_scale != 1.0:
            conversion = {**conversion, "time_scale": fit.time_scale}
        rows.append(report_row(segment, slot, voice.name, speed, len(placed) / rate, overrun, voice.phonemes(segment.text),
                               describe(conversion), fit.start))
        timings.append(SegmentTiming(segment.id, segment.speaker, segment.start, end, round(fit.start, 3),
                                     round(placed_end, 3), round(speed, 3), fit.time_scale, round(pauses_added, 3), fit.borrowed_before,
                                     fit.borrowed_after, round(overrun, 3), inserted))
        if overrun:
            log.warning("segment %d overruns by %.2f s at speed %.2f and stretch %.2f: cut", segment.id, overrun, speed,
                        fit.time_scale)
    original_spans = [(s.start, s.end) for s in ordered]
    background = context.input_dir("ingest") / BACKGROUND
    mixed = mix(soundtrack, rate, dub, original_spans, timing, dub_spans,
                read_wav(background)[0] if background.exists() else None)
    mixed, gain_db = match_loudness(mixed, rate, soundtrack)  # EBU R128: as loud as the source
    with atomic_dir(context.out_dir()) as out:
        write_wav(out / "speech.wav", mixed, rate)
        write_wav(out / "voice.wav", resample(dub, rate, SPEECH_RATE), SPEECH_RATE)  # the dub alone, for visemes
        artifacts.write(out / "segments.json", DubbedSpeech(context.lang, rate, tuple(rows)))
        report = TimingReport(context.lang, timing.start_tolerance_s, timing.end_tolerance_s, tuple(timings))
        write_report(out / "timing.json", report)
    log.info("%d segments voiced (%s); loudness matched with %+.1f dB; max speed %.2f; total overrun %.2f s; "
             "%.0f%% on time", len(rows), ", ".join(sorted({r.voice for r in rows})), gain_db,
             max((r.speed for r in rows), default=1.0), sum(r.overrun for r in rows), 100 * report.within())
    late = [s.id for s in report.off_time()]
    if late:
        log.warning("segment%s %s off time even at the fastest speech allowed: a shorter translation would fit "
                    "(correct it in data/mt/%s/%s/edits.yaml and run again with --edits that file)",
                    "s" if len(late) > 1 else "", ", ".join(map(str, late)), context.video, context.lang)


if __name__ == "__main__":
    main("tts", run)
