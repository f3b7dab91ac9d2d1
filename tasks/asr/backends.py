"""Speech recognition backends."""
from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from tasks.artifacts import Segment, Transcript, Word
from tasks.models import resolve

log = logging.getLogger("dub.asr")
SAMPLE_RATE = 16_000  # what Whisper hears


class FasterWhisper:
    """Whisper in CTranslate2 (faster-whisper): a named packaged model or a model folder."""

    def __init__(self, model: str = "whisper-base", compute_type: str = "int8", beam_size: int = 5,
                 cpu_threads: int = 0, vad_filter: bool = False, language: str | None = None,
                 progress: bool = True, recover: dict | None = None):
        self.model_name = model
        self.name = f"faster-whisper:{model}"
        self.compute_type = compute_type
        self.beam_size = beam_size
        self.cpu_threads = cpu_threads
        self.vad_filter = vad_filter
        self.language = language
        self.progress = progress
        self.recover = dict(recover or {})
        self._model = None

    def _load(self):
        if self._model is None:
            from faster_whisper import WhisperModel

            self._model = WhisperModel(resolve(self.model_name), device="cpu",
                                       compute_type=self.compute_type, cpu_threads=self.cpu_threads)
        return self._model

    def transcribe(self, audio: Path, language: str | None = None) -> Transcript:
        # the recovery pass reads the same samples: decoded once here (as faster-whisper decodes a path)
        samples = self._decode(audio) if self.recover.get("enabled") else None
        segments, info = self._load().transcribe(
            str(audio) if samples is None else samples, language=language or self.language, beam_size=self.beam_size,
            word_timestamps=True, vad_filter=self.vad_filter, condition_on_previous_text=False,
        )
        found = []
        with tqdm(total=round(info.duration, 1), unit="s", desc="asr", disable=not self.progress,
                  bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} s audio") as bar:
            for segment in segments:
                found.extend(self._segments([segment]))
                bar.update(min(segment.end, info.duration) - bar.n)
        if self.recover.get("enabled"):
            found += self._recovered(samples, tuple(found), info.language, info.duration)
        found.sort(key=lambda s: s.start)
        found = [replace(segment, id=index) for index, segment in enumerate(found)]
        return Transcript(info.language, round(info.language_probability, 4), tuple(found), model=self.name)

    @staticmethod
    def _segments(segments, offset: float = 0.0) -> list[Segment]:
        out = []
        for segment in segments:
            words = tuple(Word(round(w.start + offset, 3), round(w.end + offset, 3), w.word.strip(), round(w.probability, 3))
                          for w in (segment.words or ()))
            if segment.text.strip():
                out.append(Segment(0, round(segment.start + offset, 3), round(segment.end + offset, 3),
                                   segment.text.strip(), words=words))
        return out

    @staticmethod
    def _decode(audio: Path):
        from faster_whisper.audio import decode_audio

        return decode_audio(str(audio), sampling_rate=SAMPLE_RATE)

    @staticmethod
    def _voice(samples, threshold: float, min_silence_ms: int, pad_ms: int) -> list[tuple[float, float]]:
        """(start, end) seconds of speech in `samples` (16 kHz) by Silero VAD (the model inside the
        faster-whisper wheel): pauses shorter than `min_silence_ms` joined, `pad_ms` either side."""
        from faster_whisper.vad import VadOptions, get_speech_timestamps

        spans = get_speech_timestamps(samples, VadOptions(threshold=threshold, min_silence_duration_ms=min_silence_ms,
                                                          speech_pad_ms=pad_ms))
        return [(span["start"] / SAMPLE_RATE, span["end"] / SAMPLE_RATE) for span in spans]

    def speech(self, audio: Path, threshold: float = 0.5) -> list[tuple[float, float]]:
        """The speech in `audio`, split at pauses of 0.1 s: fine enough to place a segment's first and
        last words."""
        return self._voice(self._decode(audio), threshold, min_silence_ms=100, pad_ms=30)

    def _recovered(self, samples, found: tuple[Segment, ...], language: str, duration: float) -> list[Segment]:
        """Speech no segment covers (`uncovered_speech`, Silero VAD from the faster-whisper wheel),
        each stretch of `samples` (the audio at 16 kHz) transcribed alone in the language already detected."""
        from tasks.asr import uncovered_speech

        rate = SAMPLE_RATE
        speech = self._voice(samples, float(self.recover.get("vad_threshold", 0.5)), min_silence_ms=500, pad_ms=100)
        stretches = uncovered_speech(found, speech, duration, float(self.recover.get("min_gap_s", 2.0)),
                                     float(self.recover.get("min_speech_s", 1.0)))
        added = []
        for start, end in stretches:
            segments, _ = self._load().transcribe(
                samples[int(start * rate):int(end * rate)], language=language, beam_size=self.beam_size,
                word_timestamps=True, vad_filter=False, condition_on_previous_text=False)
            heard = self._segments(segments, start)
            log.info("asr: %.1f-%.1f s had speech but no text; heard alone: %s", start, end,
                     " ".join(s.text for s in heard)[:80] or "nothing")
            added += heard
        return added
