"""Phoneme timings for speech: from the synthesizer when it exposes durations, else by alignment.

* `KokoroAligner` - re-runs Kokoro with its duration predictor exposed as an extra ONNX output
  (`/encoder/Cast_output_0`: integer frames of 600 samples at 24 kHz per input token, the same
  rounded durations the decoder uses), replays the tts stage's chunking, trimming and pauses, and
  places the phones on the dub's timeline; each segment's offset is then refined against voice.wav,
  and (`bilabial_releases`) each /p b m/ moved onto voice.wav's own closure and release.
* `AsrAligner` - Whisper word timings on the audio, espeak-ng IPA per word, phones spread inside
  each word by typical relative durations, refined on the audio energy (word edges trimmed to the
  voiced region, stops and bilabials moved onto the nearest energy dip), then, when `boundaries`
  is configured, re-placed by a broad-class forced alignment on the audio's sonority (refine.py).
* `AutoAligner` - Kokoro where every segment was voiced by Kokoro, the ASR aligner otherwise.

Every aligner returns `list[TimedPhone]` (seconds on the audio's timeline) and a speaker per phone.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from tasks.visemes.bilabials import BilabialReleases, snap_bilabials
from tasks.visemes.coarticulation import TimedPhone
from tasks.visemes.tables import LENGTH, SILENCE, Phone, VisemeTable

log = logging.getLogger("dub")
ENVELOPE_RATE = 200.0  # Hz
STOPS = set("pbtdkgɡʔ")


# --------------------------------------------------------------------------- pure helpers

def envelope(samples: np.ndarray, rate: int, hop_rate: float = ENVELOPE_RATE, window_s: float = 0.02) -> np.ndarray:
    """RMS energy at `hop_rate` Hz (frame k centred on k / hop_rate)."""
    samples = np.asarray(samples, dtype=np.float64).ravel()
    hop = rate / hop_rate
    n = int(np.ceil(len(samples) / hop)) if len(samples) else 0
    half = max(1, int(window_s * rate / 2))
    squared = np.concatenate([[0.0], np.cumsum(samples ** 2)])
    centers = (np.arange(n) * hop).astype(int)
    lo, hi = np.clip(centers - half, 0, len(samples)), np.clip(centers + half, 0, len(samples))
    return np.sqrt((squared[hi] - squared[lo]) / np.maximum(hi - lo, 1))


def spread(phones: list[Phone], start: float, end: float, word: str = "") -> list[TimedPhone]:
    """Share [start, end] among phones in proportion to their typical relative durations."""
    phones = [p for p in phones if p.viseme != SILENCE]
    if not phones or end <= start:
        return []
    weights = np.array([p.weight for p in phones], dtype=float)
    edges = start + (end - start) * np.concatenate([[0.0], np.cumsum(weights) / weights.sum()])
    return [TimedPhone(float(edges[i]), float(edges[i + 1]), p.symbol, p.viseme, word) for i, p in enumerate(phones)]


def trim_to_voice(start: float, end: float, env: np.ndarray, threshold: float, lead_s: float = 0.06,
                  tail_s: float = 0.03, min_s: float = 0.05) -> tuple[float, float]:
    """Shrink a word's span to its voiced part (Whisper spans often run into pauses)."""
    lo, hi = int(start * ENVELOPE_RATE), int(np.ceil(end * ENVELOPE_RATE))
    voiced = np.flatnonzero(env[lo:hi] > threshold)
    if voiced.size == 0:  # nothing audible: Whisper stretched a word over a pause; keep its start
        return start, min(end, start + max(min_s, 0.2))
    new_start = max(start, (lo + voiced[0]) / ENVELOPE_RATE - lead_s)
    new_end = min(end, (lo + voiced[-1] + 1) / ENVELOPE_RATE + tail_s)
    if new_end - new_start < min_s:
        return start, end
    return new_start, new_end


def snap_stops(phones: list[TimedPhone], env: np.ndarray, max_shift_s: float = 0.04, min_s: float = 0.015) -> list[TimedPhone]:
    """Move every stop (p b t d k g) onto the deepest energy dip near it, inside its word."""
    out = list(phones)
    for i, phone in enumerate(out):
        if phone.symbol[:1] not in STOPS and phone.viseme != "PP":
            continue
        lo_t = max(phone.center - max_shift_s, out[i - 1].start + min_s if i > 0 and out[i - 1].word == phone.word else phone.start)
        hi_t = min(phone.center + max_shift_s, out[i + 1].end - min_s if i + 1 < len(out) and out[i + 1].word == phone.word else phone.end)
        lo, hi = int(lo_t * ENVELOPE_RATE), int(np.ceil(hi_t * ENVELOPE_RATE)) + 1
        if hi - lo < 2 or hi > len(env):
            continue
        center = (lo + int(np.argmin(env[lo:hi]))) / ENVELOPE_RATE
        half = 0.5 * (phone.end - phone.start)
        start, end = center - half, center + half
        if i > 0 and out[i - 1].word == phone.word:
            start = max(start, out[i - 1].start + min_s)
            out[i - 1] = TimedPhone(out[i - 1].start, start, out[i - 1].symbol, out[i - 1].viseme, out[i - 1].word)
        else:
            start = max(start, phone.start)
        if i + 1 < len(out) and out[i + 1].word == phone.word:
            end = min(end, out[i + 1].end - min_s)
            out[i + 1] = TimedPhone(end, out[i + 1].end, out[i + 1].symbol, out[i + 1].viseme, out[i + 1].word)
        else:
            end = min(end, phone.end)
        out[i] = TimedPhone(start, max(end, start + 1e-3), phone.symbol, phone.viseme, phone.word)
    return out


def lenite(phones: list, table: VisemeTable, previous: TimedPhone | None, gap_s: float, max_gap_s: float = 0.15) -> list:
    """`phones` of one word with its first stop turned into the table's approximant where the word
    follows a sound of the same breath (no pause of `max_gap_s` or more, not after a kept-after phone)."""
    if not phones or not table.lenition or previous is None or previous.viseme == SILENCE or gap_s >= max_gap_s:
        return phones
    first = phones[0]
    if first.symbol not in table.lenition or previous.symbol.rstrip(LENGTH)[:1] in table.lenition_kept_after:
        return phones
    symbol = table.lenition[first.symbol]
    return [replace(first, symbol=symbol, viseme=table.viseme(symbol) or first.viseme), *phones[1:]]


def align_words(words: list[tuple[float, float, str]], table: VisemeTable, phonemize, env: np.ndarray | None = None,
                max_phone_s: float = 0.25) -> list[TimedPhone]:
    """Timed phones from timed words: IPA per word, spread, refined on the energy envelope."""
    threshold = 0.12 * float(np.percentile(env, 95)) if env is not None and env.size else 0.0
    out: list[TimedPhone] = []
    for index, (start, end, text) in enumerate(words):
        clean = re.sub(r"[^\w'’-]+", " ", text).strip()
        if not clean:
            continue
        phones = table.tokenize(phonemize(clean))
        if env is not None and env.size:
            start, end = trim_to_voice(start, end, env, threshold)
        phones = lenite(phones, table, out[-1] if out else None, start - out[-1].end if out else 0.0)
        if out:
            start = max(start, out[-1].end)
        voiced_phones = [p for p in phones if p.viseme != SILENCE]
        end = min(end, start + max_phone_s * max(1, len(voiced_phones)))  # no phone held for ages
        out.extend(spread(phones, start, end, word=f"{index}:{clean}"))
    return snap_stops(out, env) if env is not None and env.size else out


def split_silent_tails(phones: list[TimedPhone], env: np.ndarray, threshold: float, min_phone_s: float = 0.2,
                       min_silence_s: float = 0.1) -> list[TimedPhone]:
    """Long phones whose end (or start) is silent in the audio give that part to a silence phone:
    a synthesizer often folds a pause into the phone before it."""
    out: list[TimedPhone] = []
    for p in phones:
        if p.viseme == SILENCE or p.end - p.start < min_phone_s:
            out.append(p)
            continue
        lo, hi = int(p.start * ENVELOPE_RATE), int(np.ceil(p.end * ENVELOPE_RATE))
        voiced = np.flatnonzero(env[lo:hi] > threshold)
        if voiced.size == 0:
            out.append(p)
            continue
        start = (lo + voiced[0]) / ENVELOPE_RATE
        end = (lo + voiced[-1] + 1) / ENVELOPE_RATE
        if start - p.start >= min_silence_s and p.symbol[:1] not in STOPS:
            out.append(TimedPhone(p.start, start, "_", SILENCE, p.word))
        else:
            start = p.start
        if p.end - end >= min_silence_s:
            out.append(TimedPhone(start, end, p.symbol, p.viseme, p.word))
            out.append(TimedPhone(end, p.end, "_", SILENCE, p.word))
        else:
            out.append(TimedPhone(start, p.end, p.symbol, p.viseme, p.word))
    return out


def durations_to_phones(chunk: str, frames: np.ndarray, table: VisemeTable, offset_s: float, frame_s: float,
                        max_join_s: float = 0.1) -> list[TimedPhone]:
    """Phones of one synthesized chunk from per-token durations (frames[0] is the leading pad).

    Stress marks give their time to the next phone; length marks, diacritics and short spaces to
    the previous one; punctuation and spaces longer than `max_join_s` become silence phones.
    """
    bounds = offset_s + frame_s * np.concatenate([[0.0], np.cumsum(frames)])
    out: list[TimedPhone] = []
    pending_start: float | None = None
    word = 0
    for i, char in enumerate(chunk):
        start, end = float(bounds[i + 1]), float(bounds[i + 2])
        probe = table.tokenize(char)
        if probe and probe[0].viseme != SILENCE:
            out.append(TimedPhone(pending_start if pending_start is not None else start, end, char, probe[0].viseme, str(word)))
            pending_start = None
        elif probe:  # punctuation: a real pause
            out.append(TimedPhone(start, end, char, SILENCE, str(word)))
        elif char in "ˈˌ":
            pending_start = start if pending_start is None else pending_start
        elif char.isspace() and end - start > max_join_s:  # the model put a pause between the words
            out.append(TimedPhone(start, end, " ", SILENCE, str(word)))
        elif out:
            last = out[-1]
            out[-1] = TimedPhone(last.start, end, last.symbol, last.viseme, last.word)
        if char.isspace():
            word += 1
    return out


def chunk_on_timeline(audio: np.ndarray, rate: int, chunk: str, durations: np.ndarray, frame_s: float, table: VisemeTable,
                      cursor: float) -> tuple[list[TimedPhone], float]:
    """The phones of one synthesized chunk (`durations_to_phones`) where the voice's `synthesize`
    put its audio: silence trimmed as `trim_silence` trims it, the kept audio starting at `cursor`
    (s), phones cut to it. Returns (phones, seconds of audio kept)."""
    from tasks.tts.voices import trim_silence

    loud = np.flatnonzero(np.abs(audio) > 0.01)
    trim_start = max(0, int(loud[0]) - int(0.03 * rate)) if loud.size else 0
    length = len(trim_silence(audio, rate)) / rate
    phones = durations_to_phones(chunk, durations, table, cursor - trim_start / rate, frame_s)
    return [TimedPhone(max(p.start, cursor), min(p.end, cursor + length), p.symbol, p.viseme, p.word)
            for p in phones if p.end > cursor and p.start < cursor + length], length


# --------------------------------------------------------------------------- aligners

@dataclass
class Alignment:
    phones: list[TimedPhone]
    speakers: list[str]  # one per phone
    method: str


class AsrAligner:
    """Whisper word timings + espeak-ng phonemes, refined on the audio energy."""

    name = "asr"

    def __init__(self, model: str = "whisper-base", beam_size: int = 5, refine: bool = True, boundaries: dict | None = None):
        self.model = model
        self.beam_size = beam_size
        self.refine = refine
        # phone boundaries re-placed on the audio's sonority (tasks/visemes/refine.py); None: off
        self.boundaries = boundaries
        self._asr = None

    def words(self, audio: Path, language: str) -> list[tuple[float, float, str]]:
        from tasks.asr.backends import FasterWhisper

        if self._asr is None:
            self._asr = FasterWhisper(self.model, beam_size=self.beam_size, progress=False)
        transcript = self._asr.transcribe(Path(audio), language=language)
        return [(w.start, w.end, w.text) for s in transcript.segments for w in s.words]

    def align_audio(self, audio: Path, table: VisemeTable, words: list[tuple[float, float, str]] | None = None) -> list[TimedPhone]:
        from tasks.media import read_wav
        from tasks.tts.voices import espeak_phonemes

        samples, rate = read_wav(audio)
        env = envelope(samples.mean(axis=1), rate) if self.refine else None
        words = self.words(audio, table.language) if words is None else words

        def phonemize(text: str) -> str:
            return "".join(espeak_phonemes(text, table.espeak_voice)).strip()

        phones = align_words(words, table, phonemize, env)
        if self.refine and self.boundaries is not None:
            from tasks.visemes.refine import Refinement, dynamic_range_db, refine, sonority

            model = Refinement(**self.boundaries)
            spread_db = dynamic_range_db(env)
            if spread_db >= model.min_dynamic_range_db:
                phones = refine(phones, table, sonority(samples.mean(axis=1), rate, model), model)
            else:
                log.info("phone boundaries kept from the word timings: the audio's quiet frames are only %.0f dB under "
                         "its loud ones (music or noise under the speech)", spread_db)
        return phones

    def align(self, audio: Path, segments, table: VisemeTable, speaker_of: dict[int, str],
              retiming: dict[int, tuple[float, tuple]] | None = None) -> Alignment:
        """`retiming` is not needed: the phones are found on the audio as it is."""
        phones = [p for p in self.align_audio(audio, table) if p.viseme != SILENCE]
        return Alignment(phones, [_speaker_at(p.center, segments, speaker_of) for p in phones], f"asr:{self.model}")


def kokoro_style_of(voice_name: str) -> tuple[str, str]:
    """(style spec, language) of a KokoroVoice's name, `kokoro-<style>-<language>`; a fitted style
    has signed weights (`kokoro-jf_alpha:-0.2+jm_kumo:1.2|jm_kumo-es`)."""
    style, _, language = voice_name.removeprefix("kokoro-").rpartition("-")
    return style, language


class KokoroAligner:
    """Durations from Kokoro's own duration predictor, replayed on the dub's timeline."""

    name = "kokoro"
    method = "kokoro-durations"
    frame_samples = 600  # Kokoro decodes 600 samples (24 kHz) per duration frame
    output = "/encoder/Cast_output_0"

    def __init__(self, refine_shift_s: float = 0.08, silence_level: float = 0.015, min_match: float = 0.0,
                 max_length_error: float = 0.05, bilabial_releases: dict | None = None):
        self.refine_shift_s = refine_shift_s
        # its /p b m/ moved onto the dub audio's own releases (tasks/visemes/bilabials.py); None: off
        self.bilabial_releases = BilabialReleases.of(bilabial_releases)
        self.bilabial_moves: list[dict] = []
        self.min_match = min_match  # below this speech/energy correlation the replay is not trusted
        self.max_length_error = max_length_error  # relative: replay and dub must last as long
        self.scores: dict[int, float] = {}
        self.silence_level = silence_level  # synthesized pauses are digital silence: -36 dB under loud speech
        self._session = None

    @staticmethod
    def handles(segments) -> bool:
        return bool(segments) and all(s.voice.startswith("kokoro-") for s in segments)

    def _load(self):
        if self._session is None:
            import onnxruntime

            from tasks.models import cache_dir
            from tasks.tts.voices import _kokoro_assets

            base = Path(_kokoro_assets()["model"])  # assembled and checked as KokoroVoice uses it
            path = cache_dir() / "kokoro-durations" / f"{base.stem}-durations.onnx"
            if not path.exists():
                import onnx
                from onnx import TensorProto, helper

                from tasks.artifacts import atomic_path

                model = onnx.load(str(base))
                if not any(n.output and self.output in n.output for n in model.graph.node):
                    raise RuntimeError(f"{base} has no tensor {self.output}: not the Kokoro v1.0 graph this aligner knows")
                model.graph.output.append(helper.make_tensor_value_info(self.output, TensorProto.INT64, None))
                with atomic_path(path) as tmp:
                    onnx.save(model, str(tmp))
            options = onnxruntime.SessionOptions()
            self._session = onnxruntime.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        return self._session

    def segment_phones(self, segment, table: VisemeTable) -> list[TimedPhone]:
        """Phones of one dubbed segment relative to its start, replaying KokoroVoice.synthesize."""
        from tasks.tts.voices import KokoroVoice

        style, language = kokoro_style_of(segment.voice)
        voice = KokoroVoice(language, style)
        session = self._load()
        rate = KokoroVoice.sample_rate
        phones: list[TimedPhone] = []
        cursor = 0.0
        for chunk, inputs, ends_sentence in voice.chunk_inputs(segment.text, segment.speed):
            audio, frames = session.run(["audio", self.output], inputs)
            placed, length = chunk_on_timeline(np.asarray(audio, np.float32).ravel(), rate, chunk, np.asarray(frames).ravel(),
                                               self.frame_samples / rate, table, cursor)
            phones.extend(placed)
            cursor += length + voice.pause_after(ends_sentence, segment.speed)
        return [p for p in phones if p.end > p.start]

    def align(self, audio: Path, segments, table: VisemeTable, speaker_of: dict[int, str],
              retiming: dict[int, tuple[float, tuple]] | None = None) -> Alignment:
        """`retiming`: per segment id, the tts stage's (time_scale, inserted pauses) after synthesis."""
        from tasks.media import read_wav

        samples, rate = read_wav(audio)
        env = envelope(samples.mean(axis=1), rate)
        threshold = self.silence_level * float(np.percentile(env, 95)) if env.size else 0.0
        phones, speakers = [], []
        self.scores = {}
        for segment in sorted(segments, key=lambda s: s.start):
            local = self.segment_phones(segment, table)
            if retiming and segment.id in retiming:
                local = retime(local, *retiming[segment.id])
            replayed = max((p.end for p in local), default=0.0)
            if segment.overrun <= 0 and replayed > 0 and abs(replayed - segment.duration) > self.max_length_error * segment.duration + 0.05:
                raise RuntimeError(f"segment {segment.id}: replayed speech lasts {replayed:.2f} s, the dub {segment.duration:.2f} s "
                                   "(a voice conversion that changes timing?)")
            shift, score = match_offset(local, env, segment.start, self.refine_shift_s)
            self.scores[segment.id] = score
            if np.isfinite(score) and score < self.min_match:
                raise RuntimeError(f"segment {segment.id}: replayed phones match the dub's energy poorly (r={score:.2f})")
            limit = segment.start + segment.duration
            placed = [TimedPhone(segment.start + shift + p.start, min(limit, segment.start + shift + p.end), p.symbol, p.viseme, p.word)
                      for p in local if segment.start + shift + p.start < limit]
            phones.extend(p for p in split_silent_tails(placed, env, threshold) if p.end > p.start)
            speakers.extend([speaker_of.get(segment.id, "S0")] * (len(phones) - len(speakers)))
        if self.bilabial_releases.enabled:
            phones, self.bilabial_moves = snap_bilabials(phones, samples.mean(axis=1), rate, self.bilabial_releases)
            log.info("%d of %d bilabials moved onto the dub audio's own releases", sum(m["after"] is not None for m in self.bilabial_moves),
                     len(self.bilabial_moves))
        return Alignment(phones, speakers, self.method)


class PiperAligner(KokoroAligner):
    """Durations from a Piper (VITS) voice's own duration predictor, replayed on the dub's timeline:
    the voice's graph with its per-phoneme sample counts exposed (piper's own patch,
    `add_alignment_output`, which needs `onnx`), seeded as PiperVoice seeds it by default (0), so the
    replay speaks the same audio sample for sample. VITS draws its durations at random: a voice cast
    with another seed would be replayed with other durations (the length check below may catch them).
    Only the packaged voices (`tasks.tts.voices.PIPER_MODELS`), whose names say which model; the rest
    (alignment, checks, bilabials onto the audio's releases) as for Kokoro."""

    name = "piper"
    method = "piper-durations"

    @staticmethod
    def handles(segments) -> bool:
        return bool(segments) and all(piper_model_of(s.voice) is not None for s in segments)

    @staticmethod
    def _patched(original: Path) -> Path:
        """The voice's graph with its sample counts marked as an output, written once to the model
        cache (patching in memory on every segment took 1-2 s each)."""
        from tasks.models import cache_dir

        path = cache_dir() / "piper-alignments" / f"{original.stem}-alignments.onnx"
        if not path.exists():
            import onnx
            from piper.patch_voice_with_alignment import add_alignment_output

            from tasks.artifacts import atomic_path

            model = onnx.load(str(original))
            add_alignment_output(model)
            with atomic_path(path) as tmp:
                onnx.save(model, str(tmp))
        return path

    def segment_phones(self, segment, table: VisemeTable) -> list[TimedPhone]:
        """Phones of one dubbed segment relative to its start, replaying PiperVoice.synthesize."""
        import onnxruntime
        from piper.config import SynthesisConfig
        from piper.voice import PiperVoice as Piper

        from tasks.tts.voices import PiperVoice, _espeak_lock, _piper_model_path

        voice = PiperVoice(piper_model_of(segment.voice))
        original = _piper_model_path(voice.model)
        with _espeak_lock:  # the tts stage's synthesis holds it too: phonemizer and seed are global
            onnxruntime.set_seed(int(voice.seed))  # read when the session is made, as PiperVoice does
            model = Piper.load(self._patched(original), config_path=f"{original}.json")
            base = model.config.length_scale or 1.0
            chunks = list(model.synthesize(segment.text, syn_config=SynthesisConfig(length_scale=base / segment.speed),
                                           include_alignments=True))
        phones: list[TimedPhone] = []
        cursor = 0.0
        for chunk in chunks:
            if not chunk.phoneme_alignments:
                raise RuntimeError(f"{voice.model}: the voice gave no phoneme alignments")
            # the first alignment is the sentence-start pad, the last the end pad
            first, *spoken, _ = chunk.phoneme_alignments
            samples = np.array([first.num_samples] + [a.num_samples for a in spoken], dtype=float)
            placed, length = chunk_on_timeline(chunk.audio_float_array, chunk.sample_rate, "".join(a.phoneme for a in spoken),
                                               samples, 1.0 / chunk.sample_rate, table, cursor)
            phones.extend(placed)
            cursor += length + voice.sentence_pause / segment.speed
        return [p for p in phones if p.end > p.start]


class MixedReplay(PiperAligner):
    """Kokoro's and Piper's durations in one dub (speakers voiced by different synthesizers): each
    segment replayed by its own voice's aligner, the rest as for either."""

    name = "kokoro+piper"
    method = "kokoro+piper-durations"

    @staticmethod
    def handles(segments) -> bool:
        kokoro = [KokoroAligner.handles([s]) for s in segments]
        piper = [PiperAligner.handles([s]) for s in segments]
        return any(kokoro) and any(piper) and all(k or p for k, p in zip(kokoro, piper))

    def segment_phones(self, segment, table: VisemeTable) -> list[TimedPhone]:
        replay = KokoroAligner if KokoroAligner.handles([segment]) else PiperAligner
        return replay.segment_phones(self, segment, table)


def piper_model_of(voice_name: str) -> str | None:
    """The packaged Piper model a PiperVoice's name (`piper-<model>`) says, None for any other voice."""
    from tasks.tts.voices import PIPER_MODELS

    model = voice_name.removeprefix("piper-") if voice_name.startswith("piper-") else None
    return model if model in PIPER_MODELS else None


def retime(phones: list[TimedPhone], time_scale: float, inserted: tuple[tuple[float, float], ...]) -> list[TimedPhone]:
    """Replayed phones moved as the tts stage moved the speech after synthesis: every silence it
    inserted (`at` seconds into the synthesized speech, `length` long) pushes the phones starting
    from `at` on; every silence it took out (negative `length`: `at` to `at - length` cut) pulls
    what follows and shortens the phone it was inside (one keeping its length across a cut overlaps
    the next phones, and those were lost, a bilabial among them); then every time is scaled by the
    pitch-preserving stretch `time_scale`."""
    def pushed(t: float) -> float:
        return sum(length for at, length in inserted if length >= 0 and at <= t)

    def pulled(t: float) -> float:
        return sum(max(min(t - at, -length), 0.0) for at, length in inserted if length < 0)

    out = []
    for p in phones:
        start = (p.start + pushed(p.start) - pulled(p.start)) * time_scale
        end = (p.end + pushed(p.start) - pulled(p.end)) * time_scale
        out.append(TimedPhone(start, max(start, end), p.symbol, p.viseme, p.word))
    return out


def best_offset(phones: list[TimedPhone], env: np.ndarray, start: float, max_shift_s: float) -> float:
    """Shift (s) that best lines up the phones' speech/silence pattern with the audio energy."""
    return match_offset(phones, env, start, max_shift_s)[0]


def match_offset(phones: list[TimedPhone], env: np.ndarray, start: float, max_shift_s: float) -> tuple[float, float]:
    """(shift in s, correlation there) between the phones' speech/silence pattern and the log energy."""
    if not phones or env.size == 0 or max_shift_s < 0:
        return 0.0, float("nan")
    end = max(p.end for p in phones)
    n = int(np.ceil(end * ENVELOPE_RATE)) + 1
    speech = np.zeros(n)
    for p in phones:
        if p.viseme != SILENCE:
            speech[int(p.start * ENVELOPE_RATE): int(np.ceil(p.end * ENVELOPE_RATE))] = 1.0
    loud = np.log(env + 1e-4)
    best, best_score = 0.0, -np.inf
    for k in range(-int(max_shift_s * ENVELOPE_RATE), int(max_shift_s * ENVELOPE_RATE) + 1):
        first = int(round(start * ENVELOPE_RATE)) + k
        lo = max(0, -first)
        hi = min(n, len(loud) - first)
        if hi - lo < 10:
            continue
        a, b = speech[lo:hi], loud[first + lo:first + hi]
        if a.std() == 0 or b.std() == 0:
            continue
        score = float(np.corrcoef(a, b)[0, 1])
        if score > best_score + 1e-9 or (abs(score - best_score) <= 1e-9 and abs(k) < abs(best * ENVELOPE_RATE)):
            best, best_score = k / ENVELOPE_RATE, score
    return best, (best_score if np.isfinite(best_score) else float("nan"))


class AutoAligner:
    """The synthesizer's own durations where it exposes them (Kokoro, the packaged Piper voices, or
    both, each segment by its own voice), ASR alignment otherwise. `kokoro`: the settings of every
    replay (they align the same way)."""

    def __init__(self, asr: dict | None = None, kokoro: dict | None = None):
        self.asr = AsrAligner(**(asr or {}))
        self.kokoro = KokoroAligner(**(kokoro or {}))
        self.piper = PiperAligner(**(kokoro or {}))
        self.mixed = MixedReplay(**(kokoro or {}))

    def align(self, audio: Path, segments, table: VisemeTable, speaker_of: dict[int, str],
              retiming: dict[int, tuple[float, tuple]] | None = None) -> Alignment:
        for replay in (self.kokoro, self.piper, self.mixed):
            if replay.handles(segments):
                try:
                    return replay.align(audio, segments, table, speaker_of, retiming)
                except Exception as error:  # another graph, another seed: fall back, never fail the stage
                    log.warning("%s durations unavailable (%s): aligning with ASR instead", replay.name.capitalize(), error)
        return self.asr.align(audio, segments, table, speaker_of)


def _speaker_at(t: float, segments, speaker_of: dict[int, str]) -> str:
    for s in segments:
        if s.start <= t <= s.start + max(s.duration, s.end - s.start):
            return speaker_of.get(s.id, "S0")
    return speaker_of.get(min(segments, key=lambda s: abs(s.start - t)).id, "S0") if segments else "S0"
