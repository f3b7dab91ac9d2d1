"""Validate the visemes stage: acceptance checks on synthesized speech, and curves against reality.

    python scripts/visemes_validate.py [--synth] [--real] [--out /tmp/visemes_validation] [--clips a,b]

--synth  For each supported language, synthesize test sentences with the configured voices
         (conf/tts/auto.yaml: Kokoro for es/pt/fr, Piper for en), take phoneme timings the way the
         stage does (Kokoro durations where the voice is Kokoro, else Whisper + espeak alignment),
         and report: bilabials closed, long pauses closed, largest frame-to-frame jump.
--real   For each clip in ../shared/media/video/, predict the lip-gap curve from the clip's own
         audio (Whisper word timings + espeak alignment) and compare it with the inner-lip gap
         measured by dlib (68 points, normalised by the inter-ocular distance): Pearson r at lag 0,
         the best lag within +-200 ms (positive: the measured mouth trails the prediction) and r there.
Writes report.json and one plot per clip (predicted curves over the waveform, measured gap dashed).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from tasks.visemes.curves import Loudness, check, compute_curves  # noqa: E402
from tasks.visemes.tables import load_table  # noqa: E402

SHARED = PROJECT.parent / "shared" / "media"
SENTENCES = {
    "es": ["Mi mamá me mima mucho, pero bebe poco.", "Pablo busca un buen empleo en Bogotá. Ahora, ¿puedes ayudarme?"],
    "pt": ["O menino bebe muito pouco, mas come bem.", "Preciso de um bom emprego em Belo Horizonte. Pode me ajudar?"],
    "fr": ["Pierre mange du pain blanc avec beaucoup de beurre.", "Mon ami Paul habite à Bordeaux. Peux-tu m'aider, s'il te plaît?"],
    "en": ["My mom bought a big blue boat for Bob.", "Peter picked a bunch of apples, maybe more. Can you help me, please?"],
}
log = logging.getLogger("visemes.validate")
LOUDNESS_GAIN = 0.5


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 10 or np.std(a[ok]) == 0 or np.std(b[ok]) == 0:
        return float("nan")
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def lagged(predicted: np.ndarray, measured: np.ndarray, fps: float, max_lag_s: float = 0.2) -> tuple[float, float]:
    """Best lag (ms; positive = measured trails predicted) and r there."""
    best = (0.0, -2.0)
    for lag in range(-int(round(max_lag_s * fps)), int(round(max_lag_s * fps)) + 1):
        if lag >= 0:
            r = pearson(predicted[: len(predicted) - lag], measured[lag:])
        else:
            r = pearson(predicted[-lag:], measured[: len(measured) + lag])
        if np.isfinite(r) and r > best[1]:
            best = (1000.0 * lag / fps, r)
    return best


def subframe_lag(predicted: np.ndarray, measured: np.ndarray, fps: float, max_lag_s: float = 0.2, step_ms: float = 5.0) -> tuple[float, float]:
    """Lag at `step_ms` resolution by shifting the prediction with linear interpolation."""
    t = np.arange(len(predicted)) / fps
    best = (0.0, -2.0)
    for lag_ms in np.arange(-max_lag_s * 1000, max_lag_s * 1000 + step_ms / 2, step_ms):
        shifted = np.interp(t - lag_ms / 1000.0, t, predicted, left=np.nan, right=np.nan)
        r = pearson(shifted, measured)
        if np.isfinite(r) and r > best[1]:
            best = (float(lag_ms), r)
    return best


# --------------------------------------------------------------------------- synthesized speech

def synth_check(lang: str, out: Path, fps: float = 25.0) -> dict:
    import yaml
    from hydra.utils import instantiate

    from tasks.artifacts import DubbedSegment
    from tasks.media import SPEECH_RATE, resample, write_wav
    from tasks.visemes.align import AsrAligner, KokoroAligner

    voices = yaml.safe_load((PROJECT / "conf" / "tts" / "auto.yaml").read_text())["voices"]
    voice = instantiate(voices[lang])
    table = load_table(lang)
    results = []
    for index, text in enumerate(SENTENCES[lang]):
        speech = resample(voice.synthesize(text), voice.sample_rate, SPEECH_RATE)
        lead = 0.5
        audio = np.concatenate([np.zeros(int(lead * SPEECH_RATE)), speech, np.zeros(int(0.5 * SPEECH_RATE))]).astype(np.float32)
        wav = write_wav(out / f"synth_{lang}_{index}.wav", audio, SPEECH_RATE)
        duration = len(speech) / SPEECH_RATE
        segment = DubbedSegment(index, lead, lead + duration, lead + duration, voice.name, 1.0, duration, 0.0, text, voice.phonemes(text))
        frames = int(len(audio) / SPEECH_RATE * fps)
        methods = {}
        if KokoroAligner.handles([segment]):
            methods["kokoro-durations"] = KokoroAligner().align(wav, [segment], table, {}).phones
        methods["asr"] = AsrAligner().align(wav, [segment], table, {}).phones
        from tasks.visemes.align import ENVELOPE_RATE, envelope

        loud = (envelope(audio, SPEECH_RATE), ENVELOPE_RATE)
        for method, phones in methods.items():
            curves = compute_curves(phones, table, fps, frames, loudness=loud, loudness_model=Loudness(gain=LOUDNESS_GAIN))
            result = check(curves, table)
            results.append({"sentence": text, "method": method, **{k: v for k, v in result.items() if k != "max_jump_per_param"}})
            if index == 0 and method == list(methods)[0]:
                from tasks.visemes.plot import plot

                plot(out / f"synth_{lang}.png", audio, SPEECH_RATE, fps, [("synth", curves.params)], curves.phones,
                     title=f"{lang}: {text} ({method})")
    return {"voice": voice.name, "sentences": results}


# --------------------------------------------------------------------------- real clips

def measured_gap(video: Path, cache: Path) -> tuple[np.ndarray, dict]:
    from tasks.visemes.calibration import mouth_measures, video_landmarks

    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"{video.stem}.landmarks.npz"
    if path.exists():
        with np.load(path) as npz:
            indices, landmarks = npz["indices"], npz["landmarks"]
    else:
        indices, landmarks = video_landmarks(video, detect_every=5)
        np.savez_compressed(path, indices=indices, landmarks=landmarks)
    measures = mouth_measures(landmarks)
    gap = np.full(int(indices.max()) + 1 if len(indices) else 0, np.nan)
    gap[indices] = measures["gap"]
    return gap, {"frames_with_face": int(np.isfinite(measures["gap"]).sum()), "frames": int(len(indices))}


def real_check(video: Path, out: Path, aligner) -> dict:
    from tasks.media import SPEECH_RATE, extract_audio, probe, read_wav

    info = probe(video)
    wav = extract_audio(video, out / f"{video.stem}.wav", SPEECH_RATE, 1)
    started = time.perf_counter()
    words = aligner.words(wav, None)
    table = load_table("en")
    phones = aligner.align_audio(wav, table, words)
    align_s = time.perf_counter() - started
    samples, rate = read_wav(wav)
    from tasks.visemes.align import ENVELOPE_RATE, envelope

    env = envelope(samples.mean(axis=1), rate)
    loud = (env, ENVELOPE_RATE) if LOUDNESS_GAIN > 0 else None
    curves = compute_curves(phones, table, info.fps, info.frames, loudness=loud, loudness_model=Loudness(gain=LOUDNESS_GAIN))
    measured, face = measured_gap(video, out / "cache")
    n = min(len(measured), curves.frames)
    result = {"fps": info.fps, "frames": info.frames, **face, "words": len(words), "phones": len(phones), "align_s": round(align_s, 2)}
    for param in ("gap", "jaw"):
        predicted = curves.params[param][:n]
        lag_ms, r_best = subframe_lag(predicted, measured[:n], info.fps)
        result[param] = {"r_lag0": round(pearson(predicted, measured[:n]), 3), "best_lag_ms": lag_ms, "r_best": round(r_best, 3)}
    from tasks.visemes.plot import plot

    plot(out / f"{video.stem}.png", samples.mean(axis=1), rate, info.fps, [("prediction", {k: curves.params[k] for k in ("jaw", "gap", "width", "round")})],
         curves.phones, title=f"{video.name}: predicted from own audio vs measured inner-lip gap (r={result['gap']['r_lag0']:.2f})",
         measured=measured[:n])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--synth", action="store_true")
    parser.add_argument("--real", action="store_true")
    parser.add_argument("--langs", default="es,pt,fr,en")
    parser.add_argument("--clips", default="")
    parser.add_argument("--out", type=Path, default=Path("/tmp/visemes_validation"))
    parser.add_argument("--loudness-gain", type=float, default=LOUDNESS_GAIN)
    args = parser.parse_args()
    globals()["LOUDNESS_GAIN"] = args.loudness_gain
    if not (args.synth or args.real):
        args.synth = args.real = True
    logging.basicConfig(level=logging.WARNING)
    args.out.mkdir(parents=True, exist_ok=True)
    report: dict = {}
    if args.synth:
        report["synth"] = {}
        for lang in args.langs.split(","):
            report["synth"][lang] = synth_check(lang, args.out)
            for row in report["synth"][lang]["sentences"]:
                print(f"synth {lang} {row['method']:>16}: bilabials {row['bilabials_closed']}/{row['bilabials']} closed, "
                      f"long pauses {row['long_pauses_closed']}/{row['long_pauses']} closed, max jump {row['max_jump']:.2f} "
                      f"-> {'ok' if row['ok'] else 'FAIL'}", flush=True)
    if args.real:
        from tasks.visemes.align import AsrAligner

        aligner = AsrAligner()
        report["real"] = {}
        clips = sorted((SHARED / "video").glob("*.mp4"))
        if args.clips:
            clips = [c for c in clips if c.stem in args.clips.split(",")]
        for clip in clips:
            result = real_check(clip, args.out, aligner)
            report["real"][clip.stem] = result
            print(f"real {clip.stem:>22}: gap r={result['gap']['r_lag0']:.2f} (best {result['gap']['r_best']:.2f} at "
                  f"{result['gap']['best_lag_ms']:+.0f} ms), jaw r={result['jaw']['r_lag0']:.2f}; face in "
                  f"{result['frames_with_face']}/{result['frames']} frames", flush=True)
    (args.out / "report.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    print(f"report: {args.out / 'report.json'}")


if __name__ == "__main__":
    main()
