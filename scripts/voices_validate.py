"""Measure issue 5's targets (voices) on the real media and print a table.

    python scripts/voices_validate.py [--workspace /tmp/voices] [--clips a,b] [--lang en] [hydra overrides]

1. DER of the speakers backend on two_speakers_stereo_en.wav mixed to mono (truth: voice activity of
   each channel) and on a two-clip composite (frontal_man_suit / frontal_woman_flag taking turns).
2. Per clip of media/video: the real ingest, asr and speakers stages, then the real tts stage twice
   on the transcript (re-voiced in `--lang`: default the source language, so no MT is involved; another
   language goes through the real mt stage first, and WER is measured against the translation):
   "plain" = default voice, no conversion, no stretch (the unmodified synthesis), "matched" = the
   configured voice matching and timing fit. Reported: number of speakers, GE2E cosine of the dub
   to the speaker (plain -> matched; Kokoro, and Piper with its seed, say a line the same way every
   run: Piper without one moved it by about +-0.02), the same per segment on one synthesis (the chosen base voice unconverted ->
   converted, from the stage's report), share of segments starting within 100 ms and ending within
   300 ms, Whisper WER of the dub (plain -> matched), loudness of the mix vs the source (LU), and the
   base voice(s) the matching chose. The count is strict: a dub that ends more than 300 ms late is
   late even where it ran into silence it was allowed to borrow (that is reported as `borrowed`).
Scratch data goes to the workspace; ingest/asr outputs already there are reused.
"""
from __future__ import annotations

import argparse
import copy
import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))
MEDIA = PROJECT.parent / "shared" / "media"
RATE = 16000


def load16k(path: Path) -> np.ndarray:
    from tasks.media import ffmpeg

    out = subprocess.run([ffmpeg(), "-v", "error", "-i", str(path), "-ac", "1", "-ar", str(RATE), "-f", "f32le", "-"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(out, np.float32)


def activity_truth(x: np.ndarray, name: str, offset: float = 0.0):
    """Reference turns from one clean voice: energy voice activity (as tests/test_speakers.py)."""
    from tasks.speakers import FRAME_S, Turn, runs, smooth_mask
    from tasks.speakers.backends import energy_vad

    mask = smooth_mask(energy_vad(x, RATE, floor_db=-38, below_peak_db=30), 15, 30)
    return [Turn(round(offset + a * FRAME_S, 2), round(offset + b * FRAME_S, 2), name) for a, b in runs(mask)]


def der_rows(diarizer) -> list[dict]:
    import soundfile

    from tasks.speakers import diarization_error

    stereo, rate = soundfile.read(str(MEDIA / "audio" / "two_speakers_stereo_en.wav"), dtype="float32")
    cases = [("two_speakers_stereo_en (mono mix)", stereo.mean(axis=1),
              activity_truth(stereo[:, 0], "L") + activity_truth(stereo[:, 1], "R"))]
    a, b = load16k(MEDIA / "video" / "frontal_man_suit.mp4"), load16k(MEDIA / "video" / "frontal_woman_flag.mp4")
    pieces = [(a, 0.0, 2.4, "A"), (b, 0.0, 3.05, "B"), (a, 3.45, 4.55, "A"), (b, 3.25, 5.0, "B")]
    wav, ref, t = [], [], 0.0
    for x, start, end, name in pieces:
        chunk = x[int(start * RATE):int(end * RATE)]
        wav.append(chunk)
        ref += activity_truth(chunk, name, t)
        t += len(chunk) / RATE
    cases.append(("composite man_suit/woman_flag", np.concatenate(wav), ref))
    rows = []
    for name, mono, reference in cases:
        hypothesis, _ = diarizer.diarize(mono, RATE)
        error = diarization_error(reference, hypothesis)
        rows.append({"case": name, "der": error["der"], "missed": error["missed"], "false_alarm": error["false_alarm"],
                     "confusion": error["confusion"], "speakers": len({h.speaker for h in hypothesis}),
                     "overlap_s": round(sum(h.end - h.start for h in hypothesis if h.overlap), 2)})
    return rows


def prepare(root: Path, clip: Path, params: dict) -> str:
    """ingest + asr for `clip` in `root` (reused when present)."""
    from tasks.asr.__main__ import run as run_asr
    from tasks.ingest import ingest
    from tasks.stage import StageContext

    video = clip.stem
    if not (root / "data" / "ingest" / video / "audio.wav").exists():
        (root / "data" / "input" / video).mkdir(parents=True, exist_ok=True)
        link = root / "data" / "input" / video / clip.name
        if not link.exists():
            link.symlink_to(clip)
        ingest(clip, root / "data" / "ingest" / video)
    if not (root / "data" / "asr" / video / "transcript.json").exists():
        run_asr(StageContext("asr", video, None, root, params))
    return video


def revoice(root: Path, video: str, lang: str, params: dict, plain: bool) -> Path:
    """The real tts stage on the clip's speech in `lang`: the transcript itself where that is the
    clip's language, else the real mt stage's translation; returns the tts output folder."""
    from tasks import artifacts
    from tasks.artifacts import TranslatedSegment, Translation
    from tasks.mt.__main__ import run as run_mt
    from tasks.speakers.schema import read as read_speakers
    from tasks.stage import StageContext
    from tasks.tts.__main__ import run as run_tts

    speakers = read_speakers(root / "data" / "speakers" / video / "speakers.json")
    tag = f"{lang}-plain" if plain else lang
    mt = root / "data" / "mt" / video / tag
    if speakers.language == lang.split("-")[0]:
        segments = tuple(TranslatedSegment(s.id, s.start, s.end, s.speaker, s.text, s.text.strip()) for s in speakers.segments)
        mt.mkdir(parents=True, exist_ok=True)
        artifacts.write(mt / "translation.json", Translation(speakers.language, lang, "identity", segments))
    elif not (mt / "translation.json").exists():
        run_mt(StageContext("mt", video, lang, root, {"mt": params["mt"]}))
        if tag != lang:
            mt.mkdir(parents=True, exist_ok=True)
            (mt / "translation.json").write_bytes((root / "data" / "mt" / video / lang / "translation.json").read_bytes())
    config = copy.deepcopy(params["tts"])
    if plain:
        config["matching"] = {}
        config["timing"] = {**config["timing"], "min_time_scale": 1.0, "max_time_scale": 1.0, "max_early_s": 0.0,
                            "max_pause_gain_s": 0.0, "keep_pause_s": None, "slot_tolerance": 0.0,
                            "free_after_s": 0.0}
    # the stage reads data/mt/<video>/<lang>; a separate "lang" folder keeps the two runs apart
    context = StageContext("tts", video, tag, root, {"tts": config})
    voices = config["voices"]
    if tag not in voices:
        config["voices"] = {**voices, tag: voices[lang]}
        if config.get("matching"):
            config["matching"]["candidates"] = {**config["matching"]["candidates"], tag: config["matching"]["candidates"][lang]}
    run_tts(context)
    return root / "data" / "tts" / video / tag


def active(x: np.ndarray, rate: int, below_peak_db: float = 40.0) -> np.ndarray:
    """The 20 ms frames of `x` within `below_peak_db` of its loudest (silences left out before embedding)."""
    hop = int(rate * 0.02)
    frames = x[:len(x) // hop * hop].reshape(-1, hop)
    if not len(frames):
        return x
    level = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
    return frames[level > level.max() - below_peak_db].ravel()


def clip_row(root: Path, video: str, lang: str, params: dict, encoder, whisper) -> dict:
    from tasks import artifacts
    from tasks.artifacts import Translation
    from tasks.evaluate import word_error_rate
    from tasks.media import read_wav
    from tasks.speakers.schema import read as read_speakers
    from tasks.tts.matching import integrated_loudness, set_level
    from tasks.tts.timing import read_report

    speakers = read_speakers(root / "data" / "speakers" / video / "speakers.json")
    row: dict = {"clip": video, "speakers": speakers.num_speakers}
    soundtrack, rate = read_wav(root / "data" / "ingest" / video / "soundtrack.wav")
    for label, plain in (("plain", True), ("matched", False)):
        out = revoice(root, video, lang, params, plain)
        translation = artifacts.read(root / "data" / "mt" / video / out.name / "translation.json", Translation)
        text = " ".join(s.text.strip() for s in translation.segments)
        voice, voice_rate = read_wav(out / "voice.wav")
        voice = voice.mean(axis=1) if voice.ndim > 1 else voice
        similarities = []
        for profile in speakers.profiles:  # the dub of each speaker's own segments vs that speaker
            mask = np.zeros(len(voice), bool)
            for s in speakers.segments:
                if s.speaker == profile.speaker:
                    mask[int(s.start * voice_rate):int((s.end + 0.5) * voice_rate)] = True
            speech = active(voice[mask], voice_rate)
            if profile.rms_db:  # both runs at the speaker's level, as the mix sets them (GE2E is not level-invariant)
                speech = set_level(speech, voice_rate, profile.rms_db)
            if len(speech) > voice_rate * 0.5 and len(profile.embedding):
                similarities.append(float(encoder.embed_utterance(speech, voice_rate) @ np.asarray(profile.embedding)))
        row[f"sim_{label}"] = min(similarities) if similarities else float("nan")
        heard = " ".join(s.text for s in whisper.transcribe(voice.astype(np.float32), language=lang, beam_size=5)[0])
        row[f"wer_{label}"] = word_error_rate(text, heard)
        report = read_report(out / "timing.json")
        row[f"on_time_{label}"] = report.within()
        row[f"overrun_{label}"] = round(sum(s.overrun for s in report.segments), 2)
        if not plain:
            dubbed = json.loads((out / "segments.json").read_text())["segments"]
            base = [float(part.split("=")[1]) for d in dubbed for part in d["conversion"].split() if part.startswith("similarity_base=")]
            chosen = [float(part.split("=")[1]) for d in dubbed for part in d["conversion"].split() if part.startswith("similarity=")]
            row["voices"] = sorted({d["voice"] for d in dubbed})
            row["seg_sim_base"], row["seg_sim_matched"] = (float(np.mean(base)) if base else float("nan"),
                                                           float(np.mean(chosen)) if chosen else float("nan"))
            mixed, _ = read_wav(out / "speech.wav")
            row["lu_diff"] = integrated_loudness(mixed, rate) - integrated_loudness(soundtrack, rate)
            row["segments"] = [{"id": s.id, "start_err": round(s.start_error, 3), "end_err": round(s.end_error, 3),
                                "scale": s.time_scale, "borrowed": round(s.borrowed_before + s.borrowed_after, 3),
                                "overrun": s.overrun} for s in report.segments]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, default=Path("/tmp/voices_validate"))
    parser.add_argument("--clips", default="", help="comma-separated clip names (default: every video)")
    parser.add_argument("--lang", default="en", help="language to re-voice in (default en: the clips' own)")
    parser.add_argument("--der-only", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--verbose", action="store_true", help="the stages' own log (auditions, fitted voices)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every stage, e.g. asr.trim.enabled=true "
                        "(use a fresh --workspace: ingest/asr outputs already there are reused)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)

    from flows.config import compose
    from tasks.stage import instantiate

    params = compose(args.overrides)
    params["asr"]["backend"]["progress"] = False
    diarizer = instantiate(params["speakers"], "backend")
    ders = der_rows(diarizer)
    print(f"{'case':36} {'DER':>6} {'miss':>6} {'FA':>6} {'conf':>6} {'spk':>4} {'overlap s':>9}")
    for r in ders:
        print(f"{r['case']:36} {r['der']:6.1%} {r['missed']:6.1%} {r['false_alarm']:6.1%} {r['confusion']:6.1%} "
              f"{r['speakers']:4d} {r['overlap_s']:9.2f}")
    rows = []
    if not args.der_only:
        from faster_whisper import WhisperModel

        from tasks.models import resolve
        from tasks.speakers.__main__ import run as run_speakers
        from tasks.stage import StageContext

        whisper = WhisperModel(resolve(params["asr"]["backend"].get("model", "whisper-base")), device="cpu", compute_type="int8")
        wanted = [c for c in args.clips.split(",") if c]
        clips = [p for p in sorted((MEDIA / "video").glob("*.mp4")) if not wanted or p.stem in wanted]
        root = args.workspace
        print(f"\n{'clip':22} {'spk':>3} {'sim plain->matched':>19} {'seg sim base->matched':>22} "
              f"{'on time plain->matched':>23} {'overrun s':>9} {'WER plain->matched':>19} {'LU diff':>7}")
        for clip in clips:
            video = prepare(root, clip, params)
            run_speakers(StageContext("speakers", video, None, root, params))
            r = clip_row(root, video, args.lang, params, diarizer.encoder, whisper)
            rows.append(r)
            print(f"{video:22} {r['speakers']:3d} {r['sim_plain']:8.3f} -> {r['sim_matched']:.3f} "
                  f"{r['seg_sim_base']:11.3f} -> {r['seg_sim_matched']:.3f} "
                  f"{r['on_time_plain']:11.0%} -> {r['on_time_matched']:4.0%}    {r['overrun_matched']:9.2f} "
                  f"{r['wer_plain']:8.1%} -> {r['wer_matched']:6.1%}  {r['lu_diff']:+7.2f}  {','.join(r['voices'])}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"der": ders, "clips": rows}, indent=1))


if __name__ == "__main__":
    main()
