"""visemes.png: the mouth curves of each speaker over the waveform, with phoneme labels."""
from __future__ import annotations

from pathlib import Path

import numpy as np

COLORS = {"jaw": "tab:blue", "width": "tab:green", "round": "tab:purple", "gap": "tab:red", "measured": "black"}


def plot(path: Path, samples: np.ndarray, rate: int, fps: float, speakers: list[tuple[str, dict[str, np.ndarray]]],
         phones: list, title: str = "", measured: np.ndarray | None = None, max_seconds: float | None = None) -> Path:
    """`speakers`: (name, {param: per-frame 0..1}); `phones`: objects with start/end/phone/viseme."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    duration = len(samples) / rate
    if max_seconds:
        duration = min(duration, max_seconds)
        samples = samples[:int(duration * rate) + 1]
        speakers = [(name, {k: np.asarray(v)[:int(duration * fps) + 2] for k, v in params.items()}) for name, params in speakers]
        measured = None if measured is None else np.asarray(measured)[:int(duration * fps) + 2]
    rows = 1 + len(speakers)
    fig, axes = plt.subplots(rows, 1, figsize=(max(10, 2.2 * duration), 1.8 + 2.2 * len(speakers)), sharex=True, squeeze=False)
    axes = axes[:, 0]
    if max_seconds and len(samples) / rate >= max_seconds:
        title = f"{title} (the first {max_seconds:g} s)" if title else f"the first {max_seconds:g} s"
    step = max(1, len(samples) // 20000)
    t = np.arange(0, len(samples), step) / rate
    axes[0].plot(t, samples[::step], color="0.5", linewidth=0.5)
    axes[0].set_ylabel("voice")
    axes[0].set_title(title)
    for p in phones:
        if p.start > duration:
            break
        label = getattr(p, "phone", getattr(p, "symbol", ""))
        if getattr(p, "viseme", "") == "sil":
            continue
        for ax in axes:
            ax.axvline(p.start, color="0.85", linewidth=0.4, zorder=0)
        axes[0].text(0.5 * (p.start + p.end), 0.92, label, transform=axes[0].get_xaxis_transform(), ha="center", fontsize=7,
                     color="darkred" if p.viseme == "PP" else "black")
        axes[0].text(0.5 * (p.start + p.end), 0.03, p.viseme, transform=axes[0].get_xaxis_transform(), ha="center", fontsize=5, color="0.3")
    for ax, (name, params) in zip(axes[1:], speakers):
        frames = len(next(iter(params.values())))
        ft = np.arange(frames) / fps
        for param, curve in params.items():
            ax.plot(ft, curve, color=COLORS.get(param), label=param, linewidth=1.2, drawstyle="default")
        if measured is not None:
            m = np.asarray(measured, dtype=float)
            finite = np.isfinite(m)
            if finite.any():
                lo, hi = np.nanpercentile(m, 5), np.nanpercentile(m, 95)
                ax.plot(np.arange(len(m)) / fps, (m - lo) / max(hi - lo, 1e-6), color="black", linestyle="--",
                        linewidth=1.0, label="measured lip gap")
        ax.set_ylim(-0.05, 1.1)
        ax.set_ylabel(f"{name}\n0..1 of range")
        ax.legend(loc="upper right", fontsize=7, ncol=5)
    axes[-1].set_xlabel("seconds")
    axes[-1].set_xlim(0, duration)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
