"""evaluate: measure the dubbed result without a human.

Speech: the dubbed track is re-transcribed by the project's recogniser and compared with the
translated text (word error rate), and the detected language is recorded. Timing: how far each
voiced segment drifts from its original slot.
"""
from __future__ import annotations

import re
import unicodedata

from tasks.artifacts import DubbedSpeech

_PUNCTUATION = re.compile(r"[^\w\s']|_", re.UNICODE)


def normalise(text: str) -> str:
    """Lower-case, unify Unicode forms, drop punctuation: what WER should not count."""
    text = unicodedata.normalize("NFC", text).lower().replace("’", "'")
    return " ".join(_PUNCTUATION.sub(" ", text).split())


def word_error_rate(reference: str, hypothesis: str) -> float:
    import jiwer

    reference, hypothesis = normalise(reference), normalise(hypothesis)
    if not reference:
        return 0.0 if not hypothesis else 1.0
    return float(jiwer.wer(reference, hypothesis))


def timing_report(speech: DubbedSpeech, original_ends: dict[int, float] | None = None) -> dict[str, float]:
    """Speed-ups, cuts, and how far each dubbed segment ends from where the original one did."""
    rows = speech.segments
    if not rows:
        return {"segments": 0.0}
    overruns = [r.overrun for r in rows]
    drift = [abs(r.end - original_ends[r.id]) for r in rows if original_ends and r.id in original_ends]
    ends = {"ends_within_300ms": round(sum(d <= 0.3 for d in drift) / len(drift), 3),
            "mean_end_drift_s": round(sum(drift) / len(drift), 3)} if drift else {}
    return {**ends,
        "segments": float(len(rows)),
        "mean_speed": round(sum(r.speed for r in rows) / len(rows), 3),
        "max_speed": round(max(r.speed for r in rows), 3),
        "overrun_total_s": round(sum(overruns), 3),
        "segments_overrun": float(sum(1 for o in overruns if o > 0)),
    }
