"""The lipsync stage's `report.json`: typed, versioned, written atomically (the stage's own artifact)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tasks import artifacts

LIPSYNC_SCHEMA = 1
REASONS = ("not_speaking", "turned", "small", "occluded", "no_exemplar")


@dataclass(frozen=True)
class TrackReport:
    track: int
    speaker: str
    bank_size: int
    frames_present: int
    frames_edited: int
    untouched: dict[str, int]             # reason -> frames left as they were (REASONS)
    partly_occluded: int = 0              # edited frames where an occluder was kept in front
    exemplar_switches: int = 0            # frames whose exemplar is not the previous one's successor or itself
    mean_target_error: float = 0.0        # |target - chosen exemplar| in 0..1 units, before landmark adjustment
    torn_frames: int = 0                  # edited frames whose lips were opened beyond the exemplar's by more than
                                          # 0.02 inter-ocular (a band of its stretched midline shows between them)
    mean_tear: float = 0.0                # mean opening beyond the exemplar's, inter-ocular units
    inner_mouths_lent: int = 0            # edited frames whose inner mouth (teeth, cavity) came from a wider exemplar
    held_at_rest: int = 0                 # edited frames where the person speaks in the source and their dub is
                                          # silent: the mouth rests closed there instead of talking without a sound


@dataclass(frozen=True)
class LipsyncMetrics:
    psnr_outside_min: float               # dB, frame outside the edited region vs the source (99 = identical)
    psnr_outside_mean: float
    psnr_frame_min: float                 # whole frame, for reference
    edited_area: float                    # mean share of the frame inside the edited region, edited frames
    boundary_gradient: float              # mean gradient magnitude in the blend band, output
    boundary_gradient_source: float       # same pixels in the source
    boundary_gradient_ratio: float        # output / source: 1 means no seam added
    flicker: float                        # mean |frame-to-frame change| of the edited skin's mean luma (lips excluded), output
    flicker_source: float                 # same region in the source
    flicker_ratio: float
    edit_flicker: float                   # mean |frame-to-frame change| of (output - source) skin luma: the edit's own flicker
    fps: float                            # output frames per second, whole stage (decode, bank, render, encode)
    seconds: float
    edit_ms_per_face: float = 0.0         # render + blend time of one face in one frame (ms)
    detail_ratio: float = 1.0             # fine detail of the replaced lower face (`core.detail`), output / the
                                          # source's same pixels, edited frames: below 1, the new mouth is blurred
    lips_flicker: float = 0.0             # mean |frame-to-frame change| of the lips' mean luma, output (at the new
    lips_flicker_source: float = 0.0      # lips' landmarks) and source (at its own, dlib's: their jitter adds to it)
    lips_flicker_ratio: float = 1.0


@dataclass(frozen=True)
class LipsyncReport:
    video: str
    language: str
    generator: str
    width: int
    height: int
    fps: float
    frames: int
    frames_edited: int                    # frames in which any face was changed
    codec: str
    tracks: tuple[TrackReport, ...]
    unmatched_speakers: tuple[str, ...]   # visemes speakers with no face track (nothing edited for them)
    metrics: LipsyncMetrics
    config: dict = field(default_factory=dict)


def write(path: Path | str, report: LipsyncReport) -> Path:
    return artifacts.write(path, report, LIPSYNC_SCHEMA)


def read(path: Path | str) -> LipsyncReport:
    return artifacts.read(path, LipsyncReport, LIPSYNC_SCHEMA)
