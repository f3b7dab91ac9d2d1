"""Validate the visemes stage: acceptance checks on synthesized speech, and curves against reality.

    python scripts/visemes_validate.py [--synth] [--real] [--out /tmp/visemes_validation] [--clips a,b]

--synth  For each supported language, synthesize test sentences with the configured voices
         (conf/tts/auto.yaml: Kokoro for es/pt/fr, Piper for en), take phoneme timings the way the
         stage does (Kokoro durations where the voice is Kokoro, else Whisper + espeak alignment),
         and report: bilabials closed, long pauses closed, largest frame-to-frame jump.
--real   For each clip in ../shared/media/video/, predict the lip-gap curve from the clip's own
         audio with the stage's settings (Whisper word timings + espeak, boundaries refined on the
         audio) and compare it with the inner-lip gap of the speaking face measured by the face
         stage (its unsmoothed 68-point landmarks, / inter-ocular distance; run here once per clip
         into OUT/face or read from --faces; frames where that face is absent, turned > 30 deg or
         its mouth hidden are left out), each video frame read at its own container timestamp on
         the audio's timeline: Pearson r at lag 0, the best lag within +-200 ms (positive: the
         measured mouth trails the prediction), r there, and the best lag's 90% interval (1 s blocks
         of the clip redrawn: r over the lag is flat, so one clip's best lag is loosely placed). --previous: the settings before this
         refinement, for a before/after on the same measurement. Diagnostics per clip: r inside
         speech alone, the measured lip opening in pauses >= min_pause_s against speech (0..1 of
         the clip's 5th-95th percentile gap: the prediction rests closed in those pauses), in
         shorter pauses and in the last 0.3 s before a phrase that follows a long pause (with the
         predicted gap there, in its own 0..1 units), how the squared residual of the best affine
         fit of the measured gap on the prediction splits over speech, short and long pauses (where
         a better curve would gain), and how far each predicted bilabial is from the measured gap
         minimum within +-150 ms; the best lag of the curves' frame-to-frame changes (a sharper
         peak than the curves' own). How much of the miss the measurement itself could be: the
         landmarks' frame-to-frame noise (an upper bound, `measurement_noise`: 4-14% of the
         residual on five clips, 26-31% on glasses and stage_mic, whose best possible r it caps at
         0.87), and the stability of the scale (inter-ocular distance: 0.5-2.4% variation and
         yaw within -10..+20 deg on the six single-shot clips; gap / a per-shot or yaw-corrected
         scale changes r by < 0.01 there).
--heldout K  with --real: the speaker's own gap targets fitted on the clip's measured lips
         (conf/visemes speaker_fit) scored honestly: K contiguous blocks, each predicted by targets
         fitted on the others (a 0.5 s guard either side left out), against the table's prediction on
         the same frames; best lags of both.
With all clips: the best lag of their r-over-lag curves averaged (weighted by the frames measured),
and with each clip left out (`tasks.evaluate.lipsync.pooled_offset`, as the envelope's offset is pooled).
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

from tasks.evaluate.lipsync import pooled_offset  # noqa: E402
from tasks.visemes.coarticulation import Dominance  # noqa: E402
from tasks.visemes.curves import Loudness, check, compute_curves  # noqa: E402
from tasks.visemes.smoothing import Smoothing  # noqa: E402
from tasks.visemes.speaker_fit import SpeakerFit, basis, evidence, fit_param, time_folds, with_targets  # noqa: E402
from tasks.visemes.tables import load_table  # noqa: E402

SHARED = PROJECT.parent / "shared" / "media"
SENTENCES = {
    "es": ["Mi mamá me mima mucho, pero bebe poco.", "Pablo busca un buen empleo en Bogotá. Ahora, ¿puedes ayudarme?"],
    "pt": ["O menino bebe muito pouco, mas come bem.", "Preciso de um bom emprego em Belo Horizonte. Pode me ajudar?"],
    "fr": ["Pierre mange du pain blanc avec beaucoup de beurre.", "Mon ami Paul habite à Bordeaux. Peux-tu m'aider, s'il te plaît?"],
    "en": ["My mom bought a big blue boat for Bob.", "Peter picked a bunch of apples, maybe more. Can you help me, please?"],
}
log = logging.getLogger("visemes.validate")
MIN_VISIBILITY = 0.5  # face stage's mouth visibility below which the lips are not measured
MAX_YAW = 30.0  # degrees: more turned faces foreshorten the inner-lip gap


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 10 or np.std(a[ok]) == 0 or np.std(b[ok]) == 0:
        return float("nan")
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def closure_offsets(phones, closures: tuple[str, ...], times: np.ndarray, measured: np.ndarray, window_s: float = 0.15) -> np.ndarray:
    """For every closure phone (p/b/m), seconds from its centre to the smallest measured lip gap
    within +-window_s (positive: the real lips close later). Random placement gives about
    window_s / 2 of median error, so this tells how well the phone timing finds the closures."""
    out = []
    for phone in phones:
        if phone.viseme not in closures:
            continue
        near = (times >= phone.center - window_s) & (times <= phone.center + window_s) & np.isfinite(measured)
        if near.any():
            out.append(float(times[near][np.argmin(measured[near])] - phone.center))
    return np.array(out)


def speech_and_pauses(phones, times: np.ndarray, min_pause_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the frames inside spoken phones and inside pauses at least `min_pause_s` long."""
    from tasks.visemes.tables import SILENCE

    speech, pauses = np.zeros(len(times), bool), np.zeros(len(times), bool)
    for phone in phones:
        inside = (times >= phone.start) & (times < phone.end)
        if phone.viseme != SILENCE:
            speech |= inside
        elif phone.end - phone.start >= min_pause_s:
            pauses |= inside
    return speech, pauses


def frame_kinds(phones, times: np.ndarray, min_pause_s: float) -> np.ndarray:
    """Per frame: "speech", "short_pause" (a pause under `min_pause_s`, which the curves do not
    close) or "long_pause"; frames after the last phone count as a long pause."""
    from tasks.visemes.tables import SILENCE

    kinds = np.full(len(times), "long_pause", dtype=object)
    for phone in phones:
        inside = (times >= phone.start) & (times < phone.end)
        if phone.viseme != SILENCE:
            kinds[inside] = "speech"
        elif phone.end - phone.start < min_pause_s:
            kinds[inside] = "short_pause"
    return kinds


def residual_shares(predicted: np.ndarray, measured: np.ndarray, kinds: np.ndarray) -> dict[str, float]:
    """Where the prediction misses: the measured gap is fitted by a + b * predicted (least squares,
    so scale and offset do not count, as in Pearson r) and each kind of frame gets its share of
    the squared residual."""
    ok = np.isfinite(predicted) & np.isfinite(measured)
    if ok.sum() < 3 or np.std(predicted[ok]) == 0:
        return {}
    slope, intercept = np.polyfit(predicted[ok], measured[ok], 1)
    squared = (measured[ok] - (intercept + slope * predicted[ok])) ** 2
    total = float(squared.sum()) or 1.0
    return {str(kind): round(float(squared[kinds[ok] == kind].sum()) / total, 3) for kind in np.unique(kinds[ok])}


def before_onsets(phones, times: np.ndarray, min_pause_s: float, window_s: float = 0.3) -> np.ndarray:
    """Frames in the last `window_s` (at most half) of every pause at least `min_pause_s` long that a
    sound follows: where real speakers often part their lips before the voice starts."""
    from tasks.visemes.tables import SILENCE

    mask = np.zeros(len(times), bool)
    for phone, following in zip(phones, phones[1:]):
        if phone.viseme == SILENCE and following.viseme != SILENCE and phone.end - phone.start >= min_pause_s:
            start = max(phone.end - window_s, 0.5 * (phone.start + phone.end))
            mask |= (times >= start) & (times < phone.end)
    return mask


def measurement_noise(predicted: np.ndarray, measured: np.ndarray, window: int = 7, degree: int = 4) -> dict[str, float]:
    """How much of the miss is the landmarks' own frame-to-frame noise: each run of measured frames
    is compared with a local polynomial fit (degree 4 over 7 frames, as the face stage's jitter
    figure: it follows articulation up to about 4 Hz), the residual variance is scaled back to the
    white-noise variance it implies, and that is set against the measured gap's variance and the
    squared residual of the best affine fit on the prediction. An upper bound: faster real motion (a
    two-frame closure) counts as noise too. `r_ceiling`: the r a perfect prediction could reach."""
    from tasks.face.geometry import local_fit_weights

    weights, half = local_fit_weights(window, degree), window // 2
    finite = np.isfinite(measured)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], finite.astype(int), [0]])))
    residuals = []
    for start, stop in zip(edges[::2], edges[1::2]):
        run = measured[start:stop]
        if len(run) >= window:
            fitted = sum(weights[k] * run[k:len(run) - window + 1 + k] for k in range(window))
            residuals.append(run[half:len(run) - half] - fitted)
    ok = finite & np.isfinite(predicted)
    if not residuals or ok.sum() < 3 or np.std(predicted[ok]) == 0:
        return {}
    noise = float(np.mean(np.concatenate(residuals) ** 2) / (1.0 - weights[half]))
    slope, intercept = np.polyfit(predicted[ok], measured[ok], 1)
    miss = float(np.mean((measured[ok] - intercept - slope * predicted[ok]) ** 2))
    variance = float(np.var(measured[ok]))
    return {"noise_sd": round(float(np.sqrt(noise)), 4), "share_of_variance": round(noise / variance, 3),
            "share_of_residual": round(noise / miss, 3), "r_ceiling": round(float(np.sqrt(max(0.0, 1.0 - noise / variance))), 3)}


def lag_curve(predicted: np.ndarray, measured: np.ndarray, fps: float, max_lag_s: float = 0.2,
              step_ms: float = 5.0) -> tuple[np.ndarray, np.ndarray]:
    """(lags ms, r at each): the prediction shifted by each lag (linear interpolation) against the
    measured curve; positive: the measured mouth trails the prediction."""
    t = np.arange(len(predicted)) / fps
    lags = np.arange(-max_lag_s * 1000, max_lag_s * 1000 + step_ms / 2, step_ms)
    return lags, np.array([pearson(np.interp(t - lag / 1000.0, t, predicted, left=np.nan, right=np.nan), measured)
                           for lag in lags])


def subframe_lag(predicted: np.ndarray, measured: np.ndarray, fps: float, max_lag_s: float = 0.2, step_ms: float = 5.0) -> tuple[float, float]:
    """Lag at `step_ms` resolution by shifting the prediction with linear interpolation: (lag ms, r there)."""
    lags, r = lag_curve(predicted, measured, fps, max_lag_s, step_ms)
    if not np.isfinite(r).any():
        return 0.0, -2.0
    best = int(np.nanargmax(r))
    return float(lags[best]), float(r[best])


def lag_interval(predicted: np.ndarray, measured: np.ndarray, fps: float, max_lag_s: float = 0.2, step_ms: float = 5.0,
                 block_s: float = 1.0, draws: int = 500, level: float = 0.9, seed: int = 0) -> tuple[float, float] | None:
    """Bootstrap interval (ms) of the best lag (`subframe_lag`): the clip is cut into `block_s`
    blocks, each lag's correlation is pooled from the blocks' sums, and the blocks are redrawn with
    replacement. r over the lag is flat for smooth curves, so one clip's best lag can sit anywhere
    in a wide interval: a lag is only meaningfully outside +-40 ms when its interval is."""
    t = np.arange(len(predicted)) / fps
    lags = np.arange(-max_lag_s * 1000, max_lag_s * 1000 + step_ms / 2, step_ms)
    block = np.minimum((t / block_s).astype(int), max(int(t[-1] / block_s), 0)) if len(t) else np.zeros(0, int)
    blocks = int(block.max()) + 1 if len(block) else 0
    if blocks < 3:
        return None
    sums = np.zeros((len(lags), blocks, 6))  # n, x, y, xx, yy, xy per lag and block
    for i, lag_ms in enumerate(lags):
        x = np.interp(t - lag_ms / 1000.0, t, predicted, left=np.nan, right=np.nan)
        ok = np.isfinite(x) & np.isfinite(measured)
        xs, ys, b = x[ok], measured[ok], block[ok]
        for column, values in enumerate((np.ones_like(xs), xs, ys, xs * xs, ys * ys, xs * ys)):
            sums[i, :, column] = np.bincount(b, weights=values, minlength=blocks)
    rng = np.random.default_rng(seed)
    best = []
    for _ in range(draws):
        n, sx, sy, sxx, syy, sxy = sums[:, rng.integers(0, blocks, blocks), :].sum(axis=1).T
        with np.errstate(invalid="ignore", divide="ignore"):
            r = (n * sxy - sx * sy) / np.sqrt((n * sxx - sx ** 2) * (n * syy - sy ** 2))
        if np.isfinite(r).any():
            best.append(lags[int(np.nanargmax(r))])
    if len(best) < draws // 2:
        return None
    tail = 50.0 * (1.0 - level)
    return float(np.percentile(best, tail)), float(np.percentile(best, 100.0 - tail))


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
    settings = stage_settings()
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
            methods["kokoro-durations"] = KokoroAligner(**settings["kokoro"]).align(wav, [segment], table, {}).phones
        methods["asr"] = AsrAligner(**settings["asr"]).align(wav, [segment], table, {}).phones
        from tasks.visemes.align import ENVELOPE_RATE, envelope

        loud = (envelope(audio, SPEECH_RATE), ENVELOPE_RATE)
        for method, phones in methods.items():
            curves = compute_curves(phones, table, fps, frames, settings["dominance"], settings["smoothing"], loud, settings["loudness"])
            result = check(curves, table)
            results.append({"sentence": text, "method": method, **{k: v for k, v in result.items() if k != "max_jump_per_param"}})
            if index == 0 and method == list(methods)[0]:
                from tasks.visemes.plot import plot

                plot(out / f"synth_{lang}.png", audio, SPEECH_RATE, fps, [("synth", curves.params)], curves.phones,
                     title=f"{lang}: {text} ({method})")
    return {"voice": voice.name, "sentences": results}


# --------------------------------------------------------------------------- real clips

def face_outputs(video: Path, folder: Path) -> Path:
    """The face stage's faces.npz + tracks.json for `video`, made once under `folder`: the clip is
    registered in a scratch workspace, given one speaker talking throughout, and the real face stage
    runs on it (its configuration in conf/face/dlib.yaml, no debug video)."""
    out = folder / video.stem / "data" / "face" / "clip"
    if (out / "faces.npz").exists() and (out / "tracks.json").exists():
        return out
    import shutil

    import yaml

    from tasks.artifacts import Segment
    from tasks.face.__main__ import run
    from tasks.ingest import ingest
    from tasks.media import probe
    from tasks.speakers.schema import SpeakerTurn, Speakers
    from tasks.speakers.schema import write as write_speakers
    from tasks.stage import StageContext

    root = folder / video.stem
    shutil.rmtree(root, ignore_errors=True)
    (root / "data" / "input" / "clip").mkdir(parents=True)
    (root / "data" / "input" / "clip" / video.name).symlink_to(video.resolve())
    ingest(video, root / "data" / "ingest" / "clip")
    info = probe(video)
    speech_s = info.frames / info.fps
    write_speakers(root / "data" / "speakers" / "clip" / "speakers.json",
                   Speakers("validation", 1, (SpeakerTurn(0.0, speech_s, "S0"),), (), (Segment(0, 0.0, speech_s, "speech", "S0"),)))
    config = yaml.safe_load((PROJECT / "conf" / "face" / "dlib.yaml").read_text())
    config.update(progress=False, debug_video=False)
    run(StageContext("face", "clip", None, root, {"face": config}))
    return out


def measured_gap(face_dir: Path, frames: int, min_visibility: float = MIN_VISIBILITY, max_yaw: float = MAX_YAW) -> tuple[np.ndarray, np.ndarray, dict]:
    """Inner-lip gap / inter-ocular distance of the speaking face per frame, from the face stage's
    unsmoothed landmarks (`landmarks_raw`: no smoothing on either side but the model's own).

    NaN where the speaking face is absent, turned (|yaw| > max_yaw), or its mouth hidden
    (visibility < min_visibility). The speaking face is the track tracks.json maps the speaker to;
    when the face stage maps none (stage_mic_cuts), the track on screen longest."""
    from tasks.visemes.calibration import inter_ocular, mouth_measures

    tracks = json.loads((face_dir / "tracks.json").read_text())
    mapped = [t for t in (tracks.get("speakers") or {}).values() if t is not None]
    with np.load(face_dir / "faces.npz") as npz:
        arrays = {k: npz[k] for k in ("frame", "track", "landmarks_raw", "landmarks", "pose", "visibility")}
    if mapped:
        track, chosen_by = int(mapped[0]), "speaker mapping"
    else:
        ids, counts = np.unique(arrays["track"][arrays["track"] >= 0], return_counts=True)
        track, chosen_by = (int(ids[np.argmax(counts)]), "longest track") if ids.size else (-1, "none")
    own = arrays["track"] == track
    usable = own & (arrays["visibility"] >= min_visibility) & (np.abs(arrays["pose"][:, 0]) <= max_yaw)
    gap = np.full(frames, np.nan)
    smoothed = np.full(frames, np.nan)
    rows = usable & (arrays["frame"] < frames)
    gap[arrays["frame"][rows]] = mouth_measures(arrays["landmarks_raw"][rows])["gap"]
    smoothed[arrays["frame"][rows]] = mouth_measures(arrays["landmarks"][rows])["gap"]
    # the scale the gap is divided by: a per-frame inter-ocular distance that jittered or shrank
    # with yaw would add noise (on these clips it does not: a stable per-shot scale moves r < 0.01)
    iod = inter_ocular(arrays["landmarks_raw"][rows])
    info = {"track": track, "track_chosen_by": chosen_by, "frames_with_track": int(own.sum()),
            "frames_used": int(np.isfinite(gap).sum()), "frames_turned_or_hidden": int((own & ~usable).sum()),
            "inter_ocular_px": round(float(np.median(iod)), 1) if iod.size else None,
            "inter_ocular_cv": round(float(np.std(iod) / np.mean(iod)), 4) if iod.size else None,
            "inter_ocular_step": round(float(np.median(np.abs(np.diff(iod))) / np.median(iod)), 4) if iod.size > 1 else None,
            "yaw_5_95": [round(float(v), 1) for v in np.percentile(arrays["pose"][rows, 0], [5, 95])] if rows.any() else None}
    return gap, smoothed, info


def frame_times(video: Path) -> np.ndarray:
    """Presentation time of every video frame on the timeline of the audio `extract_audio` gives
    (seconds from its first sample), from the container's timestamps: frame k is not at k / fps in
    these clips (frontal_man_suit is variable-rate, its first picture 33 ms after the audio). Where
    the picture starts TRUSTED_VIDEO_DELAY_S or more away from the sound, `extract_audio` cuts or
    pads the audio to start with the first picture (stage_mic_cuts: 0.84 s cut), so the frames are
    timed from the first picture there."""
    import av

    from tasks.media import TRUSTED_VIDEO_DELAY_S, video_delay

    with av.open(str(video)) as container:
        audio = container.streams.audio[0] if container.streams.audio else None
        audio_start = float(audio.start_time * audio.time_base) if audio is not None and audio.start_time is not None else 0.0
        stream = container.streams.video[0]
        stamps = sorted(float(packet.pts * stream.time_base) for packet in container.demux(stream) if packet.pts is not None)
    delay = video_delay(video)
    return np.array(stamps) - audio_start - (delay if abs(delay) >= TRUSTED_VIDEO_DELAY_S else 0.0)


def on_video_frames(curve: np.ndarray, fps: float, times: np.ndarray) -> np.ndarray:
    """A curve sampled at k / fps on the audio's timeline, read at the video frames' times."""
    return np.interp(times, np.arange(len(curve)) / fps, curve)


def clip_words(aligner, wav: Path, cache: Path) -> list[tuple[float, float, str]]:
    """Whisper's word timings, cached per clip (the model is not what is tuned here)."""
    path = cache / f"{wav.stem}.words.json"
    if path.exists():
        return [tuple(w) for w in json.loads(path.read_text())]
    words = aligner.words(wav, None)
    cache.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(words))
    return words


def stage_settings(previous: bool = False) -> dict:
    """The visemes stage's own settings (conf/visemes/default.yaml), so the check measures what the
    stage does; `previous`: the settings before boundary refinement and fitted coarticulation."""
    import yaml

    config = yaml.safe_load((PROJECT / "conf" / "visemes" / "default.yaml").read_text())
    asr = dict(config["aligner"].get("asr") or {})
    dominance = dict(config.get("dominance") or {})
    smoothing = {k: tuple(v) if isinstance(v, list) else v for k, v in (config.get("smoothing") or {}).items()}
    loudness = {k: tuple(v) if isinstance(v, list) else v for k, v in (config.get("loudness") or {}).items()}
    if previous:
        asr.pop("boundaries", None)
        dominance.update(anticipation_s=0.07, carryover_s=0.08)
        smoothing.update(settle_s=0.1)
        loudness.update(gain=0.5)
    fit = {k: tuple(v) if isinstance(v, list) else v for k, v in (config.get("speaker_fit") or {}).items()}
    return {"asr": asr, "kokoro": dict(config["aligner"].get("kokoro") or {}), "dominance": Dominance(**dominance),
            "smoothing": Smoothing(**smoothing), "loudness": Loudness(**loudness), "speaker_fit": SpeakerFit(**fit)}


def heldout_check(phones, table, fps: float, covered: int, times: np.ndarray, measured: np.ndarray, loud, settings: dict,
                  blocks: int, guard_s: float = 0.5) -> dict:
    """The speaker's own targets (tasks/visemes/speaker_fit.py) scored on frames the fit never saw:
    the clip is cut into `blocks` contiguous blocks; each is predicted by targets fitted on the
    others less `guard_s` either side of it, and the held-out predictions, put together, are
    compared with the measured gap, as the table's prediction is on the same frames."""
    fit = settings["speaker_fit"]
    curve_settings = dict(model=settings["dominance"], smoothing=settings["smoothing"], loudness=loud, loudness_model=settings["loudness"])

    def predicted(own_table) -> np.ndarray:
        curves = compute_curves(phones, own_table, fps, covered, settings["dominance"], settings["smoothing"], loud, settings["loudness"])
        return on_video_frames(curves.params["gap"], fps, times)

    classes, design = basis(phones, table, fps, covered, "gap", **curve_settings)
    design = np.stack([on_video_frames(design[:, i], fps, times) for i in range(design.shape[1])], axis=1)
    current = predicted(table)
    held = np.full(len(times), np.nan)
    per_block = []
    for train, test in time_folds(len(times), blocks, int(round(guard_s * fps))):
        targets = fit_param(classes, design, measured, train, table, "gap", fit)
        own = predicted(with_targets(table, "gap", targets)) if targets else current
        held[test] = own[test]
        per_block.append([round(pearson(np.where(test, current, np.nan), measured), 3),
                          round(pearson(np.where(test, own, np.nan), measured), 3), targets is not None])
    whole = fit_param(classes, design, measured, np.ones(len(times), bool), table, "gap", fit)
    lag_current, lag_held = subframe_lag(current, measured, fps), subframe_lag(held, measured, fps)
    return {"blocks": blocks, "guard_s": guard_s, "strength": fit.strength,
            "r_current": round(pearson(current, measured), 3), "r_heldout": round(pearson(held, measured), 3),
            "best_lag_ms_current": lag_current[0], "r_best_current": round(lag_current[1], 3),
            "best_lag_ms_heldout": lag_held[0], "r_best_heldout": round(lag_held[1], 3),
            "per_block_current_vs_heldout": per_block,
            "evidence_frames": {c: round(float(e), 1) for c, e in zip(classes, evidence(design, np.isfinite(measured)))},
            "targets_all_frames": whole}


def real_check(video: Path, out: Path, aligner, faces: Path, settings: dict, heldout_blocks: int = 0) -> dict:
    from tasks.media import SPEECH_RATE, extract_audio, probe, read_wav

    info = probe(video)
    wav = extract_audio(video, out / f"{video.stem}.wav", SPEECH_RATE, 1)
    started = time.perf_counter()
    words = clip_words(aligner, wav, out / "cache")
    table = load_table("en")
    phones = aligner.align_audio(wav, table, words)
    align_s = time.perf_counter() - started
    samples, rate = read_wav(wav)
    from tasks.visemes.align import ENVELOPE_RATE, envelope

    env = envelope(samples.mean(axis=1), rate)
    loud = (env, ENVELOPE_RATE)
    times = frame_times(video)[: info.frames]
    if len(times) < info.frames:
        times = np.concatenate([times, times[-1:] + np.arange(1, info.frames - len(times) + 1) / info.fps]) if len(times) else np.arange(info.frames) / info.fps
    covered = int(np.ceil(times.max() * info.fps)) + 2
    curves = compute_curves(phones, table, info.fps, covered, settings["dominance"], settings["smoothing"], loud, settings["loudness"])
    measured, smoothed, face = measured_gap(face_outputs(video, faces), info.frames)
    result = {"fps": info.fps, "frames": info.frames, "first_frame_s": round(float(times[0]), 4), "frame_time_vs_index_s": round(float(np.max(np.abs(times - times[0] - np.arange(info.frames) / info.fps))), 4), **face, "words": len(words),
              "phones": len(phones), "align_s": round(align_s, 2)}
    for param in ("gap", "jaw"):
        predicted = on_video_frames(curves.params[param], info.fps, times)
        lag_ms, r_best = subframe_lag(predicted, measured, info.fps)
        lags, r_by_lag = lag_curve(predicted, measured, info.fps)
        by_index = on_video_frames(curves.params[param], info.fps, np.arange(info.frames) / info.fps)
        result[param] = {"r_lag0": round(pearson(predicted, measured), 3), "best_lag_ms": lag_ms, "r_best": round(r_best, 3),
                         "best_lag_interval_ms": lag_interval(predicted, measured, info.fps),
                         "r_lag0_vs_smoothed_landmarks": round(pearson(predicted, smoothed), 3),
                         # as the pipeline's stages time frames (k / fps from the first audio sample)
                         "r_lag0_frames_at_index": round(pearson(by_index, measured), 3),
                         "best_lag_ms_frames_at_index": subframe_lag(by_index, measured, info.fps)[0],
                         # r over the lag is flat for smooth curves (the maximum wanders); the frame-to-
                         # frame changes peak more sharply
                         "best_lag_ms_of_changes": subframe_lag(np.gradient(predicted), np.gradient(measured), info.fps)[0],
                         "r_by_lag": {"lags_ms": lags.tolist(), "r": np.round(r_by_lag, 4).tolist(),
                                      "frames": int(np.isfinite(measured).sum())}}
    # where the prediction misses: inside speech alone, the real lips in long pauses (0..1 of the
    # clip's 5th-95th percentile gap; the prediction rests closed there), and bilabial timing
    speech, pauses = speech_and_pauses(curves.phones, times, settings["smoothing"].min_pause_s)
    lo, hi = np.nanpercentile(measured, [5, 95]) if np.isfinite(measured).any() else (0.0, 1.0)
    level = (measured - lo) / max(hi - lo, 1e-9)
    predicted_gap = on_video_frames(curves.params["gap"], info.fps, times)
    result["gap"]["r_lag0_speech"] = round(pearson(np.where(speech, predicted_gap, np.nan), measured), 3)
    kinds = frame_kinds(curves.phones, times, settings["smoothing"].min_pause_s)
    onsets = before_onsets(curves.phones, times, settings["smoothing"].min_pause_s)

    def mean_of(values: np.ndarray, mask: np.ndarray) -> float | None:
        return round(float(np.nanmean(values[mask])), 3) if np.isfinite(values[mask]).any() else None

    result["measured_opening"] = {"speech": mean_of(level, speech), "long_pauses": mean_of(level, pauses),
                                  "long_pause_frames": int((pauses & np.isfinite(level)).sum()),
                                  "short_pauses": mean_of(level, kinds == "short_pause"),
                                  "short_pause_frames": int(((kinds == "short_pause") & np.isfinite(level)).sum()),
                                  "before_onsets": mean_of(level, onsets), "before_onset_frames": int((onsets & np.isfinite(level)).sum())}
    result["predicted_opening"] = {"speech": mean_of(predicted_gap, speech), "long_pauses": mean_of(predicted_gap, pauses),
                                   "short_pauses": mean_of(predicted_gap, kinds == "short_pause"), "before_onsets": mean_of(predicted_gap, onsets)}
    result["gap"]["residual_share"] = residual_shares(predicted_gap, measured, kinds)
    result["gap"]["measurement_noise"] = measurement_noise(predicted_gap, measured)
    if heldout_blocks:
        result["speaker_fit"] = heldout_check(phones, table, info.fps, covered, times, measured, loud, settings, heldout_blocks)
    offsets = closure_offsets(curves.phones, table.closures, times, measured)
    result["bilabials"] = {"count": int(offsets.size),
                           "median_abs_offset_ms": round(float(np.median(np.abs(offsets))) * 1000, 1) if offsets.size else None,
                           "within_40ms": round(float(np.mean(np.abs(offsets) <= 0.04)), 2) if offsets.size else None}
    from tasks.visemes.plot import plot

    # plotted on the audio's timeline: the measured gap at its frames' own times
    on_audio = np.interp(np.arange(covered) / info.fps, times, measured, left=np.nan, right=np.nan)
    plot(out / f"{video.stem}.png", samples.mean(axis=1), rate, info.fps, [("prediction", {k: curves.params[k] for k in ("jaw", "gap", "width", "round")})],
         curves.phones, title=f"{video.name}: predicted from own audio vs measured inner-lip gap (r={result['gap']['r_lag0']:.2f})",
         measured=on_audio)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--synth", action="store_true")
    parser.add_argument("--real", action="store_true")
    parser.add_argument("--langs", default="es,pt,fr,en")
    parser.add_argument("--clips", default="")
    parser.add_argument("--out", type=Path, default=Path("/tmp/visemes_validation"))
    parser.add_argument("--previous", action="store_true", help="real clips with the settings before boundary refinement (for before/after)")
    parser.add_argument("--heldout", type=int, default=0, metavar="BLOCKS",
                        help="also score the speaker's own fitted targets (conf speaker_fit) on held-out blocks of each clip")
    parser.add_argument("--faces", type=Path, default=None, help="folder of face stage outputs per clip (default: OUT/face)")
    args = parser.parse_args()
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

        settings = stage_settings(args.previous)
        aligner = AsrAligner(**settings["asr"])
        report["real"] = {"settings": "previous" if args.previous else "conf/visemes/default.yaml"}
        clips = sorted((SHARED / "video").glob("*.mp4"))
        if args.clips:
            clips = [c for c in clips if c.stem in args.clips.split(",")]
        for clip in clips:
            result = real_check(clip, args.out, aligner, args.faces or args.out / "face", settings, args.heldout)
            report["real"][clip.stem] = result
            interval = result["gap"]["best_lag_interval_ms"]
            spread = f", 90% {interval[0]:+.0f}..{interval[1]:+.0f}" if interval else ""
            print(f"real {clip.stem:>22}: gap r={result['gap']['r_lag0']:.2f} (best {result['gap']['r_best']:.2f} at "
                  f"{result['gap']['best_lag_ms']:+.0f} ms{spread}), in speech r={result['gap']['r_lag0_speech']:.2f}, jaw r={result['jaw']['r_lag0']:.2f}; "
                  f"lips in long pauses {result['measured_opening']['long_pauses']} vs speech {result['measured_opening']['speech']}, "
                  f"in the 0.3 s before a phrase {result['measured_opening']['before_onsets']}; "
                  f"residual in speech {result['gap']['residual_share'].get('speech', 0):.2f}, short pauses "
                  f"{result['gap']['residual_share'].get('short_pause', 0):.2f}, long pauses {result['gap']['residual_share'].get('long_pause', 0):.2f}; "
                  f"landmark noise <= {result['gap']['measurement_noise'].get('share_of_residual', float('nan')):.2f} of the residual "
                  f"(r ceiling {result['gap']['measurement_noise'].get('r_ceiling', float('nan')):.2f}); "
                  f"bilabials {result['bilabials']['within_40ms']} within 40 ms; face in "
                  f"{result['frames_used']}/{result['frames']} frames (track {result['track']}, {result['track_chosen_by']})", flush=True)
    if args.real and len(report["real"]) > 2:
        readings = {name: r["gap"]["r_by_lag"] for name, r in report["real"].items() if isinstance(r, dict)}
        curves = {name: (np.array(c["lags_ms"]), np.array(c["r"]), c["frames"]) for name, c in readings.items()}
        pooled = pooled_offset(list(curves.values()))
        left_out = [pooled_offset([c for other, c in curves.items() if other != name]) for name in curves]
        report["real"]["pooled_best_lag_ms"] = {"all": pooled, "each_clip_left_out": dict(zip(curves, left_out))}
        print(f"pooled over the {len(curves)} clips (r over the lag averaged by frames): best lag {pooled:+.0f} ms; "
              f"each clip left out {min(left_out):+.0f}..{max(left_out):+.0f} ms", flush=True)
    if args.real and args.heldout:
        for name, result in report["real"].items():
            if isinstance(result, dict) and "speaker_fit" in result:
                fit = result["speaker_fit"]
                print(f"held-out {name:>22}: r {fit['r_current']:.3f} -> {fit['r_heldout']:.3f} (best {fit['r_best_current']:.3f} at "
                      f"{fit['best_lag_ms_current']:+.0f} ms -> {fit['r_best_heldout']:.3f} at {fit['best_lag_ms_heldout']:+.0f} ms); "
                      f"per block " + " ".join(f"{a:.2f}->{b:.2f}" for a, b, _ in fit["per_block_current_vs_heldout"]))
    (args.out / "report.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    print(f"report: {args.out / 'report.json'}")


if __name__ == "__main__":
    main()
