"""Pictures of a face analysis: the debug video and the contact sheet."""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Iterable

import numpy as np

from tasks.face import visibility as vis
from tasks.face.pipeline import FaceAnalysis

PALETTE = [(66, 135, 245), (60, 200, 80), (240, 80, 80), (230, 190, 40), (200, 80, 220), (40, 210, 220),
           (255, 140, 0), (150, 150, 255), (120, 255, 180), (255, 110, 180)]


def colour(track: int) -> tuple[int, int, int]:
    return (128, 128, 128) if track < 0 else PALETTE[track % len(PALETTE)]


def draw(frame: np.ndarray, result: FaceAnalysis, index: int, speaker_of: dict[int, str]) -> np.ndarray:
    """One annotated frame: box, track id and speaker, 68 landmarks, pose axes, mouth cover mask."""
    import cv2

    out = frame.copy()
    thick = max(1, round(max(frame.shape[:2]) / 600))
    camera = None
    for i in np.flatnonzero(result.frame == index):
        t = int(result.track[i])
        c = colour(t)
        x0, y0, x1, y1 = result.box[i].astype(int)
        cv2.rectangle(out, (x0, y0), (x1, y1), c, thick)
        m = result.mouth_mask[i]
        mx0, my0, mx1, my1 = result.mouth_box[i]
        if m.any() and mx1 > mx0 and my1 > my0:
            big = cv2.resize(m, (mx1 - mx0, my1 - my0), interpolation=cv2.INTER_NEAREST) > 0
            roi = out[my0:my1, mx0:mx1]
            roi[big] = (0.5 * roi[big] + 0.5 * np.array([0, 0, 255])).astype(np.uint8)
        for x, y in result.landmarks[i]:
            cv2.circle(out, (int(round(x)), int(round(y))), thick, c, -1, cv2.LINE_AA)
        if camera is None:
            from tasks.face.geometry import camera_matrix

            camera = camera_matrix(result.width, result.height)
        axes = np.float64([[0, 0, 0], [40, 0, 0], [0, 40, 0], [0, 0, -40]])
        pts, _ = cv2.projectPoints(axes, result.rvec[i].astype(np.float64), result.tvec[i].astype(np.float64), camera, None)
        pts = pts.reshape(-1, 2).astype(int)
        for k, axis_colour in ((1, (0, 0, 255)), (2, (0, 255, 0)), (3, (255, 0, 0))):
            cv2.line(out, tuple(pts[0]), tuple(pts[k]), axis_colour, thick, cv2.LINE_AA)
        yaw, pitch, roll = result.pose[i]
        label = f"#{t}" if t >= 0 else "-"
        if t in speaker_of:
            label += f" {speaker_of[t]}"
        lines = [label, f"y{yaw:+.0f} p{pitch:+.0f} r{roll:+.0f}",
                 f"vis {result.visibility[i]:.2f} {vis.OCCLUDERS[int(result.occluder[i])] if result.occluder[i] else ''}"]
        scale = 0.4 * thick
        for k, text in enumerate(lines):
            cv2.putText(out, text, (x0, max(12, y0 - 6 - int(14 * thick) * (len(lines) - 1 - k))),
                        cv2.FONT_HERSHEY_SIMPLEX, scale, c, thick, cv2.LINE_AA)
    stamp = f"frame {index}" + ("  CUT" if index in result.cuts else "")
    cv2.putText(out, stamp, (8, 20 * thick), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * thick, (255, 255, 255), thick, cv2.LINE_AA)
    return out


def debug_video(frames: Iterable[tuple[float, np.ndarray]], result: FaceAnalysis, target: Path,
                max_side: int = 1280, crf: int = 28) -> Path:
    """Annotated H.264 video (no audio) of the analysis, through imageio-ffmpeg's ffmpeg."""
    import cv2

    from tasks.media import ffmpeg

    speaker_of = {t: s for s, t in result.speakers.items() if t is not None}
    scale = min(1.0, max_side / max(result.width, result.height))
    w, h = (round(result.width * scale) // 2) * 2, (round(result.height * scale) // 2) * 2
    command = [ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24",
               "-s", f"{w}x{h}", "-r", f"{result.fps:.6f}", "-i", "-", "-c:v", "libx264", "-preset", "ultrafast",
               "-crf", str(crf), "-pix_fmt", "yuv420p", "-f", "mp4", str(target)]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for index, (_, frame) in enumerate(frames):
            image = draw(frame, result, index, speaker_of)
            if image.shape[1] != w or image.shape[0] != h:
                image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
            process.stdin.write(image.tobytes())
    finally:
        process.stdin.close()
        error = process.stderr.read().decode(errors="replace")
        process.wait()
    if process.returncode != 0:
        raise RuntimeError(f"ffmpeg could not write the debug video: {error.strip()[-300:]}")
    return target


def contact_sheet(result: FaceAnalysis, target: Path, per_track: int = 6, size: int = 112) -> Path:
    """One row per track: face crops across its life, with its id, speaker, spans and visibility."""
    import cv2

    from tasks.face.tracking import spans

    speaker_of = {t: s for s, t in result.speakers.items() if t is not None}
    label_w = 260
    rows = []
    for t in result.track_ids():
        thumbs = result.thumbnails.get(t, [])
        if len(thumbs) > per_track:
            thumbs = [thumbs[round(k)] for k in np.linspace(0, len(thumbs) - 1, per_track)]
        row = np.full((size + 24, label_w + per_track * size, 3), 32, np.uint8)
        c = colour(t)
        sel = result.track == t
        runs = spans(result.frame[sel])
        text = [f"track {t}" + (f"  speaker {speaker_of[t]}" if t in speaker_of else "  (no speech)"),
                f"{sel.sum()} frames, {len(runs)} span(s)",
                " ".join(f"{a}-{b}" for a, b in runs[:4]) + (" ..." if len(runs) > 4 else ""),
                f"mouth visible {result.visibility[sel].mean():.2f}"]
        for k, line in enumerate(text):
            cv2.putText(row, line, (8, 22 + 24 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.5, c, 1, cv2.LINE_AA)
        for k, (frame_index, crop) in enumerate(thumbs):
            x = label_w + k * size
            row[:size, x:x + size] = cv2.resize(crop, (size, size))
            cv2.putText(row, str(frame_index), (x + 4, size + 17), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (220, 220, 220), 1)
        rows.append(row)
    if not rows:
        rows = [np.full((size + 24, label_w + per_track * size, 3), 32, np.uint8)]
        cv2.putText(rows[0], "no face tracks", (8, 40), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (220, 220, 220), 1)
    header = np.full((28, rows[0].shape[1], 3), 16, np.uint8)
    cv2.putText(header, f"{result.frames} frames @ {result.fps:.2f} fps, cuts at {result.cuts}, backend {result.backend}",
                (8, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    cv2.imwrite(str(target), np.vstack([header, *rows]))
    return target
