"""Diarization backends: frame VAD + window embeddings + clustering, and voice profiles.

`ResemblyzerDiarizer` is the default (`conf/speakers/resemblyzer.yaml`): GE2E embeddings from the
weights in the `resemblyzer` package (see tasks.speakers.encoder), webrtcvad for speech frames
(an energy VAD when webrtcvad is absent), scipy's average-linkage clustering.
"""
from __future__ import annotations

import numpy as np

from tasks.speakers import (FRAME_S, Clustering, Turn, absorb_short_runs, agglomerate, centroids, cluster_speech,
                            f0_stats, first_appearance_order, frame_scores, gender_guess, label_frames,
                            merge_small_clusters, normalize, runs, smooth_mask, turns_from_labels, window_spans)
from tasks.speakers.encoder import RATE, SpeakerEncoder
from tasks.speakers.overlap import Overlap, extend_mixtures, mixtures, overlap_labels, pitch_cues, same_voice
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

    def __init__(self, weights: str | None = None, vad_aggressiveness: int = 2, threads: int = 0,
                 overlap: dict | None = None, **clustering):
        self.encoder = SpeakerEncoder(weights, threads)
        self.vad_aggressiveness = vad_aggressiveness
        self.clustering = Clustering(**clustering)
        self.overlap = Overlap(**(overlap or {}))

    def diarize(self, wav: np.ndarray, rate: int = RATE, num_speakers: int | None = None) -> tuple[list[Turn], dict[str, np.ndarray]]:
        """Turns (speaker names S0, S1, ... by first appearance; turns of a speaker talking over
        another have `overlap=True`) and each speaker's centroid embedding."""
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
        mel = self.encoder.mel(wav)
        embeddings = self.encoder.embed_spans(mel, spans)
        f0 = np.zeros(0)
        if num_speakers == 1 or len(spans) == 1:
            labels = np.zeros(len(spans), int)
        else:
            labels = agglomerate(embeddings, c.threshold, num_speakers, c.max_speakers)
            f0 = pitch_track(wav, RATE) if labels.max() > 0 else f0
            if not num_speakers:
                weights = np.array([speech[a:b].sum() for a, b in spans], float) * FRAME_S * c.hop_s / c.window_s
                labels, apart = self.merge_similar(wav, spans, labels, speech, c.merge_threshold, f0)
                labels = merge_small_clusters(embeddings, labels, weights, c.min_speaker_s, apart)
        means = centroids(embeddings, labels)
        scores = frame_scores(spans, normalize(embeddings) @ means.T, total)
        frames = label_frames(scores, speech)

        def keep(a: int, b: int, value: int) -> bool:  # a short run that sounds clearly like its speaker
            if (b - a) * FRAME_S < 0.15:
                return False
            own = self.encoder.embed_spans(mel, [(a, b)])[0]
            sims = normalize(own) @ means.T
            return int(np.argmax(sims)) == value and sims[value] >= c.interjection_similarity

        frames = absorb_short_runs(frames, int(c.min_turn_s / FRAME_S), keep)
        present = sorted(set(frames.tolist()) - {-1}, key=lambda v: int(np.argmax(frames == v)))
        second = np.full(total, -1, int)
        if len(present) > 1 and len(f0):
            second = self.find_overlap(wav, frames, present, f0, scores)
        order = {v: i for i, v in enumerate(present)}
        numeric = np.array([order.get(v, -1) for v in frames], int)
        also = np.array([order.get(v, -1) for v in second], int)
        turns = sorted(turns_from_labels(numeric) + turns_from_labels(also, overlap=True), key=lambda t: (t.start, t.end))
        return turns, {f"S{order[v]}": means[v] for v in present}

    def find_overlap(self, wav: np.ndarray, frames: np.ndarray, present: list[int], f0: np.ndarray,
                     scores: np.ndarray) -> np.ndarray:
        """Per frame, a second speaker talking at once (-1: none), from clusters that sound like a
        mixture of another cluster and a voice of their own (tasks.speakers.overlap); frames of that
        other speaker still nearly as like the mixture are overlapped too (relabelled in `frames`)."""
        embedded = {v: self.embed_frames(wav, frames == v) for v in present}
        index = {v: i for i, v in enumerate(present)}
        vectors = np.stack([embedded[v] for v in present])
        similarity = vectors @ vectors.T
        cues = {index[v]: pitch_cues(f0, frames == v) for v in present}
        found = mixtures(cues, similarity, self.overlap)
        pairs = {present[a]: present[b] for a, b in found.items()}
        frames[:] = extend_mixtures(frames, scores, pairs, self.overlap.score_margin)
        return overlap_labels(frames, pairs)

    def embed_frames(self, wav: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Whole-speech embedding of the frames where `mask` is True."""
        hop = int(RATE * FRAME_S)
        audio = np.concatenate([wav[a * hop:b * hop] for a, b in runs(mask)])
        return self.encoder.embed_utterance(audio)

    def mixture_pairs(self, labels, spans, f0, embedded: dict, speech: np.ndarray) -> set[tuple[int, int]]:
        """(mixture, speaker inside it) pairs among window clusters, from their windows' pitch cues."""
        keys = sorted(embedded)
        vectors = np.stack([embedded[v] for v in keys])
        cues = {i: pitch_cues(f0, cluster_speech(spans, labels, v, speech)) for i, v in enumerate(keys)}
        return {(keys[a], keys[b]) for a, b in mixtures(cues, vectors @ vectors.T, self.overlap).items()}

    def merge_similar(self, wav: np.ndarray, spans, labels: np.ndarray, speech: np.ndarray, threshold: float,
                      f0: np.ndarray | None = None) -> tuple[np.ndarray, set[tuple[int, int]]]:
        """Join clusters whose whole-speech embeddings (all their windows' audio together, far steadier
        than one window's) are at least `threshold` alike, or a little less alike with the same median
        pitch; most alike first, re-embedding after each. A cluster that sounds like another plus a
        voice of its own (overlapped speech) is kept apart from it; a cluster is heard on the `speech`
        frames of its windows only. Returns the labels and the (mixture, speaker inside it) pairs in
        those labels."""
        c = self.clustering
        labels = np.asarray(labels).copy()

        def describe(cluster: int) -> tuple[np.ndarray, float]:
            mask = cluster_speech(spans, labels, cluster, speech)
            return self.embed_frames(wav, mask), pitch_cues(f0, mask).median_f0 if f0 is not None else 0.0

        cache = {int(v): describe(int(v)) for v in np.unique(labels)}
        members = {v: {v} for v in cache}
        apart = self.mixture_pairs(labels, spans, f0, {v: e for v, (e, _) in cache.items()}, speech) if f0 is not None else set()
        while len(cache) > 1:
            keys = sorted(cache)
            best, pair = -1.0, None
            for i, a in enumerate(keys):
                for b in keys[i + 1:]:
                    if any((x, y) in apart or (y, x) in apart for x in members[a] for y in members[b]):
                        continue  # a mixture never joins the speaker heard inside it
                    similarity = float(cache[a][0] @ cache[b][0])
                    alike = similarity >= threshold or same_voice(similarity, cache[a][1], cache[b][1],
                                                                   c.pitch_merge_similarity, c.pitch_merge_octaves)
                    if alike and similarity > best:
                        best, pair = similarity, (a, b)
            if pair is None:
                break
            a, b = pair
            labels[labels == b] = a
            members[a] |= members.pop(b)
            del cache[b]
            cache[a] = describe(a)
        renamed = first_appearance_order(labels)
        new = {int(old): int(value) for old, value in zip(labels, renamed)}
        owner = {m: new[v] for v, group in members.items() for m in group}
        return renamed, {(owner[a], owner[b]) for a, b in apart}

    def profiles(self, wav: np.ndarray, rate: int, turns: list[Turn]) -> list[VoiceProfile]:
        out = []
        for speaker in sorted({t.speaker for t in turns}, key=lambda s: int(s[1:]) if s[1:].isdigit() else s):
            pieces = [wav[int(t.start * rate):int(t.end * rate)] for t in turns if t.speaker == speaker]
            speech = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
            out.append(voice_profile(speaker, speech, rate, self.encoder))
        return out


def pitch_track(wav: np.ndarray, rate: int = RATE, chunk_s: float = 20.0, margin_s: float = 1.0) -> np.ndarray:
    """f0 (Hz, 0 = unvoiced) per FRAME_S frame: WORLD harvest (dio misses most voicing in
    telephone-quality speech, which the overlap cues need), `chunk_s` at a time with `margin_s` of
    context either side (harvest on a whole 195 s soundtrack took 4 GB)."""
    import pyworld

    x = np.ascontiguousarray(wav, dtype=np.float64)
    hop = int(round(FRAME_S * rate))
    frames = int(len(x) / rate / FRAME_S) + 1   # harvest's own count for the whole signal
    step, margin = int(chunk_s / FRAME_S) * hop, int(margin_s / FRAME_S) * hop
    f0 = np.zeros(frames)
    for start in range(0, max(len(x), 1), step):
        lo = max(0, start - margin)
        part, _ = pyworld.harvest(x[lo:start + step + margin], rate, f0_floor=60.0, f0_ceil=400.0, frame_period=FRAME_S * 1000)
        first, wanted = start // hop, min(step // hop, frames - start // hop)
        f0[first:first + wanted] = part[(start - lo) // hop:(start - lo) // hop + wanted]
    return f0


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


def spread_sample(speech: np.ndarray, rate: int, max_s: float, piece_s: float = 5.0) -> np.ndarray:
    """At most `max_s` of `speech`: pieces of `piece_s` spread evenly over it (all of it when shorter)."""
    if len(speech) <= max_s * rate:
        return speech
    piece, count = int(piece_s * rate), max(1, int(max_s / piece_s))
    starts = np.linspace(0, len(speech) - piece, count).astype(int)
    return np.concatenate([speech[a:a + piece] for a in starts])


def voice_profile(speaker: str, speech: np.ndarray, rate: int, encoder: SpeakerEncoder | None,
                  max_world_s: float = 60.0) -> VoiceProfile:
    """Pitch, envelope, level and embedding of one speaker's speech; the pitch and envelope from at
    most `max_world_s` of it, spread over it (WORLD on a long speaker's every word took gigabytes)."""
    speech = np.asarray(speech, np.float32)
    if len(speech) < rate * 0.2:
        return VoiceProfile(speaker, round(len(speech) / rate, 3), (), 0.0, 0.0, 0.0, 0.0, 0.0, "unknown")
    f0, sp, _ = world_features(spread_sample(speech, rate, max_world_s), rate)
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
