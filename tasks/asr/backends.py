"""Speech recognition backends."""
from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from tasks.artifacts import Segment, Transcript, Word
from tasks.models import resolve


class FasterWhisper:
    """Whisper in CTranslate2 (faster-whisper): a named packaged model or a model folder."""

    def __init__(self, model: str = "whisper-base", compute_type: str = "int8", beam_size: int = 5,
                 cpu_threads: int = 0, vad_filter: bool = False, language: str | None = None,
                 progress: bool = True):
        self.model_name = model
        self.name = f"faster-whisper:{model}"
        self.compute_type = compute_type
        self.beam_size = beam_size
        self.cpu_threads = cpu_threads
        self.vad_filter = vad_filter
        self.language = language
        self.progress = progress
        self._model = None

    def _load(self):
        if self._model is None:
            from faster_whisper import WhisperModel

            self._model = WhisperModel(resolve(self.model_name), device="cpu",
                                       compute_type=self.compute_type, cpu_threads=self.cpu_threads)
        return self._model

    def transcribe(self, audio: Path, language: str | None = None) -> Transcript:
        segments, info = self._load().transcribe(
            str(audio), language=language or self.language, beam_size=self.beam_size,
            word_timestamps=True, vad_filter=self.vad_filter, condition_on_previous_text=False,
        )
        found = []
        with tqdm(total=round(info.duration, 1), unit="s", desc="asr", disable=not self.progress,
                  bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} s audio") as bar:
            for index, segment in enumerate(segments):
                words = tuple(Word(round(w.start, 3), round(w.end, 3), w.word.strip(), round(w.probability, 3))
                              for w in (segment.words or ()))
                if segment.text.strip():
                    found.append(Segment(index, round(segment.start, 3), round(segment.end, 3),
                                         segment.text.strip(), words=words))
                bar.update(min(segment.end, info.duration) - bar.n)
        return Transcript(info.language, round(info.language_probability, 4), tuple(found), model=self.name)
