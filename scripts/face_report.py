"""Measure the face stage on real media: tracks per clip, continuity, speakers, jitter, throughput.

    python scripts/face_report.py [--media ../shared/media] [--clips a.mp4 b.mp4] [--json out.json]

Media is used by path and never copied. Each clip's whole audio is one speech segment (speaker S0);
the side-by-side composite gets its true speaker turns (its audio alternates between the clips).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tasks.face.geometry import mouth_jitter  # noqa: E402
from tasks.face.pipeline import FaceOptions, analyze, continuity, read_frames  # noqa: E402

# people on screen for more than a second, counted by eye on frames extracted with ffmpeg.
# stage_mic_cuts (4 shots, cuts at frames 20, 82, 211): the performer (shot 1, small and full
# length, and shot 3), a curly-haired man in profile (shot 2, 2 s), and in the audience shot four
# faces larger than the configured smallest face (15% of the frame height): the Obamas, the woman
# on their left (3/4 view) and the young man behind her. Blurred background faces in shot 2 and
# the backs of heads in the foreground are not counted (smaller than that, or no face visible).
EXPECTED = {"frontal_man_suit": 1, "frontal_man_map": 1, "frontal_woman_flag": 1, "frontal_woman_glasses": 1,
            "head_turns_woman": 1, "backlit_webcam": 1, "stage_mic_cuts": 6}


def video_info(path: Path) -> tuple[float, int]:
    import cv2

    capture = cv2.VideoCapture(str(path))
    fps, frames = capture.get(cv2.CAP_PROP_FPS), int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    capture.release()
    return fps, frames


def audio_of(path: Path, folder: Path) -> tuple[np.ndarray, int]:
    from tasks.media import extract_audio, read_wav

    target = folder / f"{path.stem}.wav"
    extract_audio(path, target, 16000, 1)
    return read_wav(target)


def configured(detector: str | None = None):
    """The backend and options of conf/face/dlib.yaml (the default), optionally with another detector."""
    import yaml

    from tasks.face.__main__ import build_backend, options_from

    config = yaml.safe_load((Path(__file__).resolve().parent.parent / "conf" / "face" / "dlib.yaml").read_text())
    if detector:
        config["backend"]["detector"] = detector
    return build_backend(config), options_from(config)


def run_clip(path: Path, folder: Path, segments=None, options: FaceOptions | None = None, backend=None) -> dict:
    fps, total = video_info(path)
    audio = audio_of(path, folder)
    duration = len(audio[0]) / audio[1]
    segments = segments or [(0, 0.0, duration, "S0")]
    if backend is None or options is None:
        default_backend, default_options = configured()
        backend, options = backend or default_backend, options or default_options
    cpu = time.process_time()
    result = analyze(read_frames(str(path)), backend, options, fps, total=total,
                     segments=segments, audio=audio, progress=False)
    cpu = time.process_time() - cpu
    tracks = result.track_ids()
    report = {"clip": path.stem, "size": f"{result.width}x{result.height}", "frames": result.frames,
              "fps_analysis": round(result.analysis_fps, 1), "fps_cpu": round(result.frames / max(cpu, 1e-6), 1),
              "tracks": len(tracks), "cuts": result.cuts,
              "speakers": result.speakers, "speaker_scores": result.speaker_scores, "segments": result.segments}
    report["continuity"] = {t: {k: round(float(v), 3) for k, v in continuity(result, t).items()} for t in tracks}
    jitters = {}
    for t in tracks:
        sel = np.flatnonzero(result.track == t)
        frames = result.frame[sel]
        runs = np.split(sel, np.flatnonzero(np.diff(frames) != 1) + 1)
        longest = max(runs, key=len)
        if len(longest) >= 10:
            jitters[t] = {k: round(v, 4) for k, v in mouth_jitter(result.landmarks[longest]).items()}
            raw = mouth_jitter(result.landmarks_raw[longest])
            jitters[t]["raw_jitter_px"] = round(raw["jitter_px"], 4)
            jitters[t]["raw_jitter_iod"] = round(raw["jitter_iod"], 5)
    report["jitter"] = jitters
    report["occluded_share"] = {t: round(float((result.occluder[result.track == t] != 0).mean()), 3) for t in tracks}
    report["_result"] = result
    return report


def noisy_still(image_path: Path, frames: int = 40, sigma: float = 4.0, seed: int = 0):
    """A still portrait with sensor-like noise: Gaussian read noise plus shot noise, new every frame."""
    import cv2

    image = cv2.imread(str(image_path)).astype(np.float32)
    rng = np.random.default_rng(seed)
    for i in range(frames):
        shot = rng.normal(0, 1, image.shape) * np.sqrt(np.maximum(image, 0) / 16.0)
        noisy = image + rng.normal(0, sigma, image.shape) + shot
        yield i / 25.0, np.clip(noisy, 0, 255).astype(np.uint8)


def still_jitter(image_path: Path, frames: int = 40) -> dict:
    backend, options = configured()
    options.min_track_s = 0.5
    result = analyze(noisy_still(image_path, frames), backend, options, 25.0, progress=False)
    t = result.track_ids()[0]
    sel = result.track == t
    smooth = mouth_jitter(result.landmarks[sel])
    raw = mouth_jitter(result.landmarks_raw[sel])
    return {"image": image_path.name, "frames": int(sel.sum()), "iod_px": round(smooth["iod_px"], 1),
            **{k: round(smooth[k], 5) for k in ("jitter_px", "jitter_iod", "displacement_px", "displacement_iod")},
            **{f"raw_{k}": round(raw[k], 5) for k in ("jitter_px", "jitter_iod", "displacement_px", "displacement_iod")}}


def fitted(video: Path, width: int, height: int, target: Path) -> Path:
    """The clip scaled to fit width x height and padded to exactly that size (one face, same motion)."""
    from tasks.media import run_ffmpeg

    graph = (f"scale={width}:{height}:force_original_aspect_ratio=decrease,"
             f"pad={width}:{height}:(ow-iw)/2:(oh-ih)/2")
    run_ffmpeg("-i", str(video), "-vf", graph, "-c:v", "libx264", "-preset", "veryfast", "-crf", "18",
               "-c:a", "copy", str(target))
    return target


def throughput(video: Path, folder: Path, sizes=((700, 700), (1280, 720))) -> list[dict]:
    """Frames per second of the whole analysis (decoding included) at each size: wall clock, and
    per CPU second of this process (the wall figure suffers when other work shares the cores)."""
    rows = []
    for width, height in sizes:
        clip = fitted(video, width, height, folder / f"bench_{width}x{height}.mp4")
        report = run_clip(clip, folder)
        rows.append({"size": f"{width}x{height}", "frames": report["frames"], "tracks": report["tracks"],
                     "fps_wall": report["fps_analysis"], "fps_cpu": report["fps_cpu"]})
    return rows


def side_by_side(left: Path, right: Path, target: Path, height: int = 360, seconds: float = 5.0,
                 fps: int = 25) -> tuple[Path, list[tuple[int, float, float, str]]]:
    """hstack two clips (scaled to one height); the audio is the left clip's for the first half and
    the right clip's for the second. Returns the file and its true speaker turns."""
    from tasks.media import run_ffmpeg

    half = seconds / 2
    graph = (f"[0:v]scale=-2:{height},fps={fps},trim=0:{seconds},setpts=PTS-STARTPTS[l];"
             f"[1:v]scale=-2:{height},fps={fps},trim=0:{seconds},setpts=PTS-STARTPTS[r];[l][r]hstack=inputs=2[v];"
             f"[0:a]aformat=sample_rates=44100:channel_layouts=mono,atrim=0:{half},asetpts=PTS-STARTPTS[a0];"
             f"[1:a]aformat=sample_rates=44100:channel_layouts=mono,atrim={half}:{seconds},asetpts=PTS-STARTPTS[a1];"
             f"[a0][a1]concat=n=2:v=0:a=1[a]")
    run_ffmpeg("-i", str(left), "-i", str(right), "-filter_complex", graph, "-map", "[v]", "-map", "[a]",
               "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-c:a", "aac", "-t", str(seconds), str(target))
    return target, [(0, 0.0, half, "LEFT"), (1, half, seconds, "RIGHT")]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--media", type=Path, default=Path(__file__).resolve().parent.parent.parent / "shared" / "media")
    parser.add_argument("--clips", nargs="*")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    clips = [args.media / "video" / c for c in args.clips] if args.clips else sorted((args.media / "video").glob("*.mp4"))
    out: dict = {"clips": [], "still": [], "composite": None, "throughput": []}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for clip in clips:
            started = time.perf_counter()
            report = run_clip(clip, folder)
            report.pop("_result")
            report["expected_tracks"] = EXPECTED.get(clip.stem)
            report["wall_s"] = round(time.perf_counter() - started, 1)
            out["clips"].append(report)
            print(json.dumps({k: report[k] for k in ("clip", "size", "fps_analysis", "fps_cpu", "tracks", "expected_tracks",
                                                     "cuts", "speakers", "continuity", "jitter", "occluded_share")}), flush=True)
        for name in ("astronaut.png", "obama.jpg"):
            report = still_jitter(args.media / "photo" / name)
            out["still"].append(report)
            print(json.dumps(report), flush=True)
        video = args.media / "video"
        out["throughput"] = throughput(video / "frontal_man_suit.mp4", folder)
        print(json.dumps(out["throughput"]), flush=True)
        composite, turns = side_by_side(video / "frontal_man_suit.mp4", video / "frontal_woman_flag.mp4", folder / "sbs.mp4")
        report = run_clip(composite, folder, segments=turns)
        result = report.pop("_result")
        centres = {t: float(result.box[result.track == t][:, [0, 2]].mean()) for t in result.track_ids()}
        report["track_side"] = {t: ("left" if c < result.width / 2 else "right") for t, c in centres.items()}
        out["composite"] = report
        print(json.dumps({k: report[k] for k in ("tracks", "speakers", "speaker_scores", "track_side", "segments")}))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=str))


if __name__ == "__main__":
    main()
