#!/usr/bin/env python
"""Speed of every stage, in seconds of processing per second of video, and peak memory.

Each stage's entry point runs in a fresh workspace as its own process (model loading included,
as in a real run); the total is compared with a plain ffmpeg re-encode (libx264, default preset,
AAC) of the same file, measured in the same run on the same machine.

    python scripts/benchmark.py [--video PATH] [--langs es,pt,fr]
    python scripts/benchmark.py --long [--langs es] [--keep DIR]

`--long`: a longer, many-speaker video built here from the seven clips of ../shared/media/video,
one after another (about 49 s, 1280x720, 30 fps: each clip scaled to 720 px high and centred on
black, its audio at 44.1 kHz stereo): seven people, seven cuts, one pass. Built in the temporary
workspace, never kept (the clips are third-party footage).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flows.config import compose, register_input, write_dvc_inputs  # noqa: E402
from tasks.media import ffmpeg, probe  # noqa: E402
from tasks.stage import PER_LANGUAGE, STAGES  # noqa: E402

SHARED_VIDEO = ROOT.parent / "shared" / "media" / "video"
DEFAULT_VIDEO = SHARED_VIDEO / "frontal_man_suit.mp4"
LONG_CLIPS = ("frontal_man_suit", "frontal_man_map", "frontal_woman_flag", "frontal_woman_glasses",
              "head_turns_woman", "backlit_webcam", "stage_mic_cuts")


def long_video(target: Path, folder: Path = SHARED_VIDEO, width: int = 1280, height: int = 720, fps: int = 30) -> Path:
    """The `LONG_CLIPS` of `folder` one after another as one video (see the module's --long)."""
    from tasks.media import run_ffmpeg

    clips = [folder / f"{name}.mp4" for name in LONG_CLIPS]
    missing = [str(c) for c in clips if not c.exists()]
    if missing:
        raise SystemExit(f"--long needs the real clips of ../shared/media/video; missing: {', '.join(missing)}")
    graph = "".join(f"[{i}:v]scale=-2:{height},pad={width}:{height}:(ow-iw)/2:0,setsar=1,fps={fps},setpts=PTS-STARTPTS[v{i}];"
                    f"[{i}:a]aresample=44100,aformat=channel_layouts=stereo,asetpts=PTS-STARTPTS[a{i}];" for i in range(len(clips)))
    graph += "".join(f"[v{i}][a{i}]" for i in range(len(clips))) + f"concat=n={len(clips)}:v=1:a=1[v][a]"
    inputs = [arg for clip in clips for arg in ("-i", str(clip))]
    run_ffmpeg(*inputs, "-filter_complex", graph, "-map", "[v]", "-map", "[a]", "-r", str(fps), "-c:v", "libx264",
               "-crf", "18", "-c:a", "aac", "-b:a", "160k", "-movflags", "+faststart", str(target))
    return target


def timed(command: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak resident memory (MiB) of one child process."""
    # the child's log goes to a file: through a pipe nobody reads before the child ends, a long
    # video's progress bars filled it and the child blocked writing (the reference stage on 3 min)
    with tempfile.TemporaryFile(mode="w+") as log:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=log, text=True)
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            log.seek(0)
            raise SystemExit(f"{' '.join(command)} failed:\n{log.read()[-2000:]}")
    return elapsed, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO if DEFAULT_VIDEO.exists() else ROOT / "demo" / "astronaut_talk.mp4")
    parser.add_argument("--langs", default="es,pt,fr", help="comma-separated target languages (the README table: es,pt,fr)")
    parser.add_argument("--long", action="store_true", help="the seven real clips one after another as the video (see above)")
    parser.add_argument("--keep", type=Path, help="a new folder to hold the run's workspace (outputs and reports) afterwards")
    args = parser.parse_args()
    langs = args.langs.split(",")
    if args.keep and args.keep.exists():
        raise SystemExit(f"--keep {args.keep}: the folder exists; name a new one")
    with tempfile.TemporaryDirectory(prefix="dub-bench-") as folder:
        workspace = Path(folder)
        if args.long:
            args.video = long_video(workspace / "seven_speakers.mp4")
        source = probe(args.video)
        config = compose([f"input={args.video.resolve()}", f"langs=[{args.langs}]"])
        video = register_input(args.video.resolve(), workspace)
        write_dvc_inputs(config, workspace)
        baseline, baseline_mem = timed([ffmpeg(), "-nostdin", "-y", "-loglevel", "error", "-i", str(args.video),
                                        "-c:v", "libx264", "-c:a", "aac", str(workspace / "reencode.mp4")], workspace)
        rows = []
        for stage in STAGES:
            for lang in langs if stage in PER_LANGUAGE else [None]:
                command = [sys.executable, "-m", f"tasks.{stage}", "--video", video] + (["--lang", lang] if lang else [])
                seconds, memory = timed(command, workspace)
                rows.append((stage if lang is None else f"{stage} ({lang})", seconds, memory))
        quality = {lang: json.loads((workspace / "data" / "evaluate" / video / lang / "report.json").read_text()) for lang in langs}
        if args.keep:
            shutil.copytree(workspace, args.keep, symlinks=True)
    total = sum(seconds for _, seconds, _ in rows)
    print(f"video: {args.video.name}, {source.width}x{source.height}, {source.frames} frames, {source.duration:.2f} s; "
          f"langs: {', '.join(langs)}; {os.cpu_count()} cores, {platform.processor() or platform.machine()}")
    print("| stage | seconds | s per s of video | peak memory (MiB) |\n|---|---:|---:|---:|")
    for name, seconds, memory in rows:
        print(f"| {name} | {seconds:.2f} | {seconds / source.duration:.3f} | {memory:.0f} |")
    print(f"| **total** | {total:.2f} | {total / source.duration:.3f} | {max(m for _, _, m in rows):.0f} |")
    print(f"| ffmpeg re-encode (libx264 + AAC) | {baseline:.2f} | {baseline / source.duration:.3f} | {baseline_mem:.0f} |")
    print(f"\ntotal / ffmpeg re-encode = {total / baseline:.1f}x; {total / source.duration / len(langs):.2f} minutes of "
          f"processing per minute of video and language")
    print("\n| lang | heard as | WER of re-transcribed dub | max speed-up | overrun (s) |\n|---|---|---:|---:|---:|")
    for lang, report in quality.items():
        extra = report["extra"]
        print(f"| {lang} | {report['detected_language']} ({report['detected_language_probability']:.2f}) | "
              f"{100 * report['wer']:.1f}% | {extra.get('max_speed', 1):.2f} | {extra.get('overrun_total_s', 0):.2f} |")


if __name__ == "__main__":
    main()
