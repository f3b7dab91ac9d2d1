"""Active-speaker association: which face track's mouth moves with which speech.

Per speech segment, the mouth opening of every face on screen is correlated with the speech
energy envelope (allowing a small audio-visual lag); a speaker's score for a track is the
duration-weighted mean over that speaker's segments; speakers and tracks are matched one to one.
A track that never clears `min_score` keeps no speaker: faces that never speak are left alone.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def speech_envelope(samples: np.ndarray, rate: int, times: np.ndarray, window_s: float = 0.06,
                    band: tuple[float, float] = (300.0, 3400.0)) -> np.ndarray:
    """Log energy (dB) of band-passed speech in a window centred on each of `times` (seconds)."""
    from scipy.signal import butter, sosfiltfilt

    samples = np.asarray(samples, dtype=np.float64).reshape(len(samples), -1).mean(axis=1)
    if len(samples) > 64:
        high = min(band[1], rate / 2 * 0.95)
        sos = butter(4, [band[0], high], btype="bandpass", fs=rate, output="sos")
        samples = sosfiltfilt(sos, samples)
    power = np.concatenate([[0.0], np.cumsum(samples ** 2)])
    half = max(1, int(window_s * rate / 2))
    centre = np.round(np.asarray(times) * rate).astype(int)
    lo = np.clip(centre - half, 0, len(samples))
    hi = np.clip(centre + half, 0, len(samples))
    energy = (power[hi] - power[lo]) / np.maximum(hi - lo, 1)
    db = 10 * np.log10(energy + 1e-10)
    return np.maximum(db, db.max() - 50.0) if len(db) else db


def _corr(a: np.ndarray, b: np.ndarray, lag: int) -> float | None:
    """Pearson correlation of a[t] with b[t + lag] (NaNs skipped); None with too little overlap."""
    n = len(a)
    x = a[max(0, -lag): min(n, n - lag)]
    y = b[max(0, lag): min(n, n + lag)]
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 8:
        return None
    xs, ys = x[ok], y[ok]
    if xs.std() < 1e-9 or ys.std() < 1e-9:
        return None
    return float(np.corrcoef(xs, ys)[0, 1])


def lagged_correlation(a: np.ndarray, b: np.ndarray, max_lag: int) -> float:
    """Best Pearson correlation of a[t] with b[t + lag] over |lag| <= max_lag (NaNs in `a` skipped)."""
    values = [c for lag in range(-max_lag, max_lag + 1) if (c := _corr(a, b, lag)) is not None]
    return max(values, default=-1.0)


def sync_confidence(a: np.ndarray, b: np.ndarray, max_lag: int, null_lag: int = 25) -> float:
    """Best correlation within +-max_lag minus the median correlation at lags out to +-null_lag
    (in the spirit of SyncNet's confidence): chance correlations of a mouth that merely moves, or
    of noise, score near zero; a mouth that moves with this speech scores high."""
    best = lagged_correlation(a, b, max_lag)
    reach = min(null_lag, len(a) // 3)
    null = [c for lag in range(-reach, reach + 1) if abs(lag) > max_lag and (c := _corr(a, b, lag)) is not None]
    return best - (float(np.median(null)) if null else 0.0)


@dataclass(frozen=True)
class SegmentScore:
    segment: int
    speaker: str
    track: int
    coverage: float
    correlation: float


def score_segments(segments: list[tuple[int, float, float, str]], openings: dict[int, np.ndarray],
                   envelope: np.ndarray, fps: float, max_lag: int = 3, min_coverage: float = 0.3,
                   pad_s: float = 0.1) -> list[SegmentScore]:
    """Correlation of every track's mouth opening (NaN where absent) with the envelope, per segment.

    `segments` are (id, start, end, speaker); `openings` maps track -> per-frame opening.
    """
    scores = []
    frames = len(envelope)
    for seg_id, start, end, speaker in segments:
        lo = max(0, int(np.floor((start - pad_s) * fps)))
        hi = min(frames, int(np.ceil((end + pad_s) * fps)) + 1)
        if hi - lo < 8:
            continue
        env = envelope[lo:hi]
        for track, opening in openings.items():
            window = opening[lo:hi]
            coverage = float(np.isfinite(window).mean())
            if coverage < min_coverage:
                continue
            scores.append(SegmentScore(seg_id, speaker, track, coverage, sync_confidence(window, env, max_lag)))
    return scores


def sole_moving_faces(openings: dict[int, np.ndarray], speaking: dict[str, np.ndarray], min_coverage: float = 0.8,
                      min_motion: float = 0.02, min_presence: float = 0.05) -> dict[str, int]:
    """speaker -> the one face whose mouth moves while they speak, where there is exactly one.

    `openings`: track -> per-frame mouth opening (NaN where absent, in inter-ocular distances);
    `speaking`: speaker -> boolean mask of their speech frames. A face counts where it is on screen
    for over `min_presence` of the speech; it moves where its opening's standard deviation over the
    speech is at least `min_motion`; it is claimed where it is the only one that moves and is seen
    through `min_coverage` of the speech. Faces that stay still beside it (a frozen frame, a photo
    on the wall) do not stand in its way: their chance correlations with the speech are no evidence.
    """
    claims: dict[str, int] = {}
    for speaker, mask in speaking.items():
        if not mask.any():
            continue
        present = [t for t, series in openings.items() if np.isfinite(series[mask]).mean() > min_presence]
        moving = [t for t in present if np.nanstd(openings[t][mask]) >= min_motion]
        if len(moving) == 1 and np.isfinite(openings[moving[0]][mask]).mean() >= min_coverage:
            claims[speaker] = moving[0]
    return claims


def associate(scores: list[SegmentScore], durations: dict[int, float], min_score: float = 0.2,
              claims: dict[str, int] | None = None
              ) -> tuple[dict[str, int | None], dict[str, dict[int, float]], dict[int, int | None]]:
    """Speakers to tracks (one to one) and each segment to its best track.

    Returns (speaker -> track or None, speaker -> {track: score}, segment -> track or None).
    A speaker's score for a track is its sync confidence averaged over the speaker's segments in
    which the track is on screen, weighted by duration x coverage (the speech it was seen with).
    Pairs scoring at least `min_score` are matched by evidence, score x seconds of speech seen: a
    face in sync through the whole speech beats one glimpsed moving for a moment (stage_mic_cuts:
    the performer, in sync over 4.5 s of speech seen, against an audience face over 2 s).
    `claims` (speaker -> the one face on screen through their speech) are settled first: each
    claimed face goes to the claimant with the most evidence for it, whatever its score, and the
    rest are matched among the other speakers and faces.
    """
    from tasks.face.tracking import assign

    speakers = sorted({s.speaker for s in scores})
    tracks = sorted({s.track for s in scores})
    weights: dict[tuple[str, int], float] = {}
    table = {sp: {tr: 0.0 for tr in tracks} for sp in speakers}
    for s in scores:
        weight = durations.get(s.segment, 1.0) * s.coverage
        weights[(s.speaker, s.track)] = weights.get((s.speaker, s.track), 0.0) + weight
        table[s.speaker][s.track] += weight * s.correlation
    evidence = {sp: dict(row) for sp, row in table.items()}
    for (sp, tr), weight in weights.items():
        table[sp][tr] /= max(weight, 1e-9)
    seg_speaker = {s.segment: s.speaker for s in scores}
    speaker_track: dict[str, int | None] = {sp: None for sp in speakers}
    for face in sorted(set((claims or {}).values())):
        claimants = [sp for sp, tr in claims.items() if tr == face and sp in table]
        if claimants:
            speaker_track[max(claimants, key=lambda sp: evidence[sp].get(face, 0.0))] = face
    settled = {tr for tr in speaker_track.values() if tr is not None}
    if speakers and tracks:
        eligible = np.array([[table[sp][tr] >= min_score and weights.get((sp, tr), 0.0) > 0
                              and speaker_track[sp] is None and tr not in settled for tr in tracks]
                             for sp in speakers])
        cost = np.where(eligible, [[-evidence[sp][tr] for tr in tracks] for sp in speakers], np.inf)
        for r, c in assign(cost, 0.0):  # eligible pairs have positive evidence, so negative cost
            speaker_track[speakers[r]] = tracks[c]
    segment_track: dict[int, int | None] = {}
    for seg in seg_speaker:
        best = max((s for s in scores if s.segment == seg), key=lambda s: s.correlation, default=None)
        segment_track[seg] = best.track if best and best.correlation >= min_score else None
    return speaker_track, {sp: {tr: round(v, 4) for tr, v in row.items()} for sp, row in table.items()}, segment_track


def still_faces(openings: dict[int, np.ndarray], speaking: dict[str, np.ndarray], min_motion: float = 0.02,
                heads: dict[int, np.ndarray] | None = None, max_head_motion: float = 0.008) -> bool:
    """True where faces are on screen through the speech and not one mouth among them moves (opening
    std over all speech under `min_motion` inter-ocular distances), nor, where `heads` (track -> (F, 2)
    box centres / box width, NaN where absent) are given, one head (centre std under
    `max_head_motion` box widths: a photo 0.001-0.004, people talking on the seven clips 0.014-0.056):
    a photo or a frozen frame, not still people listening to a narrator. The faces' envelope
    correlations are then jitter against speech, up to 0.45 by chance (a photo of two people: 0.45 for
    one face, 0.10 for the other), and say nothing of who speaks."""
    masks = [mask for mask in speaking.values() if mask.any()]
    if not masks:
        return False
    during = np.logical_or.reduce(masks)
    present = [t for t, series in openings.items() if np.isfinite(series[during]).any()]
    if not present or any(np.nanstd(openings[t][during]) >= min_motion for t in present):
        return False
    return heads is None or all(np.nanmax(np.nanstd(heads[t][during], axis=0)) < max_head_motion for t in present if t in heads)


def speaker_pans(stereo: np.ndarray, rate: int, segments: list[tuple[int, float, float, str]]) -> dict[str, float]:
    """Each speaker's level on the left channel over the right (dB) through their segments: where
    people were recorded each on their own channel (or panned), where they sit in the stereo image."""
    stereo = np.asarray(stereo, dtype=np.float64)
    energy: dict[str, np.ndarray] = {}
    for _, start, end, speaker in segments:
        chunk = stereo[int(max(0.0, start) * rate):int(end * rate)]
        if len(chunk):
            energy[speaker] = energy.get(speaker, np.zeros(2)) + (chunk[:, :2] ** 2).sum(axis=0)
    return {speaker: float(10 * np.log10((e[0] + 1e-12) / (e[1] + 1e-12))) for speaker, e in energy.items()}


def placed_by_layout(speakers: list[str], face_x: dict[int, float], pans: dict[str, float] | None = None,
                     min_spread_db: float = 3.0) -> tuple[dict[str, int | None], str]:
    """Speakers onto faces where the picture cannot tell who speaks (`still_faces`): faces left to
    right (`face_x`: track -> x of its centre), speakers from the leftmost in the stereo image where
    their `pans` (`speaker_pans`) spread over `min_spread_db`, else in the order given (of first
    speech). Each face gets one speaker; speakers beyond the faces get none, but a lone face (a
    portrait) speaks every voice: one narrator split in two by diarization must not go silent for half
    of the speech. Returns (speaker -> track or None, "stereo", "order" or "one face")."""
    basis = "order"
    if pans and len(set(speakers) & set(pans)) >= 2:
        levels = [pans[s] for s in speakers if s in pans]
        if max(levels) - min(levels) >= min_spread_db:
            speakers = sorted(speakers, key=lambda s: -pans.get(s, min(levels)))
            basis = "stereo"
    faces = sorted(face_x, key=lambda t: (face_x[t], t))
    if len(faces) == 1:
        return {speaker: faces[0] for speaker in speakers}, "one face"
    placed: dict[str, int | None] = {speaker: None for speaker in speakers}
    for speaker, track in zip(speakers, faces):
        placed[speaker] = track
    return placed, basis


def with_chosen_faces(speakers: dict[str, int | None], chosen: dict[str, int | None], tracks: list[int]) -> dict[str, int | None]:
    """The association with the user's choices (`face.speaker_faces`, speaker -> track, or None for a
    voice with no face) put over it: a chosen face is taken from whoever had it. ValueError for a
    speaker or track that does not exist."""
    unknown = sorted(set(chosen) - set(speakers))
    if unknown:
        raise ValueError(f"face.speaker_faces names {', '.join(map(str, unknown))}, not a speaker here "
                         f"(speakers: {', '.join(sorted(speakers)) or 'none'})")
    bad = [f"{speaker}: {track!r}" for speaker, track in chosen.items()
           if track is not None and (isinstance(track, bool) or not str(track).lstrip("-").isdigit())]
    if bad:
        raise ValueError(f"face.speaker_faces takes a face track id (a number of contact_sheet.png) or null per "
                         f"speaker, not {', '.join(bad)}")
    taken = {int(t) for t in chosen.values() if t is not None}
    missing = sorted(taken - set(tracks))
    if missing:
        raise ValueError(f"face.speaker_faces names face track {', '.join(map(str, missing))}, not a track here "
                         f"(tracks: {', '.join(map(str, tracks)) or 'none'}; see contact_sheet.png)")
    out = {speaker: (None if track in taken else track) for speaker, track in speakers.items()}
    out.update({speaker: None if track is None else int(track) for speaker, track in chosen.items()})
    return out
