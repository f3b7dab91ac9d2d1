"""lipsync.png: the lips the measure read, source over dub, with the phones it scored them on.

One panel per video: the inner-lip gap per frame, the closed threshold, every bilabial the measure
counted (green: the lips closed within a frame of it; red: they did not) and the open vowels
(blue); on the dub's panel, the dub's own bilabial releases where the synthesizer timed its phones
(purple). Where a closure figure is low, this says which words and frames to look at."""
from __future__ import annotations

from pathlib import Path

import numpy as np

HIT, MISS, OPEN, RELEASE = "tab:green", "tab:red", "tab:blue", "tab:purple"


def plot_lipsync(path: Path, panels: list[tuple[str, object, object]], releases: dict | None = None) -> Path:
    """`panels`: (title, MouthTrack, LipSyncScores) each; the scores' `extra` carries the phones
    (`bilabial_hits`, `open_vowel_spans`) and the `closed_threshold`. `releases`: the dub's own
    bilabial releases and the lips' delay after them (`tasks.evaluate.lipsync.release_offsets`),
    drawn on the last panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    duration = max((mouth.frames / mouth.fps for _, mouth, _ in panels), default=0.0) or 1.0  # no frames: an empty axis
    fig, axes = plt.subplots(len(panels), 1, figsize=(max(10.0, 1.6 * duration), 2.4 * len(panels)), sharex=True,
                             squeeze=False)
    for axis, (title, mouth, scores) in zip(axes[:, 0], panels):
        extra = scores.extra
        times = np.arange(mouth.frames) / mouth.fps
        axis.plot(times, mouth.opening, color="black", linewidth=1.0, label="lip gap")
        threshold = extra.get("closed_threshold")
        if threshold is not None and np.isfinite(threshold):
            axis.axhline(threshold, color="0.5", linestyle="--", linewidth=0.8, label="closed")
        for start, end in extra.get("open_vowel_spans", []):
            axis.axvspan(start, end, color=OPEN, alpha=0.12, linewidth=0)
        for start, end, hit in extra.get("bilabial_hits", []):
            axis.axvspan(start, end, color=HIT if hit else MISS, alpha=0.35, linewidth=0)
        axis.set_ylabel("gap / eyes")
        axis.set_title(f"{title}: closure excess {_text(scores.closure_excess)} "
                       f"({_count(extra.get('bilabial_hits', []))} bilabials closed), "
                       f"aperture contrast {_text(scores.aperture_contrast)}", fontsize=9)
        axis.set_xlim(0, duration)
    legend = "seconds (green / red: bilabial closed / not; blue: open vowel)"
    if releases:
        axis = axes[-1, 0]
        for at in releases["times_s"]:
            axis.axvline(at, color=RELEASE, linewidth=1.6)
        offset = releases["offset_ms"]
        axis.set_title(f"{axis.get_title()}; lips reopen {'-' if offset is None else f'{offset:+d} ms'} after the "
                       f"dub's releases ({len(releases['offsets_ms'])} of {releases['releases']} seen)", fontsize=9)
        legend += "; purple: the dub's own /p b m/ releases"
    axes[-1, 0].set_xlabel(legend)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def plot_switched_off(path: Path) -> Path:
    """The figure's place when the lip-sync measure is switched off (it is a DVC output)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(6, 1))
    fig.text(0.5, 0.5, "lip-sync measure switched off (evaluate.lipsync: false)", ha="center", va="center")
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def _text(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def _count(hits: list) -> str:
    return f"{sum(1 for *_, hit in hits if hit)} of {len(hits)}"
