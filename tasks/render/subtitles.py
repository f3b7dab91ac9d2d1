"""The dub's subtitles: each voiced segment's text at the time it is heard, as SRT.

Lines are wrapped at `width` characters (about 42 is the broadcast convention for a subtitle line);
a segment that runs past the end of the video is cut there, and one that starts after it is dropped.
"""
from __future__ import annotations

import textwrap
from typing import Sequence


def timestamp(seconds: float) -> str:
    """SRT time: HH:MM:SS,mmm."""
    millis = max(0, int(round(seconds * 1000)))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d},{millis:03d}"


def srt(segments: Sequence, duration: float | None = None, width: int = 42) -> str:
    """SRT of `segments` (anything with start, end and text, e.g. DubbedSegment), in time order."""
    blocks = []
    for segment in sorted(segments, key=lambda s: (s.start, s.end)):
        text = " ".join(str(segment.text).split())
        end = segment.end if duration is None else min(segment.end, duration)
        if not text or end <= segment.start:
            continue
        lines = "\n".join(textwrap.wrap(text, width=width, break_long_words=False))
        blocks.append(f"{len(blocks) + 1}\n{timestamp(segment.start)} --> {timestamp(end)}\n{lines}\n")
    return "\n".join(blocks)
