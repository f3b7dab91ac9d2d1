"""A fitted Kokoro voice per speaker: a point of Kokoro's style space, no new weights.

A Kokoro style row has two halves: the first drives the decoder (timbre), the second the prosody
predictor (durations, pitch). A point here is two affine combinations of the installed style tables
(weights sum to 1 and may be slightly negative: a little beyond the installed voices), one per half.

Finding the point is cheap per speaker because the expensive part does not depend on the speaker:
Kokoro says a fitting text (`texts` per language, a few sentences that are not the lines the
audition judges on; default matching.REFERENCE_TEXT) at a fixed set of design points, once per language (cached), and the GE2E embedding and log f0
of those syntheses are fitted as linear functions of the weights (a surrogate). For a speaker, the
point whose predicted embedding is closest to theirs, with its predicted pitch near theirs, is then
said for real (`refinements` times, each result joining the fit), and the best point measured
becomes a candidate of the usual audition, which still judges it on the speaker's lines after
conversion and drops it where Whisper understands it worse than the default voice.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tasks.tts.voices import KOKORO_STYLES, split_style_spec

DESIGN_VERSION = 1
# The designs of the default settings, measured once and shipped (2-2.5 min of syntheses per
# language otherwise, on the first dub of each language): `scripts/voice_fitting_designs.py` rewrites them.
SHIPPED_DESIGNS = Path(__file__).parent / "designs"


# --------------------------------------------------------------------------- pure parts

def design_points(count: int, spread: float, seed: int, styles: int = len(KOKORO_STYLES)) -> np.ndarray:
    """`styles` pure styles (the same one in both halves), then `count` random points: (n, 2, styles)
    weights, each half an affine combination spread `spread` times a Dirichlet draw around the mean
    (spread 1.5: weights from -0.1 to 1.4)."""
    rng = np.random.default_rng(seed)
    pure = np.repeat(np.eye(styles)[:, None, :], 2, axis=1)
    drawn = 1 / styles + spread * (rng.dirichlet(np.full(styles, 0.7), size=(count, 2)) - 1 / styles)
    return np.concatenate([pure, drawn]).astype(np.float64)


def features(points: np.ndarray) -> np.ndarray:
    """The surrogate's inputs: each half's weights less its last (they sum to 1), and a constant."""
    points = np.asarray(points, np.float64)
    free = points[:, :, :-1].reshape(len(points), -1)
    return np.hstack([free, np.ones((len(points), 1))])


def fit_linear(x: np.ndarray, y: np.ndarray, sample_weights: np.ndarray | None = None, ridge: float = 1e-3) -> np.ndarray:
    """Weighted ridge least squares: the matrix m with x @ m closest to y."""
    w = np.ones(len(x)) if sample_weights is None else np.asarray(sample_weights, np.float64)
    xw = x * w[:, None]
    return np.linalg.solve(x.T @ xw + ridge * np.eye(x.shape[1]), xw.T @ y)


def random_points(count: int, bounds: tuple[float, float], rng, styles: int = len(KOKORO_STYLES)) -> np.ndarray:
    """Up to `count` points drawn uniformly among those whose every weight lies within `bounds`
    (the simplex shifted so every weight is at least the lower bound; the few above the upper
    bound left out)."""
    low, high = bounds
    points = low + (1.0 - styles * low) * rng.dirichlet(np.ones(styles), size=(count, 2))
    return points[(points <= high).all(axis=(1, 2))]


def propose(embedding_map: np.ndarray, log_f0_map: np.ndarray, target: np.ndarray, candidates: np.ndarray,
            f0_range: tuple[float, float]) -> tuple[np.ndarray, float, float]:
    """The candidate point whose predicted (unit) embedding is closest to `target` among those whose
    predicted median f0 lies in `f0_range` (none there: the one nearest the range); returns it, its
    predicted cosine and its predicted f0."""
    x = features(candidates)
    predicted = x @ embedding_map
    cosine = predicted @ np.asarray(target, np.float64) / np.maximum(np.linalg.norm(predicted, axis=1), 1e-9)
    f0 = np.exp(x @ log_f0_map)
    inside = (f0 >= f0_range[0]) & (f0 <= f0_range[1])
    if inside.any():
        best = int(np.flatnonzero(inside)[np.argmax(cosine[inside])])
    else:
        best = int(np.argmin(np.abs(np.log(f0 / np.clip(f0, *f0_range)))))
    return candidates[best], float(cosine[best]), float(f0[best])


def pitch_range(median_f0: float, gender: str, max_ratio: float, male_below: float, female_above: float) -> tuple[float, float]:
    """The f0 a fitted voice may have: within `max_ratio` of the speaker's median, and on their
    side of the gender boundary where their gender is known."""
    if median_f0 <= 0:
        low, high = 0.0, float("inf")
    else:
        low, high = median_f0 / max_ratio, median_f0 * max_ratio
    if gender == "male":
        high = min(high, male_below)
    elif gender == "female":
        low = max(low, female_above)
    return low, high


def spec_of(point: np.ndarray, names=KOKORO_STYLES) -> str:
    timbre, prosody = (dict(zip(names, half)) for half in np.asarray(point, np.float64))
    return split_style_spec(timbre, prosody)


# --------------------------------------------------------------------------- measuring points

def _digest(parts) -> str:
    return hashlib.sha1(json.dumps(parts).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Measured:
    points: np.ndarray       # (n, 2, styles)
    embeddings: np.ndarray   # (n, 256) unit GE2E embeddings of the fitting text said at each point
    median_f0: np.ndarray    # (n,) Hz


class StyleFitter:
    """Fits a Kokoro style point per speaker (see the module doc). `bounds`: the range of every
    weight of a proposed point; `design_size` random design points (plus the pure styles) spread
    `design_spread` around the mean; `refinements` proposals said for real per speaker (each one
    synthesis of the fitting text); `max_pitch_ratio`: how far the fitted voice's median f0 may be
    from the speaker's; `texts`: language -> fitting text (longer: a likeness less particular to
    its words, each point slower to measure)."""

    def __init__(self, bounds: tuple[float, float] = (-0.3, 1.4), design_size: int = 25, design_spread: float = 1.5,
                 refinements: int = 2, max_pitch_ratio: float = 1.5, male_below_hz: float = 170.0,
                 female_above_hz: float = 150.0, level_db: float = -26.0, proposals: int = 100_000,
                 refined_weight: float = 3.0, seed: int = 0, texts: dict[str, str] | None = None):
        self.bounds = (float(bounds[0]), float(bounds[1]))
        self.design_size, self.design_spread = int(design_size), float(design_spread)
        self.refinements, self.max_pitch_ratio = int(refinements), float(max_pitch_ratio)
        self.male_below_hz, self.female_above_hz = float(male_below_hz), float(female_above_hz)
        self.level_db, self.proposals, self.refined_weight, self.seed = float(level_db), int(proposals), float(refined_weight), int(seed)
        self.texts = dict(texts or {})
        self._designs: dict[str, Measured] = {}

    def text(self, language: str) -> str:
        from tasks.tts.matching import REFERENCE_TEXT

        base = language.split("-")[0]
        return self.texts.get(language) or self.texts.get(base) or REFERENCE_TEXT.get(base, REFERENCE_TEXT["en"])

    def measure(self, points: np.ndarray, language: str, encoder) -> Measured:
        """GE2E embedding and median f0 of Kokoro saying the fitting text at each point (at a fixed
        level: the design serves every speaker)."""
        from tasks.media import resample
        from tasks.speakers import f0_stats
        from tasks.speakers.backends import world_features
        from tasks.speakers.encoder import RATE
        from tasks.tts.matching import set_level
        from tasks.tts.voices import KokoroVoice

        text = self.text(language)
        embeddings, f0s = [], []
        for point in points:
            voice = KokoroVoice(language, spec_of(point))
            speech = set_level(resample(voice.synthesize(text), voice.sample_rate, RATE), RATE, self.level_db)
            embeddings.append(encoder.embed_utterance(speech, RATE))
            f0s.append(f0_stats(world_features(speech, RATE)[0])["median"])
        return Measured(np.asarray(points, np.float64), np.asarray(embeddings, np.float64), np.asarray(f0s, np.float64))

    def _design_key(self, language: str) -> str:
        return _digest([DESIGN_VERSION, KOKORO_STYLES, self.design_size, self.design_spread, self.seed, self.level_db,
                        self.text(language)])

    def design_name(self, language: str) -> str:
        """The file name of this language's design under these settings (shipped or cached)."""
        return f"design-{language}-{self._design_key(language)}.json"

    def design(self, language: str, encoder) -> Measured:
        """The design points measured in `language`, once per settings: the shipped file, else the
        model cache, else measured here and cached."""
        from tasks.models import cache_dir

        if language in self._designs:
            return self._designs[language]
        shipped, cached = SHIPPED_DESIGNS / self.design_name(language), cache_dir() / "voice-fitting" / self.design_name(language)
        path = shipped if shipped.exists() else cached
        if path.exists():
            data = json.loads(path.read_text())
            measured = Measured(np.asarray(data["points"]), np.asarray(data["embeddings"]), np.asarray(data["median_f0"]))
        else:
            measured = self.write_design(language, encoder, cached.parent)
        self._designs[language] = measured
        return measured

    def write_design(self, language: str, encoder, folder: Path) -> Measured:
        """Measure this language's design (Kokoro saying the fitting text at every design point) and
        write it to `folder` under `design_name`."""
        from tasks.artifacts import atomic_path

        measured = self.measure(design_points(self.design_size, self.design_spread, self.seed), language, encoder)
        with atomic_path(folder / self.design_name(language)) as tmp:
            tmp.write_text(design_json(measured))
        return measured

    def fit(self, profile, language: str, encoder) -> tuple[str, dict]:
        """The style spec fitted to `profile` (a VoiceProfile) in `language`, and a report: the
        likeness and f0 predicted and measured (on the fitting text) at each proposal. A speaker
        fitted before with the same settings is read back from the model cache (a re-run of the
        stage says nothing for it)."""
        from tasks.artifacts import atomic_path
        from tasks.models import cache_dir

        key = _digest([self._design_key(language), self.bounds, self.refinements, self.max_pitch_ratio,
                       self.male_below_hz, self.female_above_hz, self.proposals, self.refined_weight,
                       [round(float(v), 5) for v in profile.embedding], round(float(profile.median_f0), 2),
                       profile.gender])
        path = cache_dir() / "voice-fitting" / f"fit-{language}-{key}.json"
        if path.exists():
            data = json.loads(path.read_text())
            return data["spec"], data["report"]
        spec, report = self._fit(profile, language, encoder)
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps({"spec": spec, "report": report}))
        return spec, report

    def _fit(self, profile, language: str, encoder) -> tuple[str, dict]:
        design = self.design(language, encoder)
        target = np.asarray(profile.embedding, np.float64)
        f0_range = pitch_range(profile.median_f0, profile.gender, self.max_pitch_ratio, self.male_below_hz,
                               self.female_above_hz)
        rng = np.random.default_rng(self.seed + 1)
        candidates = random_points(self.proposals, self.bounds, rng)
        points, embeddings, f0s = design.points, design.embeddings, design.median_f0
        weights = np.ones(len(points))
        inside = (f0s >= f0_range[0]) & (f0s <= f0_range[1])
        likeness = embeddings @ target
        # the best design point of the right pitch competes: it was measured already
        best = int(np.flatnonzero(inside)[np.argmax(likeness[inside])]) if inside.any() else None
        report: dict = {"f0_range": [round(f0_range[0], 1), round(min(f0_range[1], 1e4), 1)], "proposals": [],
                        "best_design": round(float(likeness[best]), 4) if best is not None else None}
        chosen = (points[best], float(likeness[best]), float(f0s[best])) if best is not None else None
        for _ in range(self.refinements):
            x = features(points)
            embedding_map = fit_linear(x, embeddings, weights)
            log_f0_map = fit_linear(x[f0s > 0], np.log(f0s[f0s > 0]), weights[f0s > 0])
            point, predicted, predicted_f0 = propose(embedding_map, log_f0_map, target, candidates, f0_range)
            said = self.measure(point[None], language, encoder)
            real, real_f0 = float(said.embeddings[0] @ target), float(said.median_f0[0])
            report["proposals"].append({"predicted": round(predicted, 4), "measured": round(real, 4),
                                        "predicted_f0": round(predicted_f0, 1), "f0": round(real_f0, 1)})
            points = np.concatenate([points, said.points])
            embeddings = np.concatenate([embeddings, said.embeddings])
            f0s = np.concatenate([f0s, said.median_f0])
            weights = np.append(weights, self.refined_weight)
            if f0_range[0] <= real_f0 <= f0_range[1] and (chosen is None or real > chosen[1]):
                chosen = (point, real, real_f0)
        if chosen is None:
            return "", report
        if any(np.allclose(chosen[0], pure) for pure in design.points[:len(KOKORO_STYLES)]):
            report["kept"] = "a pure style (a candidate already)"
            return "", report
        report.update(likeness=round(chosen[1], 4), f0=round(chosen[2], 1))
        return spec_of(chosen[0]), report


def design_json(measured: Measured, digits: int = 6) -> str:
    return json.dumps({"points": np.round(measured.points, digits).tolist(),
                       "embeddings": np.round(measured.embeddings, digits).tolist(),
                       "median_f0": np.round(measured.median_f0, 3).tolist()})

