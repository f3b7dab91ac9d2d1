"""GE2E speaker embeddings from the weights inside the `resemblyzer` package, without its imports.

`resemblyzer` imports librosa (and with it numba/llvmlite) and webrtcvad at import time, only to
compute a 40-band mel spectrogram and trim silences. The network is a 3-layer LSTM; here it is
rebuilt in torch and fed a numpy mel spectrogram identical to librosa's (slaney mel, power 2,
centred zero-padded frames), so the one package needed at run time is the weights file.
"""
from __future__ import annotations

import importlib.util
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

from tasks.models import ModelNotInstalled

RATE = 16_000
N_FFT = 400        # 25 ms
HOP = 160          # 10 ms
N_MELS = 40
PARTIAL_FRAMES = 160  # 1.6 s, what the encoder was trained on
_lock = threading.Lock()
_loaded: dict = {}  # weights path -> model: every SpeakerEncoder of a process shares one copy


def weights_path() -> Path:
    spec = importlib.util.find_spec("resemblyzer")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotInstalled("resemblyzer is not installed (it carries the speaker encoder): pip install --no-deps resemblyzer")
    path = Path(list(spec.submodule_search_locations)[0]) / "pretrained.pt"
    if not path.exists():
        raise ModelNotInstalled(f"{path} is missing: reinstall resemblyzer")
    return path


def _hz_to_mel(f):
    f = np.asarray(f, dtype=np.float64)
    f_sp = 200.0 / 3
    mels = f / f_sp
    min_log_hz, logstep = 1000.0, np.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, mels)


def _mel_to_hz(m):
    m = np.asarray(m, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz, logstep = 1000.0, np.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


@lru_cache(maxsize=4)
def mel_filters(rate: int = RATE, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """Slaney-style mel filterbank (librosa.filters.mel defaults), shape (n_mels, 1 + n_fft // 2)."""
    fft_freqs = np.linspace(0, rate / 2, 1 + n_fft // 2)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(rate / 2), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights.astype(np.float32)


def mel_spectrogram(wav: np.ndarray) -> np.ndarray:
    """Power mel spectrogram (frames, 40) of 16 kHz audio, as resemblyzer computes it (not log)."""
    wav = np.asarray(wav, dtype=np.float32)
    padded = np.pad(wav, (N_FFT // 2, N_FFT // 2))
    n_frames = 1 + (len(padded) - N_FFT) // HOP
    if n_frames <= 0:
        return np.zeros((0, N_MELS), np.float32)
    index = np.arange(N_FFT)[None, :] + HOP * np.arange(n_frames)[:, None]
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)  # periodic hann
    spectrum = np.abs(np.fft.rfft(padded[index] * window, axis=1)) ** 2
    return (spectrum.astype(np.float32) @ mel_filters().T).astype(np.float32)


def normalize_volume(wav: np.ndarray, target_dbfs: float = -30.0) -> np.ndarray:
    """Raise (never lower) the level to `target_dbfs` RMS, as resemblyzer's preprocessing does."""
    rms = float(np.sqrt(np.mean(np.square(wav, dtype=np.float64)))) if len(wav) else 0.0
    if rms <= 1e-9:
        return wav
    change = target_dbfs - 20 * np.log10(rms)
    return wav * (10 ** (change / 20)) if change > 0 else wav


class SpeakerEncoder:
    """The GE2E LSTM (40 mel -> 3x256 LSTM -> 256, ReLU, L2-normed), CPU, weights loaded once."""

    def __init__(self, weights: str | Path | None = None, threads: int = 0):
        self.weights = Path(weights) if weights else None
        self.threads = threads
        self._model = None

    def _load(self):
        with _lock:
            if self._model is None:
                self._model = _loaded.get(self.weights or weights_path())
            if self._model is None:
                import torch
                from torch import nn

                if self.threads:
                    torch.set_num_threads(self.threads)

                class GE2E(nn.Module):
                    def __init__(self):
                        super().__init__()
                        self.lstm = nn.LSTM(N_MELS, 256, 3, batch_first=True)
                        self.linear = nn.Linear(256, 256)

                    def forward(self, mels):
                        _, (hidden, _) = self.lstm(mels)
                        raw = torch.relu(self.linear(hidden[-1]))
                        return raw / torch.clamp(torch.norm(raw, dim=1, keepdim=True), min=1e-8)

                model = GE2E()
                checkpoint = torch.load(self.weights or weights_path(), map_location="cpu", weights_only=False)
                model.load_state_dict(checkpoint["model_state"], strict=False)
                model.eval()
                self._model = _loaded[self.weights or weights_path()] = model
        return self._model

    def embed_mels(self, mels: np.ndarray) -> np.ndarray:
        """Embeddings of a batch of equal-length mel windows (batch, frames, 40) -> (batch, 256)."""
        import torch

        model = self._load()
        if len(mels) == 0:
            return np.zeros((0, 256), np.float32)
        with torch.no_grad():
            return model(torch.from_numpy(np.ascontiguousarray(mels, dtype=np.float32))).numpy()

    def embed_windows(self, wav: np.ndarray, spans: list[tuple[int, int]], batch: int = 64) -> np.ndarray:
        """One embedding per (first, last) mel-frame span of `wav`; spans of equal length batch together."""
        return self.embed_spans(self.mel(wav), spans, batch)

    @staticmethod
    def mel(wav: np.ndarray) -> np.ndarray:
        """The volume-normalised mel spectrogram that `embed_spans` takes spans of."""
        return mel_spectrogram(normalize_volume(wav))

    def embed_spans(self, mel: np.ndarray, spans: list[tuple[int, int]], batch: int = 64) -> np.ndarray:
        """`embed_windows` on a mel spectrogram already computed (`mel(wav)`), for repeated calls."""
        out = np.zeros((len(spans), 256), np.float32)
        by_length: dict[int, list[int]] = {}
        for i, (a, b) in enumerate(spans):
            by_length.setdefault(b - a, []).append(i)
        for length, indices in by_length.items():
            for k in range(0, len(indices), batch):
                chunk = indices[k:k + batch]
                stack = np.stack([_frames(mel, spans[i][0], length) for i in chunk])
                out[chunk] = self.embed_mels(stack)
        return out

    def embed_utterance(self, wav: np.ndarray, rate: int = RATE) -> np.ndarray:
        """resemblyzer's `embed_utterance`: mean of 1.6 s partials (rate 1.3/s, 75 % coverage), L2-normed."""
        return self.embed_utterances([wav], rate)[0]

    def embed_utterances(self, wavs: list[np.ndarray], rate: int = RATE, batch: int = 64) -> np.ndarray:
        """`embed_utterance` of each of `wavs`, (len(wavs), 256): their partials run through the network
        together (one batch instead of one per utterance: about 3x faster for a handful of them)."""
        windows = [partial_windows(wav, rate) for wav in wavs]
        stacked = np.concatenate(windows) if windows else np.zeros((0, PARTIAL_FRAMES, N_MELS), np.float32)
        partials = np.concatenate([self.embed_mels(stacked[k:k + batch]) for k in range(0, len(stacked), batch)] or
                                  [np.zeros((0, 256), np.float32)])
        out = np.zeros((len(wavs), 256), np.float32)
        first = 0
        for i, count in enumerate(len(w) for w in windows):
            mean = partials[first:first + count].mean(axis=0)
            out[i] = mean / max(np.linalg.norm(mean), 1e-8)
            first += count
        return out


def partial_windows(wav: np.ndarray, rate: int = RATE) -> np.ndarray:
    """The mel windows (n, PARTIAL_FRAMES, N_MELS) an utterance embedding averages: 1.6 s partials at
    1.3 a second, the last kept where it covers 75 % of a window, on the volume-normalised speech."""
    if rate != RATE:
        from tasks.media import resample

        wav = resample(wav, rate, RATE)
    wav = normalize_volume(np.asarray(wav, np.float32))
    n_frames = int(np.ceil((len(wav) + 1) / HOP))
    step = int(round((RATE / 1.3) / HOP))
    starts = list(range(0, max(1, n_frames - PARTIAL_FRAMES + step + 1), step))
    if len(starts) > 1:
        coverage = (len(wav) - starts[-1] * HOP) / (PARTIAL_FRAMES * HOP)
        if coverage < 0.75:
            starts = starts[:-1]
    need = (starts[-1] + PARTIAL_FRAMES) * HOP
    if need >= len(wav):
        wav = np.pad(wav, (0, need - len(wav)))
    mel = mel_spectrogram(wav)
    return np.stack([_frames(mel, s, PARTIAL_FRAMES) for s in starts]).astype(np.float32)


def _frames(mel: np.ndarray, first: int, length: int) -> np.ndarray:
    piece = mel[first:first + length]
    if len(piece) < length:
        piece = np.pad(piece, ((0, length - len(piece)), (0, 0)))
    return piece
