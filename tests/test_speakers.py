"""speakers: pure diarization logic (parametrized tables) and real-media checks (slow)."""
from __future__ import annotations

import numpy as np
import pytest

from tasks.artifacts import Segment, Word
from tasks.speakers import (Turn, absorb_short_runs, agglomerate, cluster_speech, diarization_error, f0_stats,
                            gender_guess, merge_small_clusters, relabel_segments, runs, smooth_mask, speaker_at,
                            window_spans)
from tasks.speakers.overlap import (Overlap, PitchCues, extend_mixtures, is_mixture, mixtures, overlap_labels,
                                    pitch_cues, same_voice)
from tests.conftest import shared_media


@pytest.mark.parametrize("mask, expected", [
    ([0, 0, 0], []),
    ([1, 1, 0, 1], [(0, 2), (3, 4)]),
    ([0, 1, 1, 1, 0], [(1, 4)]),
    ([1], [(0, 1)]),
])
def test_runs(mask, expected):
    assert runs(np.array(mask, bool)) == expected


@pytest.mark.parametrize("mask, min_run, max_gap, expected", [
    ("1100011", 1, 3, "1111111"),   # short pause bridged
    ("1100011", 1, 2, "1100011"),   # pause longer than max_gap kept
    ("0100000", 2, 0, "0000000"),   # blip dropped
    ("1110000", 2, 0, "1110000"),
])
def test_smooth_mask(mask, min_run, max_gap, expected):
    got = smooth_mask(np.array([c == "1" for c in mask]), min_run, max_gap)
    assert "".join("1" if v else "0" for v in got) == expected


@pytest.mark.parametrize("regions, window, hop, total, expected", [
    ([(0, 10)], 4, 3, 10, [(0, 4), (3, 7), (6, 10)]),
    ([(0, 9)], 4, 4, 9, [(0, 4), (4, 8), (5, 9)]),      # tail covered
    ([(5, 7)], 4, 2, 20, [(4, 8)]),                      # short region: one centred window
    ([(0, 2)], 4, 2, 3, [(0, 3)]),                       # audio shorter than a window
])
def test_window_spans(regions, window, hop, total, expected):
    assert window_spans(regions, window, hop, total) == expected


def _blobs(seed=0, per=6):
    rng = np.random.default_rng(seed)
    centres = np.eye(4)[:3] * 5
    points = np.concatenate([c + rng.normal(0, 0.5, (per, 4)) for c in centres])
    return points, np.repeat([0, 1, 2], per)


@pytest.mark.parametrize("threshold, num, expected_k", [(0.7, None, 3), (-0.9, None, 1), (0.99, 2, 2)])
def test_agglomerate_counts(threshold, num, expected_k):
    points, truth = _blobs()
    labels = agglomerate(points, threshold, num)
    assert labels.max() + 1 == expected_k
    if expected_k == 3:
        assert (labels == truth).all()  # first-appearance order


def test_merge_small_clusters_joins_nearest():
    emb = np.array([[1, 0], [1, 0.1], [0, 1], [0.2, 1.0]], float)
    labels = np.array([0, 0, 1, 2])
    out = merge_small_clusters(emb, labels, np.array([1.0, 1.0, 1.0, 0.2]), min_weight=0.5)
    assert out.tolist() == [0, 0, 1, 1]


def test_merge_small_clusters_keeps_overlap_apart_from_its_speaker():
    emb = np.array([[1, 0], [1, 0.1], [0.9, 0.3]], float)
    labels = np.array([0, 0, 1])
    weights = np.array([1.0, 1.0, 0.2])
    assert merge_small_clusters(emb, labels, weights, 0.5).tolist() == [0, 0, 0]
    assert merge_small_clusters(emb, labels, weights, 0.5, apart={(1, 0)}).tolist() == [0, 0, 1]


# --------------------------------------------------------------------------- overlap

@pytest.mark.parametrize("f0, mask, voiced, jumps, median", [
    ([100, 100, 100, 100], [1, 1, 1, 1], 1.0, 0.0, 100),
    ([100, 0, 100, 0], [1, 1, 1, 1], 0.5, 0.0, 100),
    ([100, 130, 100, 130], [1, 1, 1, 1], 1.0, 1.0, 115),
    ([100, 130, 100, 130], [1, 0, 1, 0], 1.0, 0.0, 100),     # non-adjacent frames are no jump
    ([100, 105, 0, 150, 155], [1, 1, 1, 1, 1], 0.8, 0.0, 127.5),
    ([100, 100], [0, 0], 0.0, 0.0, 0.0),
])
def test_pitch_cues(f0, mask, voiced, jumps, median):
    cues = pitch_cues(np.array(f0, float), np.array(mask, bool))
    assert cues.voiced == pytest.approx(voiced) and cues.jumps == pytest.approx(jumps)
    assert cues.median_f0 == pytest.approx(median)


SOLO = PitchCues(voiced=0.65, jumps=0.15, median_f0=90, frames=300)


@pytest.mark.parametrize("mixture, similarity, expected", [
    (PitchCues(0.92, 0.22, 120, 120), 0.63, True),      # the stereo file's measured cues
    (PitchCues(0.92, 0.22, 120, 120), 0.55, False),     # too unlike: a different speaker
    (PitchCues(0.75, 0.22, 120, 120), 0.7, False),      # not voiced more often
    (PitchCues(0.92, 0.16, 120, 120), 0.7, False),      # f0 does not hop
    (PitchCues(0.92, 0.22, 120, 30), 0.7, False),       # too few frames to tell
])
def test_is_mixture(mixture, similarity, expected):
    assert is_mixture(mixture, SOLO, similarity, Overlap()) is expected
    assert is_mixture(mixture, SOLO, similarity, Overlap(enabled=False)) is False


@pytest.mark.parametrize("spans, labels, cluster, speech, expected", [
    ([(0, 4), (2, 6)], [0, 1], 0, [1, 1, 0, 1, 1, 1], [1, 1, 0, 1, 0, 0]),
    ([(0, 4), (2, 6)], [0, 1], 1, [1, 1, 0, 1, 1, 1], [0, 0, 0, 1, 1, 1]),
    ([(0, 4), (2, 6)], [0, 0], 0, [0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]),
    ([(0, 4)], [0], 2, [1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0]),
])
def test_cluster_speech(spans, labels, cluster, speech, expected):
    assert cluster_speech(spans, labels, cluster, np.array(speech, bool)).astype(int).tolist() == expected


def test_short_word_in_a_window_of_silence_is_not_a_voice_inside_the_rest():
    """The demo's opening "Hello," (0.34 s in a 1 s window): counted with its window's silence it looked
    far less voiced than the rest of the speech, so the rest was taken for a mixture with it inside,
    kept apart, and "Hello," became a second speaker. Its speech frames alone are too few to tell."""
    f0 = np.r_[np.zeros(33), np.full(34, 120.0), np.zeros(33), np.tile([120.0, 150.0, 120.0, 0.0], 100)]
    speech = np.r_[np.zeros(33), np.ones(34), np.zeros(33), np.ones(400)].astype(bool)
    spans, labels = [(0, 100)] + [(s, s + 100) for s in range(100, 401, 20)], [0] + [1] * 16
    rest = pitch_cues(f0, cluster_speech(spans, labels, 1, speech))
    assert is_mixture(rest, pitch_cues(f0, np.r_[np.ones(100), np.zeros(400)].astype(bool)), 0.7, Overlap())
    assert not is_mixture(rest, pitch_cues(f0, cluster_speech(spans, labels, 0, speech)), 0.7, Overlap())


def test_mixtures_picks_most_similar_inner_speaker_and_no_chains():
    mix = PitchCues(0.95, 0.3, 120, 200)
    cues = {0: mix, 1: SOLO, 2: SOLO}
    sims = np.array([[1, 0.65, 0.7], [0.65, 1, 0.5], [0.7, 0.5, 1]])
    assert mixtures(cues, sims, Overlap()) == {0: 2}
    # a cluster heard inside a mixture is not a mixture itself
    chain = {0: mix, 1: PitchCues(0.8, 0.2, 100, 200), 2: SOLO}
    found = mixtures(chain, np.full((3, 3), 0.7), Overlap())
    assert set(found.values()).isdisjoint(found)


@pytest.mark.parametrize("labels, mix_scores, own_scores, expected_labels, expected_second", [
    # frames of speaker 1 still close to the mixture (0) join it; both speak there
    ([0, 0, 1, 1, 1], [.9, .9, .8, .6, .5], [.6, .6, .9, .9, .9], [0, 0, 0, 1, 1], [1, 1, 1, -1, -1]),
    ([0, -1, 1], [.9, 0, .5], [.5, 0, .9], [0, -1, 1], [1, -1, -1]),   # pauses stay pauses
])
def test_extend_mixtures_and_overlap_labels(labels, mix_scores, own_scores, expected_labels, expected_second):
    scores = np.stack([mix_scores, own_scores], axis=1)
    out = extend_mixtures(np.array(labels), scores, {0: 1}, margin=0.15)
    assert out.tolist() == expected_labels
    assert overlap_labels(out, {0: 1}).tolist() == expected_second


@pytest.mark.parametrize("similarity, f0_a, f0_b, expected", [
    (0.74, 167, 178, True),     # frontal_man_map's false split
    (0.74, 100, 200, False),    # a man and a woman
    (0.65, 167, 178, False),    # not alike enough
    (0.74, 0, 178, False),      # no pitch on one side
])
def test_same_voice(similarity, f0_a, f0_b, expected):
    assert same_voice(similarity, f0_a, f0_b, 0.7, 0.15) is expected


def test_overlap_counts_in_der():
    ref = [Turn(0.0, 2.0, "L"), Turn(0.0, 1.0, "R")]
    one = [Turn(0.0, 2.0, "S0")]
    both = [Turn(0.0, 1.0, "S1"), Turn(0.0, 1.0, "S0", overlap=True), Turn(1.0, 2.0, "S0")]
    assert diarization_error(ref, one)["der"] == pytest.approx(1 / 3, abs=0.01)
    assert diarization_error(ref, both)["der"] == pytest.approx(0.0, abs=0.01)


@pytest.mark.parametrize("labels, min_run, expected", [
    ([0, 0, 0, 1, 0, 0, 0], 2, [0, 0, 0, 0, 0, 0, 0]),          # one-frame flip absorbed
    ([0, 0, 0, 1, 1, 1, 1], 2, [0, 0, 0, 1, 1, 1, 1]),          # real turn kept
    ([0, 0, -1, 1, -1, 0, 0], 2, [0, 0, -1, 0, -1, 0, 0]),      # across pauses; pauses stay pauses
])
def test_absorb_short_runs(labels, min_run, expected):
    assert absorb_short_runs(np.array(labels), min_run).tolist() == expected


def test_absorb_short_runs_keeps_protected_interjection():
    labels = np.array([0, 0, 0, 1, 0, 0, 0])
    assert absorb_short_runs(labels, 2, keep=lambda a, b, v: v == 1).tolist() == labels.tolist()


TURNS = [Turn(0.0, 2.0, "S0"), Turn(2.0, 4.0, "S1")]


@pytest.mark.parametrize("start, end, expected", [(0.1, 1.0, "S0"), (1.5, 3.5, "S1"), (5.0, 6.0, "S1"), (1.9, 2.05, "S0")])
def test_speaker_at(start, end, expected):
    assert speaker_at(TURNS, start, end) == expected


def test_relabel_splits_at_word_boundary():
    words = tuple(Word(s, s + 0.4, f" w{i}") for i, s in enumerate([0.2, 0.8, 1.4, 2.2, 2.8, 3.4]))
    segments = (Segment(0, 0.2, 3.8, "w0 w1 w2 w3 w4 w5", words=words),)
    out = relabel_segments(segments, TURNS)
    assert [(s.id, s.speaker, s.text) for s in out] == [(0, "S0", "w0 w1 w2"), (1, "S1", "w3 w4 w5")]
    assert out[1].start == pytest.approx(2.2) and out[0].end == pytest.approx(1.8)


def test_relabel_single_stray_word_returns_to_its_run():
    words = tuple(Word(s, s + 0.3, f" w{i}") for i, s in enumerate([0.1, 0.5, 2.1, 2.5, 2.9]))
    turns = [Turn(0.0, 2.0, "S0"), Turn(2.0, 2.4, "S1"), Turn(2.4, 4.0, "S0")]
    out = relabel_segments((Segment(0, 0.1, 3.2, "x", words=words),), turns)
    assert [s.speaker for s in out] == ["S0"]


@pytest.mark.parametrize("hyp, collar, expected", [
    ([Turn(0, 2, "A"), Turn(2, 4, "B")], 0.0, 0.0),                  # labels need not match names
    ([Turn(0, 4, "A")], 0.0, 0.5),                                   # half confused
    ([Turn(0, 2, "A")], 0.0, 0.5),                                   # half missed
    ([Turn(0, 2.2, "A"), Turn(2.2, 4, "B")], 0.0, 0.05),
    ([Turn(0, 2.2, "A"), Turn(2.2, 4, "B")], 0.25, 0.0),             # boundary error inside the collar
    ([Turn(0, 2, "A"), Turn(2, 4, "B"), Turn(4, 5, "B")], 0.0, 0.25),  # false alarm
])
def test_diarization_error(hyp, collar, expected):
    assert diarization_error(TURNS, hyp, collar)["der"] == pytest.approx(expected, abs=0.011)


def test_diarization_error_counts_overlap_per_speaker():
    ref = [Turn(0, 2, "L"), Turn(0, 1, "R")]
    hyp = [Turn(0, 2, "x")]
    result = diarization_error(ref, hyp)
    assert result["missed"] == pytest.approx(1 / 3, abs=0.01)
    assert diarization_error(ref, hyp, skip_overlap=True)["der"] == pytest.approx(0.0, abs=0.01)


@pytest.mark.parametrize("f0, median, gender", [
    ([0, 0, 100, 100, 110, 90, 100, 0], 100.0, "male"),
    ([220] * 10, 220.0, "female"),
    ([160] * 10, 160.0, "unknown"),
    ([0, 0, 120], 0.0, "unknown"),   # too few voiced frames
])
def test_f0_stats_and_gender(f0, median, gender):
    stats = f0_stats(np.array(f0, float))
    assert stats["median"] == pytest.approx(median)
    assert gender_guess(stats["median"]) == gender


def test_schema_roundtrip(tmp_path):
    from tasks.speakers.schema import SpeakerTurn, Speakers, VoiceProfile, read, write

    profile = VoiceProfile("S0", 3.0, (0.1, 0.2), 120.0, 90.0, 180.0, 4.8, 0.2, "male", -25.0, (1.0, -1.0), (100.0, 200.0))
    seg = Segment(0, 0.0, 1.0, "hi", "S0", (Word(0.0, 0.5, " hi"),))
    data = Speakers("x", 1, (SpeakerTurn(0.0, 1.0, "S0"),), (profile,), (seg,), "en", {"num_speakers": None})
    write(tmp_path / "speakers.json", data)
    assert read(tmp_path / "speakers.json") == data


# --------------------------------------------------------------------------- real media (slow)

def _truth(x, name, offset=0.0):
    from tasks.speakers import FRAME_S
    from tasks.speakers.backends import energy_vad

    mask = smooth_mask(energy_vad(x, 16000, floor_db=-38, below_peak_db=30), 15, 30)
    return [Turn(round(offset + a * FRAME_S, 2), round(offset + b * FRAME_S, 2), name) for a, b in runs(mask)]


def _load16k(path):
    import subprocess

    from tasks.media import ffmpeg

    out = subprocess.run([ffmpeg(), "-v", "error", "-i", str(path), "-ac", "1", "-ar", "16000", "-f", "f32le", "-"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(out, np.float32)


@pytest.fixture(scope="module")
def diarizer():
    pytest.importorskip("torch")
    from tasks.speakers.backends import ResemblyzerDiarizer

    return ResemblyzerDiarizer()


@pytest.mark.slow
def test_encoder_separates_real_speakers(diarizer):
    man = _load16k(shared_media("video/frontal_man_suit.mp4"))
    woman = _load16k(shared_media("video/frontal_woman_flag.mp4"))
    enc = diarizer.encoder
    half = len(man) // 2
    same = float(enc.embed_utterance(man[:half]) @ enc.embed_utterance(man[half:]))
    other = float(enc.embed_utterance(man) @ enc.embed_utterance(woman))
    assert same > other + 0.2


@pytest.mark.slow
def test_der_two_clip_composite(diarizer):
    a = _load16k(shared_media("video/frontal_man_suit.mp4"))
    b = _load16k(shared_media("video/frontal_woman_flag.mp4"))
    pieces = [(a, 0.0, 2.4, "A"), (b, 0.0, 3.05, "B"), (a, 3.45, 4.55, "A"), (b, 3.25, 5.0, "B")]
    wav, ref, t = [], [], 0.0
    for x, s, e, n in pieces:
        chunk = x[int(s * 16000):int(e * 16000)]
        wav.append(chunk)
        ref += _truth(chunk, n, t)
        t += len(chunk) / 16000
    hyp, _ = diarizer.diarize(np.concatenate(wav))
    assert len({h.speaker for h in hyp}) == 2
    assert diarization_error(ref, hyp)["der"] < 0.15


@pytest.mark.slow
def test_der_stereo_two_speakers(diarizer):
    import soundfile

    stereo, rate = soundfile.read(str(shared_media("audio/two_speakers_stereo_en.wav")), dtype="float32")
    ref = _truth(stereo[:, 0], "L") + _truth(stereo[:, 1], "R")
    hyp, _ = diarizer.diarize(stereo.mean(axis=1), rate)
    # the right speaker only ever talks over the left one (2 of 6.4 s of reference speech)
    assert diarization_error(ref, hyp)["der"] < 0.15
    assert any(t.overlap for t in hyp)


def test_relabel_joins_words_without_leading_spaces():
    words = (Word(0.2, 0.5, "hello"), Word(0.6, 0.9, "there"), Word(2.2, 2.5, "general"), Word(2.6, 2.9, "kenobi"))
    out = relabel_segments((Segment(0, 0.2, 2.9, "hello there general kenobi", words=words),), TURNS)
    assert [s.text for s in out] == ["hello there", "general kenobi"]


def test_utterances_embedded_in_one_batch_are_each_utterance_embedded_alone():
    """Different lengths (one partial, several, a short tail dropped) in one batch: the same vectors."""
    pytest.importorskip("torch")
    from tasks.speakers.encoder import SpeakerEncoder

    rng = np.random.default_rng(3)
    t = np.arange(16000 * 4) / 16000
    voiced = (0.2 * np.sin(2 * np.pi * 140 * t) * (1 + np.sin(2 * np.pi * 3 * t)) + 0.01 * rng.standard_normal(len(t)))
    wavs = [voiced[:16000].astype(np.float32), voiced.astype(np.float32), voiced[:int(16000 * 2.9)].astype(np.float32)]
    encoder = SpeakerEncoder()
    together = encoder.embed_utterances(wavs, 16000)
    assert together.shape == (3, 256)
    for wav, vector in zip(wavs, together):
        assert np.allclose(vector, encoder.embed_utterance(wav, 16000), atol=1e-5)
    assert encoder.embed_utterances([], 16000).shape == (0, 256)


def test_the_pitch_track_is_the_same_a_chunk_at_a_time():
    import pyworld

    from tasks.media import read_wav, resample
    from tasks.speakers import FRAME_S
    from tasks.speakers.backends import pitch_track

    samples, rate = read_wav(shared_media("audio/fr.wav"))
    wav = resample(samples.mean(axis=1), rate, 16000)
    whole, _ = pyworld.harvest(wav.astype(np.float64), 16000, f0_floor=60.0, f0_ceil=400.0, frame_period=FRAME_S * 1000)
    chunked = pitch_track(wav, 16000, chunk_s=1.5, margin_s=0.5)
    assert chunked.shape == whole.shape
    both = (whole > 0) & (chunked > 0)
    assert np.mean((whole > 0) == (chunked > 0)) > 0.99 and both.sum() > 100
    assert np.mean(np.abs(chunked[both] / whole[both] - 1) < 0.01) > 0.99


@pytest.mark.parametrize("seconds,max_s,expected_s", [(10.0, 60.0, 10.0), (600.0, 60.0, 60.0), (61.0, 60.0, 60.0)])
def test_a_long_speakers_profile_is_measured_on_speech_spread_over_it(seconds, max_s, expected_s):
    from tasks.speakers.backends import spread_sample

    speech = np.arange(int(seconds * 100), dtype=np.float32)   # 100 "samples" a second: each sample its own time
    sample = spread_sample(speech, 100, max_s)
    assert len(sample) == int(expected_s * 100)
    if seconds > max_s:
        assert sample[0] == 0 and sample[-1] == speech[-1], "from the first word to the last"
