"""The soundtrack without its speech (tasks/ingest/background.py): real DeepFilterNet 3 on a voice over
generated music, where both parts are known."""
from __future__ import annotations

import numpy as np
import pytest

from tasks.ingest.background import MODEL_RATE, DeepFilterBackground, model_delay
from tasks.media import resample
from tests.conftest import SHARED_MEDIA

RATE = 44_100


@pytest.fixture(scope="module")
def voice() -> np.ndarray:
    """A real voice (../shared/media/audio/es.wav) or, without that folder, the project's Piper voice."""
    from tasks.media import read_wav

    path = SHARED_MEDIA / "audio" / "es.wav"
    if path.exists():
        samples, rate = read_wav(path)
        samples = samples.mean(axis=1)
    else:
        from tasks.tts.voices import PiperVoice

        piper = PiperVoice(model="joe-us", seed=0)
        samples, rate = piper.synthesize("The quick brown fox jumps over the lazy dog, and then it runs away."), piper.sample_rate
    samples = resample(np.asarray(samples, dtype=np.float32), rate, RATE)
    return (0.1 * samples / np.sqrt(np.mean(samples ** 2))).astype(np.float32)


def music(length: int, rate: int = RATE) -> np.ndarray:
    """Chords of harmonic tones, two a second, each decaying, and a noise hit on every beat."""
    t = np.arange(length) / rate
    out = np.zeros(length)
    chords = [[220.0, 277.2, 329.6], [196.0, 246.9, 293.7], [174.6, 220.0, 261.6]]
    noise = np.random.default_rng(0).standard_normal(length)
    for beat in range(int(t[-1] * 2) + 1):
        inside = (t >= beat * 0.5) & (t < beat * 0.5 + 0.5)
        since = t[inside] - beat * 0.5
        for frequency in chords[beat % 3]:
            for harmonic in range(1, 6):
                out[inside] += np.sin(2 * np.pi * frequency * harmonic * t[inside]) * np.exp(-3 * since) / harmonic
        out[inside] += 2 * noise[inside] * np.exp(-since / 0.01)
    return out.astype(np.float32)


def parts(background: np.ndarray, voice: np.ndarray, song: np.ndarray) -> tuple[float, float, float]:
    """How much of the voice and of the music the background holds (least-squares gains, dB), and
    what is left besides them, in dB of the voice."""
    basis = np.stack([voice, song], axis=1)
    gains, *_ = np.linalg.lstsq(basis, background, rcond=None)
    rest = background - basis @ gains
    level = lambda x: 20 * np.log10(max(float(np.sqrt(np.mean(x ** 2))), 1e-12))  # noqa: E731
    return 20 * np.log10(max(abs(gains[0]), 1e-12)), 20 * np.log10(max(abs(gains[1]), 1e-12)), level(rest) - level(voice)


def test_the_models_delay_is_where_its_speech_lines_up(voice):
    separator = DeepFilterBackground()
    original = resample(voice, RATE, MODEL_RATE).astype(np.float32)
    estimate = separator.speech(original)
    lags = np.arange(-40, 41)
    scores = [np.dot(estimate[max(0, k):len(estimate) + min(0, k)], original[max(0, -k):len(original) - max(0, k)]) for k in lags]
    assert lags[int(np.argmax(scores))] == 0, "the estimate must line up with the input (model_delay)"
    assert model_delay(separator._runtime[1]) == 1440  # DeepFilterNet 3: 480 (window less hop) + 2 look-ahead frames of 480


# measured with es.wav: voice -45.8 / -60.2 dB, music -5.3 / -6.9 dB (ducking: -30 dB of both)
@pytest.mark.parametrize("music_db,most_voice_db,least_music_db", [(-10.0, -30.0, -6.0), (-20.0, -30.0, -8.0)])
def test_the_voice_is_taken_out_and_the_music_kept(voice, music_db, most_voice_db, least_music_db):
    song = music(len(voice))
    song *= np.sqrt(np.mean(voice ** 2) / np.mean(song ** 2)) * 10 ** (music_db / 20)
    mixture = np.stack([voice + song] * 2, axis=1)
    background = DeepFilterBackground().background(mixture, RATE)
    assert background.shape == mixture.shape
    voice_db, music_kept_db, _ = parts(background[:, 0], voice, song)
    assert voice_db < most_voice_db, f"the voice is {voice_db:.1f} dB in the background"
    assert music_kept_db > least_music_db, f"the music is {music_kept_db:.1f} dB in the background"
    plain = DeepFilterBackground(over_subtraction=1.0).background(mixture, RATE)  # the estimate subtracted, no more
    assert parts(plain[:, 0], voice, song)[0] > voice_db + 6, "over-subtraction is what takes the voice out"


def test_a_voice_alone_leaves_less_than_the_ducking_did(voice):
    background = DeepFilterBackground().background(np.stack([voice, voice], axis=1), RATE)[:, 0]
    left_db = 10 * np.log10(np.mean(background ** 2) / np.mean(voice ** 2))
    assert left_db < -28.0, f"{left_db:.1f} dB of the voice is left (the ducking kept -30 dB)"


def test_a_long_soundtrack_is_masked_a_block_at_a_time_with_the_same_result(voice):
    song = music(len(voice)) * 0.02
    mixture = np.stack([voice + song, 0.5 * voice + song], axis=1)
    whole = DeepFilterBackground(block_s=1000.0).background(mixture, RATE)
    blocks = DeepFilterBackground(block_s=0.37).background(mixture, RATE)
    np.testing.assert_allclose(blocks, whole, atol=1e-4)


def test_silence_stays_silent():
    quiet = np.zeros((RATE, 2), dtype=np.float32)
    assert np.abs(DeepFilterBackground().background(quiet, RATE)).max() < 1e-6
