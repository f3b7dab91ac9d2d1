"""Diarization backends: frame VAD + window embeddings + clustering, and voice profiles.

`ResemblyzerDiarizer` is the default (`conf/speakers/resemblyzer.yaml`): GE2E embeddings from the
weights in the `resemblyzer` package (see tasks.speakers.encoder), webrtcvad for speech frames
(an energy VAD when webrtcvad is absent), scipy's average-linkage clustering.
"""
from __future__ import annotations

import numpy as np

from tasks.speakers import (FRAME_S, Clustering, Turn, absorb_short_runs, agglomerate, centroids, f0_stats,
                            first_appearance_order, frame_scores, gender_guess, label_frames, merge_small_clusters, normalize, runs,
                            smooth_mask, turns_from_labels, window_spans)
from tasks.speakers.encoder import RATE, SpeakerEncoder
from tasks.speakers.schema import VoiceProfile

ENVELOPE_HZ = tuple(float(f) for f in np.round(np.geomspace(100, 7000, 32), 1))


def vad_frames(wav: np.ndarray, rate: int = RATE, aggressiveness: int = 2) -> np.ndarray:
    """Speech / not speech per 10 ms frame: webrtcvad, or an energy threshold without it."""
    hop = int(rate * FRAME_S)
    total = len(wav) // hop
    try:
        import webrtcvad
    except ImportError:
        return energy_vad(wav, rate)
    vad = webrtcvad.Vad(aggressiveness)
    pcm = (np.clip(wav, -1, 1) * 32767).astype(np.int16)
    flags = np.zeros(total, bool)
    for i in range(0, total - 2, 3):  # webrtcvad takes 10/20/30 ms; 30 ms is steadiest
        chunk = pcm[i * hop:(i + 3) * hop]
        flags[i:i + 3] = vad.is_speech(chunk.tobytes(), rate)
    return flags & (energy_vad(wav, rate, floor_db=-55.0))


def energy_vad(wav: np.ndarray, rate: int = RATE, floor_db: float = -45.0, below_peak_db: float = 35.0) -> np.ndarray:
    hop = int(rate * FRAME_S)
    total = len(wav) // hop
    frames = np.asarray(wav[:total * hop], np.float64).reshape(total, hop)
    level = 10 * np.log10(np.mean(frames ** 2, axis=1) + 1e-12)
    from scipy.ndimage import uniform_filter1d

    level = uniform_filter1d(level, 3)
    return (level > floor_db) & (level > (level.max() if total else 0) - below_peak_db)


class ResemblyzerDiarizer:
    name = "resemblyzer-ge2e"

    def __init__(self, weights: str | None = None, vad_aggressiveness: int = 2, threads: int = 0, **clustering):
        self.encoder = SpeakerEncoder(weights, threads)
        self.vad_aggressiveness = vad_aggressiveness
        self.clustering = Clustering(**clustering)

    def diarize(self, wav: np.ndarray, rate: int = RATE, num_speakers: int | None = None) -> tuple[list[Turn], dict[str, np.ndarray]]:
        """Turns (speaker names S0, S1, ... by first appearance) and each speaker's centroid embedding."""
        if rate != RATE:
            from tasks.media import resample

            wav = resample(wav, rate, RATE)
        c = self.clustering
        num_speakers = num_speakers or c.num_speakers
        wav = np.asarray(wav, np.float32)
        speech = smooth_mask(vad_frames(wav, RATE, self.vad_aggressiveness),
                             int(c.min_speech_s / FRAME_S), int(c.max_pause_s / FRAME_S))
        total = len(speech)
        regions = runs(speech)
        if not regions:
            return [], {}
        spans = window_spans(regions, int(c.window_s / FRAME_S), max(1, int(c.hop_s / FRAME_S)), total)
        embeddings = self.encoder.embed_windows(wav, spans)
        if num_speakers == 1 or len(spans) == 1:
            labels = np.zeros(len(spans), int)
        else:
            labels = agglomerate(embeddings, c.threshold, num_speakers, c.max_speakers)
            if not num_speakers:
                weights = np.array([speech[a:b].sum() for a, b in spans], float) * FRAME_S * c.hop_s / c.window_s
                labels = self.merge_similar(wav, spans, labels, c.merge_threshold)
                labels = merge_small_clusters(embeddings, labels, weights, c.min_speaker_s)
        means = centroids(embeddings, labels)
        frames = label_frames(frame_scores(spans, normalize(embeddings) @ means.T, total), speech)

        def keep(a: int, b: int, value: int) -> bool:  # a short run that sounds clearly like its speaker
            if (b - a) * FRAME_S < 0.15:
                return False
            own = self.encoder.embed_windows(wav, [(a, b)])[0]
            sims = normalize(own) @ means.T
            return int(np.argmax(sims)) == value and sims[value] >= c.interjection_similarity

        frames = absorb_short_runs(frames, int(c.min_turn_s / FRAME_S), keep)
        present = sorted(set(frames.tolist()) - {-1}, key=lambda v: int(np.argmax(frames == v)))
        names = {v: f"S{i}" for i, v in enumerate(present)}
        relabelled = np.array([names.get(v, -1) if v >= 0 else -1 for v in frames], dtype=object)
        order = {f"S{i}": i for i in range(len(present))}
        numeric = np.array([order[v] if v != -1 else -1 for v in relabelled], int)
        turns = turns_from_labels(numeric)
        return turns, {names[v]: means[v] for v in present}

    def merge_similar(self, wav: np.ndarray, spans, labels: np.ndarray, threshold: float) -> np.ndarray:
        """Join clusters whose whole-speech embeddings (all their windows' audio together, far steadier
        than one window's) are at least `threshold` alike; most alike first, re-embedding after each."""
        labels = np.asarray(labels).copy()
        hop = int(RATE * FRAME_S)

        def embed(cluster: int) -> np.ndarray:
            mask = np.zeros(len(wav) // hop + 1, bool)
            for (a, b), label in zip(spans, labels):
                if label == cluster:
                    mask[a:b] = True
            audio = np.concatenate([wav[a * hop:b * hop] for a, b in runs(mask)])
            return self.encoder.embed_utterance(audio)

        cache = {int(v): embed(int(v)) for v in np.unique(labels)}
        while len(cache) > 1:
            keys = sorted(cache)
            best, pair = -1.0, None
            for i, a in enumerate(keys):
                for b in keys[i + 1:]:
                    similarity = float(cache[a] @ cache[b])
                    if similarity > best:
                        best, pair = similarity, (a, b)
            if best < threshold:
                break
            a, b = pair
            labels[labels == b] = a
            del cache[b]
            cache[a] = embed(a)
        return first_appearance_order(labels)

    def profiles(self, wav: np.ndarray, rate: int, turns: list[Turn]) -> list[VoiceProfile]:
        out = []
        for speaker in sorted({t.speaker for t in turns}, key=lambda s: int(s[1:]) if s[1:].isdigit() else s):
            pieces = [wav[int(t.start * rate):int(t.end * rate)] for t in turns if t.speaker == speaker]
            speech = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
            out.append(voice_profile(speaker, speech, rate, self.encoder))
        return out


def world_features(wav: np.ndarray, rate: int, frame_ms: float = 5.0):
    """WORLD f0 (harvest), spectral envelope (cheaptrick) and aperiodicity (d4c), float64."""
    import pyworld

    x = np.ascontiguousarray(wav, dtype=np.float64)
    f0, t = pyworld.harvest(x, rate, f0_floor=60.0, f0_ceil=500.0, frame_period=frame_ms)
    sp = pyworld.cheaptrick(x, f0, t, rate)
    ap = pyworld.d4c(x, f0, t, rate)
    return f0, sp, ap


def mean_envelope_db(sp: np.ndarray, f0: np.ndarray, rate: int, grid=ENVELOPE_HZ) -> np.ndarray:
    """Mean log spectral envelope (dB) of the voiced frames, sampled at `grid` Hz, level-normalised."""
    voiced = sp[f0 > 0] if np.any(f0 > 0) else sp
    if not len(voiced):
        return np.zeros(len(grid))
    freqs = np.linspace(0, rate / 2, sp.shape[1])
    log_env = 10 * np.log10(np.maximum(voiced, 1e-16)).mean(axis=0)
    sampled = np.interp(grid, freqs, log_env)
    return sampled - sampled.mean()


def voice_profile(speaker: str, speech: np.ndarray, rate: int, encoder: SpeakerEncoder | None) -> VoiceProfile:
    speech = np.asarray(speech, np.float32)
    if len(speech) < rate * 0.2:
        return VoiceProfile(speaker, round(len(speech) / rate, 3), (), 0.0, 0.0, 0.0, 0.0, 0.0, "unknown")
    f0, sp, _ = world_features(speech, rate)
    stats = f0_stats(f0)
    embedding = encoder.embed_utterance(speech, rate) if encoder is not None else np.zeros(0)
    rms = float(np.sqrt(np.mean(np.square(speech, dtype=np.float64))))
    return VoiceProfile(
        speaker=speaker, speech_s=round(len(speech) / rate, 3),
        embedding=tuple(round(float(v), 6) for v in embedding),
        median_f0=stats["median"], f0_low=stats["low"], f0_high=stats["high"],
        log_f0_mean=stats["log_mean"], log_f0_std=stats["log_std"], gender=gender_guess(stats["median"]),
        rms_db=round(20 * np.log10(max(rms, 1e-9)), 2),
        envelope_db=tuple(round(float(v), 3) for v in mean_envelope_db(sp, f0, rate)), envelope_hz=ENVELOPE_HZ)
