"""Validate the lip-sync measures (issue 6) on the real clips in ../shared/media/video.

Per clip: the original video with its own audio, the same audio delayed by 0.5 s, and the next
clip's audio (trimmed or zero-padded to the same length). A measure is trusted only where own
audio scores clearly above both. Prints a markdown table; writes JSON.

    python scripts/lipsync_validate.py [--media ../shared/media/video] [--out /tmp/lipsync_validation.json]
           [--clips frontal_man_suit frontal_man_map ...] [--shift 0.5]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

DEFAULT_CLIPS = ["frontal_man_suit", "frontal_man_map", "frontal_woman_flag", "frontal_woman_glasses",
                 "head_turns_woman", "backlit_webcam", "stage_mic_cuts"]
MEASURES = ("closure_rate", "closure_chance", "closure_excess", "aperture_contrast", "sync_confidence", "sync_offset_ms")


def fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.0f}" if abs(value) >= 10 else f"{value:.2f}"
    return str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--media", default=os.environ.get("DUB_SHARED_MEDIA", str(PROJECT.parent / "shared" / "media")) + "/video")
    parser.add_argument("--clips", nargs="*", default=DEFAULT_CLIPS)
    parser.add_argument("--shift", type=float, default=0.5)
    parser.add_argument("--language", default="en")
    parser.add_argument("--smoothed", action="store_true", help="use the face stage's smoothed landmarks")
    parser.add_argument("--out", default="/tmp/lipsync_validation.json")
    args = parser.parse_args()

    from tasks.evaluate.lipsync import fit_length, load_audio, mouth_track, score, shift_audio
    from tasks.visemes.align import AsrAligner

    media = Path(args.media)
    clips = [c for c in args.clips if (media / f"{c}.mp4").exists()]
    if len(clips) < 2:
        sys.exit(f"need at least two clips in {media}")
    audio = {c: load_audio(media / f"{c}.mp4") for c in clips}
    aligner = AsrAligner()
    rows = []
    for i, clip in enumerate(clips):
        started = time.perf_counter()
        mouth = mouth_track(media / f"{clip}.mp4", smoothed=args.smoothed)
        length = int(round(mouth.frames / mouth.fps * 16_000))
        own = fit_length(audio[clip], max(length, len(audio[clip])))
        other = clips[(i + 1) % len(clips)]
        variants = {"own": own, f"shift{args.shift:+.1f}s": shift_audio(own, 16_000, args.shift),
                    f"swap:{other}": fit_length(audio[other], len(own))}
        for name, samples in variants.items():
            result = score(mouth, samples, 16_000, args.language, aligner=aligner)
            row = {"clip": clip, "audio": name, **result.as_dict()}
            rows.append(row)
            print(f"{clip:24s} {name:28s} " + " ".join(f"{m}={fmt(row[m])}" for m in MEASURES), file=sys.stderr, flush=True)
        rows[-1]["clip_seconds"] = rows[-2]["clip_seconds"] = rows[-3]["clip_seconds"] = round(time.perf_counter() - started, 1)

    print("| clip | audio | closure rate (chance) | closure excess | bilabials | aperture contrast | open vowels | LSE-C-like conf | offset ms | best corr | face cov | s/clip |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['clip']} | {r['audio']} | {fmt(r['closure_rate'])} ({fmt(r['closure_chance'])}) | {fmt(r['closure_excess'])} | {r['closures']} | "
              f"{fmt(r['aperture_contrast'])} | {r['open_vowels']} | {fmt(r['sync_confidence'])} | {fmt(r['sync_offset_ms'])} | "
              f"{fmt(r['sync_correlation'])} | {fmt(r['face_coverage'])} | {r['clip_seconds']} |")
    # separation: own above both mismatched variants, per measure
    print()
    print("| measure | clips where own > shifted and own > swapped | mean own | mean shifted | mean swapped |")
    print("|---|---|---|---|---|")
    import numpy as np

    summary = {}
    for m in ("closure_rate", "closure_excess", "aperture_contrast", "sync_confidence"):
        wins, values = 0, {"own": [], "shift": [], "swap": []}
        for clip in clips:
            trio = [r for r in rows if r["clip"] == clip]
            own, shifted, swapped = (r[m] for r in trio)
            for key, v in zip(("own", "shift", "swap"), (own, shifted, swapped)):
                if v is not None:
                    values[key].append(v)
            if None not in (own, shifted, swapped) and own > shifted and own > swapped:
                wins += 1
        means = {k: (float(np.mean(v)) if v else None) for k, v in values.items()}
        summary[m] = {"wins": wins, "clips": len(clips), **means}
        print(f"| {m} | {wins}/{len(clips)} | {fmt(means['own'])} | {fmt(means['shift'])} | {fmt(means['swap'])} |")
    print()
    keys = ("closure_excess", "aperture_contrast", "sync_confidence")
    print("| clip | " + " | ".join(f"{k}: own - max(shifted, swapped)" for k in keys) + " |")
    print("|---|" + "---|" * len(keys))
    margins = {}
    for clip in clips:
        trio = [r for r in rows if r["clip"] == clip]
        cells = []
        for k in keys:
            own, shifted, swapped = (r[k] for r in trio)
            if None in (own, shifted, swapped):
                cells.append("-")
                continue
            margin = own - max(shifted, swapped)
            margins.setdefault(clip, {})[k] = round(margin, 4)
            cells.append(f"{margin:+.2f} {'yes' if margin > 0 else 'NO'}")
        print(f"| {clip} | " + " | ".join(cells) + " |")
    Path(args.out).write_text(json.dumps({"rows": rows, "summary": summary, "margins": margins}, indent=2) + "\n")
    print(f"\nJSON: {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
