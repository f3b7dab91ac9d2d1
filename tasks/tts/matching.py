"""Voice matching: pick the closest installed base voice per speaker, then convert its speech toward
the original speaker (pitch statistics, spectral envelope / formants, level) with WORLD.

Pure scoring and mapping functions first, then the conversion backends (the `_target_` of
`tts.matching.converter`): `WorldMatcher` (default) and `NoMatch`. A neural zero-shot cloning
model would be another backend with the same `match` method, its weights from a configured path.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np



# --------------------------------------------------------------------------- choosing a base voice

@dataclass(frozen=True)
class ChoiceWeights:
    gender: float = 1.0      # cost of a male/female mismatch (unknown on either side costs nothing)
    pitch: float = 2.0       # per octave of median-f0 distance
    timbre: float = 2.0      # per unit of (1 - embedding cosine)


def voice_distance(source, candidate, weights: ChoiceWeights = ChoiceWeights()) -> float:
    """How unlike `candidate` (a VoiceProfile) sounds from `source` (a VoiceProfile); lower is closer."""
    cost = 0.0
    if source.gender in ("male", "female") and candidate.gender in ("male", "female") and source.gender != candidate.gender:
        cost += weights.gender
    if source.median_f0 > 0 and candidate.median_f0 > 0:
        cost += weights.pitch * abs(np.log2(source.median_f0 / candidate.median_f0))
    if len(source.embedding) and len(candidate.embedding):
        a, b = np.asarray(source.embedding), np.asarray(candidate.embedding)
        cost += weights.timbre * (1.0 - float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12)))
    return float(cost)


def rank_voices(profile, candidates: dict, weights: ChoiceWeights = ChoiceWeights()) -> list[str]:
    """Names of the candidate profiles, closest to `profile` first (ties: by name)."""
    if not candidates:
        raise ValueError("no candidate voices to choose from")
    return sorted(sorted(candidates), key=lambda name: voice_distance(profile, candidates[name], weights))


# --------------------------------------------------------------------------- pure mappings

def map_f0(f0: np.ndarray, source_mean: float, source_std: float, target_mean: float, target_std: float,
           std_limits: tuple[float, float] = (0.5, 2.0)) -> np.ndarray:
    """Log-Gaussian f0 mapping of voiced frames from (source mean/std of log f0) to the target's;
    unvoiced (0) frames stay 0. The std ratio is clipped to `std_limits`."""
    f0 = np.asarray(f0, np.float64)
    out = np.zeros_like(f0)
    voiced = f0 > 0
    if not voiced.any():
        return out
    ratio = float(np.clip(target_std / source_std, *std_limits)) if source_std > 1e-6 and target_std > 0 else 1.0
    out[voiced] = np.exp((np.log(f0[voiced]) - source_mean) * ratio + target_mean)
    return out


def warp_envelope(sp: np.ndarray, alpha: float) -> np.ndarray:
    """Scale the frequency axis of spectral envelopes (frames, bins) by `alpha` (>1 moves formants up)."""
    bins = sp.shape[1]
    grid = np.arange(bins, dtype=np.float64)
    source = np.clip(grid / alpha, 0, bins - 1)
    return np.stack([np.interp(source, grid, row) for row in sp]) if len(sp) else sp


def envelope_on_grid(sp_mean_db: np.ndarray, rate: int, grid_hz) -> np.ndarray:
    freqs = np.linspace(0, rate / 2, len(sp_mean_db))
    values = np.interp(np.asarray(grid_hz), freqs, sp_mean_db)
    return values - values.mean()


def best_warp(own_db: np.ndarray, target_db: np.ndarray, rate: int, grid_hz, alphas=np.linspace(0.85, 1.2, 15)) -> float:
    """The frequency-axis scale whose warped mean envelope (dB per bin) best matches `target_db` on `grid_hz`."""
    target = np.asarray(target_db) - np.mean(target_db)
    bins = np.arange(len(own_db), dtype=np.float64)
    errors = []
    for alpha in alphas:
        warped = np.interp(np.clip(bins / alpha, 0, len(own_db) - 1), bins, own_db)
        errors.append(float(np.mean((envelope_on_grid(warped, rate, grid_hz) - target) ** 2)))
    return float(alphas[int(np.argmin(errors))])


def equalizer_db(own_db: np.ndarray, target_db: np.ndarray, limit_db: float = 6.0, smooth: int = 5) -> np.ndarray:
    """Per-grid-point gain (dB) that moves the mean envelope `own_db` toward `target_db`, smoothed and clipped."""
    difference = (np.asarray(target_db) - np.mean(target_db)) - (np.asarray(own_db) - np.mean(own_db))
    if smooth > 1 and len(difference) >= smooth:
        kernel = np.ones(smooth) / smooth
        difference = np.convolve(np.pad(difference, smooth // 2, mode="edge"), kernel, mode="valid")
    return np.clip(difference, -limit_db, limit_db)


# --------------------------------------------------------------------------- conversion backends

class NoMatch:
    """Leave the base voice as it is (the baseline)."""

    name = "none"

    def match(self, samples: np.ndarray, rate: int, source_profile, time_scale: float = 1.0) -> tuple[np.ndarray, dict]:
        from tasks.tts.stretch import world_stretch

        return world_stretch(samples, rate, time_scale), {"conversion": self.name}


class WorldMatcher:
    """WORLD (pyworld) analysis/resynthesis: f0 mapped to the speaker's log-f0 mean and spread,
    spectral envelope frequency-warped (formants) and equalised toward the speaker's mean envelope,
    level set to the speaker's speech level. Works at any rate; analysis at 16 kHz or more."""

    name = "world"

    def __init__(self, pitch: bool = True, formants: bool = True, equalize: bool = True, level: bool = True,
                 max_eq_db: float = 6.0, analysis_rate: int = 24000, frame_ms: float = 5.0,
                 strengths: tuple[float, ...] = (1.0,), select_by_similarity: bool = False,
                 warp_range: tuple[float, float] = (0.85, 1.2), similarity_tolerance: float = 0.0,
                 scored_warps: tuple[float, ...] = ()):
        self.pitch, self.formants, self.equalize, self.level = pitch, formants, equalize, level
        self.max_eq_db, self.analysis_rate, self.frame_ms = max_eq_db, analysis_rate, frame_ms
        self.strengths = tuple(float(v) for v in strengths) or (1.0,)
        self.select_by_similarity = select_by_similarity
        self.warp_range = tuple(warp_range)
        self.similarity_tolerance = similarity_tolerance
        self.scored_warps = tuple(float(v) for v in scored_warps)
        self._encoder = None

    def similarity(self, y: np.ndarray, rate: int, source_profile) -> float:
        return self.similarities([y], rate, source_profile)[0]

    def similarities(self, ys: list[np.ndarray], rate: int, source_profile) -> list[float]:
        """GE2E cosine of each of `ys` to the speaker (embedded in one batch)."""
        from tasks.speakers.encoder import SpeakerEncoder

        if self._encoder is None:
            self._encoder = SpeakerEncoder()
        embeddings = self._encoder.embed_utterances(list(ys), rate)
        return [float(v) for v in embeddings @ np.asarray(source_profile.embedding, np.float32)]

    def match(self, samples: np.ndarray, rate: int, source_profile, time_scale: float = 1.0) -> tuple[np.ndarray, dict]:
        """Converted speech, `time_scale` times as long (pitch-preserving, in the same WORLD pass).

        With several `strengths` (1 = the full pitch/formant/equaliser move toward the speaker, 0 =
        only the equaliser as a plain filter, no vocoder, when no stretch is needed) and
        `select_by_similarity`, the variant whose GE2E embedding is closest to the speaker's is kept
        (the base voice unconverted competes too when no stretch is needed), or the mildest one within
        `similarity_tolerance` of it: on voices already close to the speaker, vocoder artefacts can
        cost more likeness than the conversion brings, and every conversion costs some intelligibility.
        Each of `scored_warps` is a further full-strength variant with that formant warp instead of the
        one fitted to the speaker's mean envelope (a recording's channel colours that envelope, and GE2E
        can find another warp far closer); they are kept only where one is more alike than all the
        others by more than the tolerance (then the first listed within it of the best)."""
        import pyworld

        from tasks.media import resample
        from tasks.speakers import f0_stats
        from tasks.tts.stretch import world_stretch

        samples = np.asarray(samples, np.float32)
        report: dict = {"conversion": self.name}
        if len(samples) < rate * 0.1 or source_profile is None or source_profile.median_f0 <= 0:
            report["conversion"] = "none (no usable profile or speech)"
            return world_stretch(samples, rate, time_scale), report
        work_rate = self.analysis_rate
        x = resample(samples, rate, work_rate).astype(np.float64)
        f0, t = pyworld.harvest(x, work_rate, f0_floor=60.0, f0_ceil=500.0, frame_period=self.frame_ms)
        sp = pyworld.cheaptrick(x, f0, t, work_rate)
        ap = pyworld.d4c(x, f0, t, work_rate)
        own = f0_stats(f0)
        grid = np.asarray(source_profile.envelope_hz, float)
        target = np.asarray(source_profile.envelope_db, float)
        voiced = sp[f0 > 0] if np.any(f0 > 0) else sp
        own_db = 10 * np.log10(np.maximum(voiced, 1e-16)).mean(axis=0)
        alpha = 1.0
        if self.formants and len(grid):
            alphas = np.linspace(self.warp_range[0], self.warp_range[1], 15)
            alpha = best_warp(own_db, target, work_rate, grid, alphas)
        variants = []
        use_selection = bool(self.select_by_similarity and len(source_profile.embedding)
                             and len(self.strengths) + (len(self.scored_warps) if self.formants and len(grid) else 0) > 1)
        # (strength, formant warp at full strength, rank among equally strong variants: the mildest wins ties)
        plans = [(strength, alpha, 0) for strength in (self.strengths if use_selection else self.strengths[:1])]
        if use_selection and self.formants and len(grid):
            plans += [(1.0, warp, rank) for rank, warp in enumerate(self.scored_warps, 1) if abs(warp - alpha) > 1e-6]
        for strength, warp, rank in plans:
            y, details = self._variant(samples, rate, x, f0, sp, ap, own, own_db, warp, grid, target, source_profile,
                                       time_scale, strength)
            variants.append((0.0, (strength, rank), y, details))
        if use_selection:
            # the same speech unconverted, at the speaker's level (GE2E is not level-invariant): the
            # report's baseline, and a variant itself when no stretch is needed (no filter, no vocoder)
            leveled = set_level(samples, rate, source_profile.rms_db) if source_profile.rms_db else samples
            unconverted = None
            if abs(time_scale - 1.0) < 1e-3:
                unconverted = leveled if self.level else samples
            # one GE2E batch: every conversion, the baseline, and the unconverted speech where it differs
            heard = [v[2] for v in variants] + [leveled]
            if unconverted is not None and unconverted is not leveled:
                heard.append(unconverted)
            scores = self.similarities(heard, rate, source_profile)
            base_score = scores[len(plans)]
            variants = [(score, *rest) for score, (_, *rest) in zip(scores, variants)]
            if unconverted is not None:
                variants.append((scores[-1], (-1.0, 0), np.clip(unconverted, -1, 1).astype(np.float32),
                                 {"level_db": source_profile.rms_db}))
        # a scored warp competes only where it is more alike than every other variant by more than the
        # tolerance: elsewhere the choice is the one made without them (none raises the bar the milder
        # variants are held to: frontal_man_suit es kept strength 0.5 for 0 that way, a word less understood)
        ordinary = [v for v in variants if v[1][1] == 0]
        warped = [v for v in variants if v[1][1] > 0]
        if warped and max(v[0] for v in warped) > max(v[0] for v in ordinary) + self.similarity_tolerance:
            ordinary = warped
        best = max(v[0] for v in ordinary)
        # the mildest change whose likeness is within the tolerance of the best (milder = more intelligible)
        score, (strength, _), y, details = min((v for v in ordinary if v[0] >= best - self.similarity_tolerance),
                                               key=lambda v: v[1])
        report.update(details)
        if use_selection:
            report["strength"] = strength
            report["similarity"] = round(score, 3)
            report["similarity_base"] = round(base_score, 3)
            if strength < 0:
                report["conversion"] = "none (closest as it is)"
        return y, report

    def _variant(self, samples, rate, x, f0, sp, ap, own, own_db, alpha, grid, target, source_profile,
                 time_scale, strength):
        """One conversion at `strength` (0..1 of the pitch, formant and equaliser moves)."""
        import pyworld

        from tasks.media import resample
        from tasks.tts.stretch import stretch_frames

        work_rate = self.analysis_rate
        details: dict = {}
        gains = np.zeros(len(grid))
        if self.equalize and len(grid):
            bins = np.arange(len(own_db), dtype=np.float64)
            warped_db = np.interp(np.clip(bins / alpha ** strength, 0, len(own_db) - 1), bins, own_db)
            gains = equalizer_db(envelope_on_grid(warped_db, work_rate, grid), target, self.max_eq_db) * max(strength, 0.5)
            details["eq_db_max"] = round(float(np.max(np.abs(gains))), 2)
        if strength <= 0 and abs(time_scale - 1.0) < 1e-3:
            y = equalize_waveform(samples, rate, grid, gains) if len(grid) else samples
        else:
            new_f0 = f0
            if self.pitch and own["voiced_frames"] >= 5 and strength > 0:
                new_f0 = map_f0(f0, own["log_mean"], own["log_std"],
                                own["log_mean"] + strength * (source_profile.log_f0_mean - own["log_mean"]),
                                own["log_std"] + strength * (source_profile.log_f0_std - own["log_std"]))
                details["f0_from_hz"] = own["median"]
                details["f0_to_hz"] = round(float(np.exp(np.log(max(own["median"], 1e-3)) + strength * (
                    np.log(source_profile.median_f0) - np.log(max(own["median"], 1e-3))))), 2)
            new_sp = sp
            if self.formants and len(grid) and strength > 0:
                new_sp = warp_envelope(sp, alpha ** strength)
                details["formant_warp"] = round(float(alpha ** strength), 3)
            if len(grid):
                freqs = np.linspace(0, work_rate / 2, sp.shape[1])
                per_bin = np.interp(np.log(np.maximum(freqs, grid[0])), np.log(grid), gains)
                new_sp = new_sp * (10 ** (per_bin / 10))[None, :]
            a, b, c = stretch_frames(new_f0, np.ascontiguousarray(new_sp), np.ascontiguousarray(ap), time_scale)
            y = pyworld.synthesize(a, np.ascontiguousarray(b), np.ascontiguousarray(c), work_rate, self.frame_ms)
            y = resample(y.astype(np.float32), work_rate, rate)[: int(round(len(samples) * time_scale))]
        if self.level and source_profile.rms_db:
            y = set_level(y, rate, source_profile.rms_db)
            details["level_db"] = source_profile.rms_db
        return np.clip(y, -1, 1).astype(np.float32), details


def equalize_waveform(samples: np.ndarray, rate: int, grid_hz: np.ndarray, gains_db: np.ndarray) -> np.ndarray:
    """A static equaliser (gains in dB on `grid_hz`, log-frequency interpolated) applied as one
    zero-phase filter over the whole signal: no vocoder, no artefacts."""
    samples = np.asarray(samples, np.float64)
    if not len(samples) or not len(grid_hz):
        return samples.astype(np.float32)
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    grid_hz = np.asarray(grid_hz, float)
    gain = np.interp(np.log(np.maximum(freqs, grid_hz[0])), np.log(grid_hz), np.asarray(gains_db, float))
    return np.fft.irfft(np.fft.rfft(samples) * 10 ** (gain / 20), len(samples)).astype(np.float32)


def set_level(y: np.ndarray, rate: int, rms_db: float) -> np.ndarray:
    """Scale `y` so its active-speech RMS is `rms_db` dBFS (frames within 40 dB of its peak frame)."""
    hop = max(1, int(rate * 0.02))
    frames = y[: len(y) // hop * hop].reshape(-1, hop) if len(y) >= hop else y.reshape(1, -1)
    energy = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
    active = frames[energy > energy.max() - 40]
    current = 10 * np.log10(np.mean(active.astype(np.float64) ** 2) + 1e-12) if len(active) else -120
    return y * (10 ** ((rms_db - current) / 20))


# --------------------------------------------------------------------------- loudness

def integrated_loudness(samples: np.ndarray, rate: int) -> float:
    import pyloudnorm

    data = np.asarray(samples, np.float64)
    return float(pyloudnorm.Meter(rate).integrated_loudness(data))


def match_loudness(output: np.ndarray, rate: int, source: np.ndarray, peak: float = 0.98) -> tuple[np.ndarray, float]:
    """Gain `output` to the EBU R128 integrated loudness of `source` (a true-peak-free sample-peak
    limit at `peak`); returns the result and the gain applied in dB."""
    target, current = integrated_loudness(source, rate), integrated_loudness(output, rate)
    if not (np.isfinite(target) and np.isfinite(current)):
        return output, 0.0
    gain_db = target - current
    y = output * (10 ** (gain_db / 20))
    top = float(np.max(np.abs(y))) if y.size else 0.0
    if top > peak:  # soft-limit the few peaks instead of lowering the whole mix
        y = np.tanh(y / peak * 1.0) * peak if top < 2 * peak else y * (peak / top)
    return y.astype(np.float32), float(gain_db)


# --------------------------------------------------------------------------- candidate voices

REFERENCE_TEXT = {
    "en": "The quick brown fox jumps over the lazy dog. We will meet again tomorrow morning at the station.",
    "es": "El rápido zorro marrón salta sobre el perro perezoso. Nos vemos mañana por la mañana en la estación.",
    "pt": "A rápida raposa marrom pula sobre o cão preguiçoso. Nos vemos amanhã de manhã na estação.",
    "fr": "Le renard brun rapide saute par-dessus le chien paresseux. Nous nous reverrons demain matin à la gare.",
}


def candidate_profiles(voices: dict, language: str, encoder=None) -> dict:
    """A VoiceProfile per installed voice (name -> Voice), measured on a reference sentence in
    `language` (about 5 s each to synthesise and analyse; cache the result per language)."""
    from tasks.media import resample
    from tasks.speakers.backends import voice_profile
    from tasks.speakers.encoder import RATE, SpeakerEncoder

    encoder = encoder or SpeakerEncoder()
    text = REFERENCE_TEXT.get(language.split("-")[0], REFERENCE_TEXT["en"])
    out = {}
    for name, voice in voices.items():
        speech = resample(voice.synthesize(text), voice.sample_rate, RATE)
        out[name] = voice_profile(name, speech, RATE, encoder)
    return out


# --------------------------------------------------------------------------- per-speaker assignment

PROFILE_CACHE_VERSION = 1


def _profile_path(language: str, name: str) -> Path:
    from tasks.models import cache_dir

    return cache_dir() / "voice-profiles" / f"v{PROFILE_CACHE_VERSION}-{language}-{name}.json"


def cached_candidate_profiles(voices: dict, language: str) -> dict:
    """`candidate_profiles`, measured once per voice and language, then read from the model cache."""
    import dataclasses
    import json

    from tasks.artifacts import atomic_path
    from tasks.speakers.schema import VoiceProfile

    found, missing = {}, {}
    for name, voice in voices.items():
        path = _profile_path(language, name)
        if path.exists():
            data = json.loads(path.read_text())
            found[name] = VoiceProfile(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})
        else:
            missing[name] = voice
    if missing:
        for name, profile in candidate_profiles(missing, language).items():
            with atomic_path(_profile_path(language, name)) as tmp:
                tmp.write_text(json.dumps(dataclasses.asdict(profile)))
            found[name] = profile
    return found


def audition(profile, voices: dict, text: str, encoder=None) -> dict[str, float]:
    """GE2E cosine to `profile` of each voice (name -> Voice) saying `text`, unconverted and at the
    speaker's level (see `tasks.tts.audition.hear` for the audition at the dub's rate, converted and
    re-transcribed)."""
    from tasks.tts.audition import hear

    return {name: hear(voice, text, profile, encoder=encoder).likeness for name, voice in voices.items()}


def speaker_lines(segments, max_chars: int = 240, seconds: dict | None = None) -> dict[str, tuple[tuple[str, float], ...]]:
    """speaker -> their longest segments, up to about `max_chars` of text, as (text, seconds the dub
    will have for it: `seconds[segment id]` where given, else the segment's length): an audition
    script, each line said as the stage will say it. A line a speaker says more than once is heard
    once, in its shortest slot (the hardest to fit): on a video that repeats itself, the same lines
    twice over doubled every audition and told nothing new."""
    def length(segment) -> float:
        if seconds and getattr(segment, "id", None) in seconds:
            return seconds[segment.id]
        return round(max(getattr(segment, "end", 0.0) - getattr(segment, "start", 0.0), 0.0), 3)

    lines: dict[str, list] = {}
    heard: dict[tuple[str, str], int] = {}  # (speaker, the line's words) -> its place in lines[speaker]
    for segment in sorted(segments, key=lambda s: -len(s.text or "")):
        chosen = lines.setdefault(segment.speaker, [])
        key = (segment.speaker, " ".join((segment.text or "").casefold().split()))
        if key in heard:
            if length(segment) < length(chosen[heard[key]]):
                chosen[heard[key]] = segment
        elif segment.text and sum(len(s.text.strip()) for s in chosen) < max_chars:
            heard[key] = len(chosen)
            chosen.append(segment)

    return {speaker: tuple((s.text.strip(), length(s)) for s in chosen) for speaker, chosen in lines.items() if chosen}


def speaker_texts(segments, max_chars: int = 240) -> dict[str, str]:
    """speaker -> their longest segments' text joined, up to about `max_chars` (an audition script)."""
    return {speaker: " ".join(text for text, _ in lines) for speaker, lines in speaker_lines(segments, max_chars).items()}


def opposite(gender: str, other: str) -> bool:
    return {gender, other} == {"male", "female"}


def cast_voices(cast: dict | None, language: str, candidates: dict, speakers: list[str]) -> dict[str, str]:
    """speaker -> candidate name, as a person cast them for `language` (conf/tts `cast`:
    {language: {speaker: candidate name}}). An unknown speaker or voice is an error that names what
    there is: a cast that silently did nothing would be worse than none."""
    from tasks.stage import StageError

    chosen = {str(speaker): str(name) for speaker, name in ((cast or {}).get(language) or {}).items()}
    unknown = sorted(set(chosen) - set(speakers))
    if unknown:
        raise StageError(f"tts.cast.{language} names {', '.join(unknown)}, not a speaker of this video "
                         f"(speakers: {', '.join(speakers) or 'none'})")
    for speaker, name in chosen.items():
        if name not in candidates:
            raise StageError(f"tts.cast.{language}.{speaker}: no voice {name!r} for {language} "
                             f"(tts.matching.candidates.{language}: {', '.join(sorted(candidates)) or 'none'})")
    return chosen


def assign_voices(profiles, candidates: dict, language: str, texts: dict | None = None,
                  auditioned: int = 1, also_auditioned: tuple[str, ...] = (), *, pace=None, converter=None, listener=None,
                  max_wer_over_default: float = 0.1, passing_wer: float = 0.0, workers: int = 1, fitter=None,
                  wrap=lambda voice: voice, late_after_s: float | None = None) -> tuple[dict, dict]:
    """speaker -> the candidate Voice that sounds most like them (empty without candidates), and
    speaker -> the audition scores where one was held. The `auditioned` candidates closest by their
    reference profile each say the speaker's own text (`texts`: speaker -> text, or lines of
    (text, seconds the dub has for it), each said at the rate the dub will, at `pace`: tasks.tts.Pace),
    and the most alike is kept; the `also_auditioned` ones (the language's default voice) join them
    where their gender is the speaker's, so matching never settles for a voice the default would
    beat. With a `converter` the
    likeness is measured after conversion; with a `listener` (tasks.tts.audition.Listener), a
    candidate understood worse than the default voice by more than `max_wer_over_default`, and worse
    than `passing_wer`, is left out (the default voice says the lines too, to be heard, wherever it
    is not auditioned anyway; the candidates are heard most alike first, until one passes:
    `tasks.tts.audition.choose`). `workers`
    candidates say their lines at a time (threads: the engines release the interpreter lock). With a
    `fitter` (tasks.tts.fitting.StyleFitter), a Kokoro voice fitted to the speaker joins the audition
    (`wrap`ped like the candidates) unless its pitch is of the other known gender. A voice whose line
    runs more than `late_after_s` past its seconds at the fastest rate allowed is chosen only where
    no other passes (None: timing left out)."""
    from tasks.stage import log
    from tasks.tts import Pace
    from tasks.tts.audition import Hearing, as_lines, choose, hear_all

    if not candidates or not profiles:
        return {}, {}
    measured = cached_candidate_profiles(candidates, language)
    chosen, scores = {}, {}
    encoder = None
    for profile in profiles:
        ranked = rank_voices(profile, measured)
        best, pool = ranked[0], candidates
        lines = (texts or {}).get(profile.speaker, "")
        lines = as_lines(lines)
        text = " ".join(line for line, _ in lines if line)
        if auditioned > 1 and text and len(profile.embedding):
            from tasks.speakers.encoder import SpeakerEncoder

            encoder = encoder or SpeakerEncoder()
            # a voice of the other gender (where both are known) is not auditioned: GE2E after a
            # conversion can rate a man's voice closest to a woman, and the issue asks for her gender
            fitting = [name for name in ranked if not opposite(profile.gender, measured[name].gender)] or ranked
            extra = [name for name in also_auditioned if name in measured and name not in fitting[:auditioned]
                     and profile.gender in ("male", "female") and measured[name].gender == profile.gender]
            names = fitting[:auditioned] + extra
            fitted = fitted_voice(fitter, profile, language, encoder) if fitter is not None else None
            pool = {**candidates, fitted.name: wrap(fitted)} if fitted is not None else candidates
            names += [fitted.name] if fitted is not None else []
            # a listener's reference, the default voice as it is, said alongside where voices are heard
            # side by side (most auditions need it; one at a time, only once it is needed)
            saying = {name: candidates[name] for name in also_auditioned
                      if listener is not None and workers > 1 and name in candidates and name not in names}
            heard, said = hear_all({name: pool[name] for name in names}, lines, profile, pace or Pace(), converter,
                                   encoder, workers, saying)
            scores[profile.speaker] = {name: r.likeness for name, r in heard.items()}
            late = frozenset(name for name, r in heard.items() if late_after_s is not None and r.late_s > late_after_s)
            if late:
                log.info("speaker %s: %s would end a line late even at the fastest rate (%s): heard last",
                         profile.speaker, ", ".join(sorted(late)),
                         ", ".join(f"{heard[name].late_s:.2f} s" for name in sorted(late)))
            if listener is None:
                best = choose(scores[profile.speaker], None, lambda: None, max_wer_over_default, passing_wer, late)
            else:
                hearing = Hearing(listener, heard, pool, also_auditioned, lines, pace or Pace(), said, converter, profile)
                best = choose(scores[profile.speaker], hearing.wer, hearing.reference, max_wer_over_default,
                              passing_wer, late)
                log.info("speaker %s audition WER (default voice %s): %s", profile.speaker,
                         "-" if hearing.reference_wer is None else f"{hearing.reference_wer:.2f}",
                         ", ".join(f"{name} {hearing.wers[name]:.2f}" if name in hearing.wers else f"{name} -"
                                   for name in heard))
        chosen[profile.speaker] = pool[best]
    return chosen, scores


def fitted_voice(fitter, profile, language: str, encoder):
    """The Kokoro voice `fitter` finds for `profile`, or None where none fits or its pitch is of the
    other known gender (the rule every candidate follows)."""
    from tasks.speakers import gender_guess
    from tasks.stage import log
    from tasks.tts.voices import KokoroVoice

    spec, report = fitter.fit(profile, language, encoder)
    log.info("speaker %s fitted voice %s: %s", profile.speaker, spec or "-", report)
    if not spec or opposite(profile.gender, gender_guess(report.get("f0", 0.0))):
        return None
    # named by its spec like every Kokoro voice (kokoro-<spec>-<lang>): segments.json then says
    # which voice spoke, and the visemes stage can replay it for Kokoro's own phone durations
    return KokoroVoice(language, spec)
