"""`python -m tasks.lipsync --video V --lang L`: the source video + data/face/V/{faces.npz,tracks.json} +
data/speakers/V/speakers.json + data/visemes/V/L/visemes.json -> data/lipsync/V/L/{video.mkv,report.json,grid.png}.

Frames are decoded as raw yuv420p and written back losslessly (libx264 -qp 0 or ffv1) at the
source's size, rate and frame count; only the pixels of an edited mouth region are replaced (in Y,
and in the chroma samples whose 2x2 block it touches), every other sample is the source's own.
"""
from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from tasks import artifacts
from tasks.artifacts import Probe, atomic_dir
from tasks.lipsync import schema
from tasks.lipsync.core import active_frames, boundary_gradient, detail, flicker, lips_ring, ramp, runs
from tasks.stage import StageContext, StageError, instantiate, log, main, picture_video

STATUS = ("absent", "edit", "not_speaking", "turned", "small", "occluded")
TORN = 0.02   # inter-ocular units: lips opened this far beyond their exemplar show a band of its stretched midline


# ---------------------------------------------------------------- raw yuv420p I/O
def frame_rate(path: Path, fallback: float) -> str:
    import av

    with av.open(str(path)) as container:
        rate = container.streams.video[0].average_rate
    return f"{rate.numerator}/{rate.denominator}" if rate else f"{fallback:.6f}"


def decode(path: Path, width: int, height: int):
    """Every frame of the first video stream as a (height * 3 / 2, width) I420 buffer."""
    from tasks.media import ffmpeg

    command = [ffmpeg(), "-hide_banner", "-loglevel", "error", "-nostdin", "-i", str(path), "-map", "0:v:0",
               "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-"]
    size = width * height * 3 // 2
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=size * 2)
    try:
        while True:
            data = process.stdout.read(size)
            if len(data) < size:
                break
            yield np.frombuffer(data, np.uint8).reshape(height * 3 // 2, width)
    finally:
        process.stdout.close()
        process.kill()
        process.wait()


class Encoder:
    def __init__(self, path: Path, width: int, height: int, rate: str, codec: str = "libx264", preset: str = "ultrafast"):
        from tasks.media import ffmpeg

        codec_args = {"libx264": ["-c:v", "libx264", "-qp", "0", "-preset", preset],
                      "ffv1": ["-c:v", "ffv1", "-level", "3"]}.get(codec)
        if codec_args is None:
            raise StageError(f"lipsync encode.codec {codec!r}: expected libx264 or ffv1 (lossless)")
        # bitexact: no date, random segment id or encoder banner in the file, so the same frames give
        # the same bytes (and DVC the same hash) on every run
        command = [ffmpeg(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-f", "rawvideo", "-pix_fmt", "yuv420p",
                   "-s", f"{width}x{height}", "-r", rate, "-i", "-", *codec_args, "-pix_fmt", "yuv420p", "-an",
                   "-fflags", "+bitexact", "-flags:v", "+bitexact", str(path)]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        self.frames = 0

    def write(self, frame: np.ndarray) -> None:
        self.process.stdin.write(np.ascontiguousarray(frame).tobytes())
        self.frames += 1

    def close(self) -> None:
        self.process.stdin.close()
        error = self.process.stderr.read().decode(errors="replace").strip()
        if self.process.wait() != 0:
            raise RuntimeError(f"ffmpeg encoder failed: {error.splitlines()[-1] if error else 'no message'}")


def planes(buffer: np.ndarray, height: int, width: int):
    """Y (h, w), U, V (h/2, w/2) views of an I420 buffer."""
    flat = buffer.reshape(-1)
    quarter = (height // 2) * (width // 2)
    y = flat[:height * width].reshape(height, width)
    u = flat[height * width:height * width + quarter].reshape(height // 2, width // 2)
    v = flat[height * width + quarter:height * width + 2 * quarter].reshape(height // 2, width // 2)
    return y, u, v


def paste(yuv: np.ndarray, pixels: np.ndarray, changed: np.ndarray, roi, height: int, width: int) -> None:
    """Write BGR `pixels` of an even-aligned ROI into an I420 frame, only where `changed` (luma) and
    in the chroma samples whose 2x2 block holds a changed pixel."""
    import cv2

    x0, y0, x1, y1 = roi
    h, w = y1 - y0, x1 - x0
    new = cv2.cvtColor(pixels, cv2.COLOR_BGR2YUV_I420)
    ny, nu, nv = planes(new, h, w)
    fy, fu, fv = planes(yuv, height, width)
    fy[y0:y1, x0:x1][changed] = ny[changed]
    block = changed.reshape(h // 2, 2, w // 2, 2).any(axis=(1, 3))
    fu[y0 // 2:y1 // 2, x0 // 2:x1 // 2][block] = nu[block]
    fv[y0 // 2:y1 // 2, x0 // 2:x1 // 2][block] = nv[block]


# ---------------------------------------------------------------- planning
@dataclass
class TrackPlan:
    track: int
    speaker: str
    ranges: dict
    rows: dict[int, int]                  # frame -> faces.npz row
    status: np.ndarray                    # per video frame, index into STATUS
    targets: np.ndarray                   # (F, 3) gap, width, jaw 0..1
    weight: np.ndarray = None             # per frame ramp 0..1
    choice: np.ndarray = None             # per frame exemplar (-1 none)
    bank: object = None
    bank_rows: np.ndarray = None
    luma: list = field(default_factory=list)        # (frame, output mean, source mean) of the edited skin
    lips_luma: list = field(default_factory=list)   # (frame, output mean, source mean) of the lips, each at its own landmarks
    partly_occluded: int = 0
    tears: list = field(default_factory=list)       # per edited frame: lips opened beyond the exemplar's (inter-ocular)
    inner_lent: int = 0                             # edited frames whose inner mouth came from a wider exemplar
    held: np.ndarray = None                         # per frame: the source speaks, the dub does not (mouth at rest)


def speaker_tracks(tracks, visemes, present: set[int]) -> tuple[dict[str, int], list[str]]:
    mapping: dict[str, int] = {}
    unmatched: list[str] = []
    names = [s.speaker for s in visemes.speakers]
    for name in names:
        track = (tracks.speakers or {}).get(name)
        if track is None:
            track = next((t.id for t in tracks.tracks if t.speaker == name), None)
        if track is None and len(names) == 1 and len(tracks.tracks) == 1:
            track = tracks.tracks[0].id
            log.warning("speaker %s has no face track in tracks.json: using the only track %d", name, track)
        if track is None or int(track) not in present:
            unmatched.append(name)
        else:
            mapping[name] = int(track)
    return mapping, unmatched


def rows_during(frame: np.ndarray, during: np.ndarray | None) -> np.ndarray:
    """Which faces.npz rows (their video `frame`) fall on a frame where `during` (a bool per video
    frame) is true; every row where `during` is None."""
    frame = np.asarray(frame)
    if during is None:
        return np.ones(len(frame), bool)
    inside = frame < len(during)
    inside[inside] = np.asarray(during, dtype=bool)[frame[inside]]
    return inside


def lone_speaker_tracks(faces: dict, present: set[int], during: np.ndarray | None = None) -> list[int]:
    """Face tracks that never share a frame with another track (of `present`), counting only the
    frames where `during` (a bool per video frame) is true, and on screen in one of them: where the
    face stage could not tell whose face a voice is, the only face on screen at each moment (a photo,
    a presenter)."""
    counted = rows_during(faces["frame"], during)
    frame, track = np.asarray(faces["frame"])[counted], np.asarray(faces["track"])[counted]
    frames = {t: set(frame[track == t].tolist()) for t in present}
    return sorted(t for t in present if frames[t] and all(not (frames[t] & frames[o]) for o in present if o != t))


def presenter_track(faces: dict, tracks: list[int], during: np.ndarray | None = None) -> int:
    """Of lone tracks, the one most on screen (frames x median face width; only the frames where
    `during` is true, where given): a cutaway to someone else (an audience shot) is not taken for
    the speaker."""
    track, box = np.asarray(faces["track"]), np.asarray(faces["box"], dtype=float)
    counted = rows_during(faces["frame"], during) if during is not None else np.ones(len(track), bool)

    def weight(t: int) -> float:
        own = (track == t) & counted
        return float(own.sum()) * float(np.median(box[own, 2] - box[own, 0])) if own.any() else 0.0

    return max(tracks, key=weight)


def speaker_frames(visemes, speaker: str, fps: float, frames: int, speech: dict) -> np.ndarray:
    """The video frames in which `speaker`'s dub speaks (their phones, pauses under
    `speech.merge_gap_s` joined, `speech.pad_s` either side)."""
    return spoken_frames([(p.start, p.end) for p in visemes.phones if p.speaker == speaker], fps, frames, speech)


def spoken_frames(intervals, fps: float, frames: int, speech: dict) -> np.ndarray:
    """`active_frames` of speech intervals (s) with the `speech` settings' merge gap and padding."""
    return active_frames(intervals, fps, frames, float(speech.get("merge_gap_s", 0.4)), float(speech.get("pad_s", 0.05)))


def source_words(segments) -> dict[str, list[tuple[float, float]]]:
    """{speaker: [(start, end)]} of what each person says in the source (the speakers stage's
    segments, word by word; a segment without words as a whole)."""
    spans: dict[str, list[tuple[float, float]]] = {}
    for segment in segments:
        words = [(w.start, w.end) for w in segment.words] or [(segment.start, segment.end)]
        spans.setdefault(segment.speaker, []).extend((float(a), float(b)) for a, b in words)
    return spans


def lone_faces_speak(names: list[str], taken: set[int], faces: dict, present: set[int], visemes, fps: float,
                     frames: int, speech: dict) -> dict[str, int]:
    """A face for each voice the face stage placed on no face: the face alone on screen while that
    voice speaks (no other track in those frames) and most on screen then, among the faces no other
    voice has (a presenter between cutaways, one person's shot in a longer video of several)."""
    found = {}
    for name in names:
        during = speaker_frames(visemes, name, fps, frames, speech)
        lone = [t for t in lone_speaker_tracks(faces, present, during) if t not in taken]
        if lone:
            found[name] = presenter_track(faces, lone, during)
    return found


def plan_track(track: int, curves, faces: dict, visemes, frames: int, fps: float, config: dict,
               source_speech: Sequence[tuple[float, float]] = ()) -> TrackPlan:
    """What to do with one face in every frame, and the mouth shape wanted there. The face is edited
    while its speaker's dub speaks, and also where they speak in the source while the dub is silent
    (`source_speech`, their words' times; `speech.hold_source_speech`): a dub that ends a phrase
    earlier than the original would otherwise leave the original lips talking without a sound. The
    viseme curves rest closed there."""
    limits, speech = config.get("limits") or {}, config.get("speech") or {}
    finite = np.isfinite(faces["landmarks"]).all(axis=(1, 2))
    rows = {int(f): int(i) for i, f in enumerate(faces["frame"])
            if int(faces["track"][i]) == track and int(f) < frames and finite[i]}
    ranges = {k: list(v) for k, v in curves.calibration.ranges.items()}
    speaking = speaker_frames(visemes, curves.speaker, fps, frames, speech)
    held = np.zeros(frames, dtype=bool)
    if speech.get("hold_source_speech", True) and len(source_speech):
        held = spoken_frames(source_speech, fps, frames, speech) & ~speaking
    status = np.zeros(frames, dtype=int)
    covered = (faces["mouth_mask"] > 127).mean(axis=(1, 2))
    for frame, row in rows.items():
        width = float(faces["box"][row][2] - faces["box"][row][0])
        if not (speaking[frame] or held[frame]):
            status[frame] = STATUS.index("not_speaking")
        elif abs(float(faces["pose"][row][0])) > float(limits.get("max_yaw", 35)):
            status[frame] = STATUS.index("turned")
        elif width < float(limits.get("min_face_px", 60)):
            status[frame] = STATUS.index("small")
        elif covered[row] > float(limits.get("max_covered", 0.85)) or faces["visibility"][row] < float(limits.get("min_visibility", 0.15)):
            status[frame] = STATUS.index("occluded")
        else:
            status[frame] = STATUS.index("edit")
    status = fade_margins(status, int(speech.get("ramp_frames", 3)) - 1)
    params = curves.params
    count = len(params["gap"])
    # the mouth leads the sound (lips shape a phone before it is heard): frame f shows the curves'
    # value `lead_s` later, rounded to whole frames (interpolating between frames would halve a
    # one-frame closure into two half-open frames)
    at = np.clip(np.arange(frames) + lead_frames(float((config.get("articulation") or {}).get("lead_s", 0.0)), fps), 0, count - 1)
    targets = np.stack([np.asarray(params[k], dtype=float)[at] for k in ("gap", "width", "jaw")], axis=1)
    targets = articulate(targets, speaking, config.get("articulation") or {})
    return TrackPlan(track, curves.speaker, ranges, rows, status, targets, held=held)


def fade_margins(status: np.ndarray, margin: int) -> np.ndarray:
    """Each run of edited frames widened by up to `margin` not-speaking frames each side, where the
    edit fades in and out: the first and last speaking frames then show the new mouth at full
    weight (a bilabial that opens the speech, faded in at a third over the original open mouth,
    reads as open)."""
    out = np.array(status)
    edit, quiet = STATUS.index("edit"), STATUS.index("not_speaking")
    for first, last in runs(np.asarray(status) == edit):
        for step in range(1, margin + 1):
            if first - step < 0 or status[first - step] != quiet:
                break
            out[first - step] = edit
        for step in range(1, margin + 1):
            if last + step >= len(status) or status[last + step] != quiet:
                break
            out[last + step] = edit
    return out


def lead_frames(lead_s: float, fps: float) -> int:
    """The articulation lead in whole frames of this video."""
    return int(round(lead_s * fps))


def articulate(targets: np.ndarray, speaking: np.ndarray, options: dict) -> np.ndarray:
    """Scale the opening curves (gap, jaw) so that their `quantile` over the speech reaches
    `open_level` of the speaker's range (gain at most `max_gain`, never below 1): viseme curves
    that open the mouth less than the speaker ever does come out as mumbling. 0 (closed) stays 0."""
    quantile, level = float(options.get("quantile", 0.95)), float(options.get("open_level", 0.0))
    if level <= 0 or not speaking.any():
        return targets
    out = np.array(targets, dtype=float)
    for column in (0, 2):  # gap, jaw
        reached = float(np.quantile(out[speaking, column], quantile))
        gain = float(np.clip(level / max(reached, 1e-6), 1.0, float(options.get("max_gain", 2.0))))
        out[:, column] = np.clip(out[:, column] * gain, 0.0, 1.0)
    return hold_closures(out, speaking, float(options.get("closure_level", 0.05)), int(options.get("closure_before", 0)),
                         int(options.get("closure_after", 0)), int(options.get("closure_max_frames", 4)))


def hold_closures(targets: np.ndarray, speaking: np.ndarray, level: float, before: int, after: int, longest: int) -> np.ndarray:
    """Lengthen every short lip closure inside speech (a run of at most `longest` frames with the gap
    at or below `level`) by `before` frames earlier and `after` later: a bilabial's lips close ahead
    of its sound and stay shut 70-120 ms, while a phone timing may give it a single frame."""
    if before <= 0 and after <= 0:
        return targets
    out = np.array(targets, dtype=float)
    closed = (out[:, 0] <= level) & speaking
    for first, last in runs(closed):
        if last - first + 1 > longest:
            continue  # a pause, not a bilabial
        lo, hi = max(first - before, 0), min(last + after, len(out) - 1)
        span = slice(lo, hi + 1)
        out[span, 0] = np.where(speaking[span], np.minimum(out[span, 0], out[first:last + 1, 0].min()), out[span, 0])
    return out


def bank_candidates(plan: TrackPlan, faces: dict, config: dict) -> np.ndarray:
    limits = config.get("limits") or {}
    covered = (faces["mouth_mask"] > 127).mean(axis=(1, 2))
    keep = []
    for frame in sorted(plan.rows):
        row = plan.rows[frame]
        width = float(faces["box"][row][2] - faces["box"][row][0])
        if (abs(float(faces["pose"][row][0])) <= float(limits.get("max_yaw", 35)) and width >= float(limits.get("min_face_px", 60))
                and covered[row] <= float(limits.get("bank_max_covered", 0.02))
                and faces["visibility"][row] >= float(limits.get("bank_min_visibility", 0.9))
                and (not limits.get("bank_detected_only", False) or bool(faces["detected"][row]))):
            keep.append(row)
    return np.array(keep, dtype=int)


def crossfade(plan: TrackPlan, index: int, frames: int, cuts: set[int] = frozenset(), max_shape: float = 0.25,
              closed_level: float | None = None) -> tuple[int, float]:
    """After a jump between unrelated exemplars of about the same mouth opening (at most `max_shape`
    apart, 0..1 of the range), the old one (carried on along its own source frames) dissolves out
    over `frames` frames: (exemplar to mix in or -1, its weight). Never on a frame whose target gap
    is at or below `closed_level`: a closure shown half over a slightly open exemplar is a ghost of
    two lip lines, which reads as open."""
    if frames <= 0 or index == 0:
        return -1, 0.0
    targets = getattr(plan, "targets", None)
    if closed_level is not None and targets is not None and float(targets[index][0]) <= closed_level:
        return -1, 0.0
    seq = plan.bank.sequence
    successor = lambda k: k + 1 if k + 1 < len(seq) and seq[k + 1] == seq[k] + 1 else k  # noqa: E731
    for back in range(1, frames + 1):
        t = index - back
        if t < 0 or plan.choice[t] < 0 or plan.choice[t + 1] < 0 or (t + 1) in cuts:
            return -1, 0.0
        a, b = int(plan.choice[t]), int(plan.choice[t + 1])
        if b != a and seq[b] != seq[a] + 1:
            features = getattr(plan.bank, "features", None)
            if features is not None and abs(float(features[a][0] - features[b][0])) > max_shape:
                return -1, 0.0  # an articulation (e.g. into a closure): a dissolve would blur it open
            old = a
            for _ in range(back):
                old = successor(old)
            return old, 0.5 ** back
    return -1, 0.0


def covered_mask(faces: dict, row: int, roi, grow: int = 0) -> np.ndarray:
    """The face stage's mouth occluder mask (255 = covered) in ROI pixels."""
    import cv2

    x0, y0, x1, y1 = roi
    out = np.zeros((y1 - y0, x1 - x0), bool)
    mask = faces["mouth_mask"][row]
    if not (mask > 127).any():
        return out
    bx0, by0, bx1, by1 = (int(v) for v in faces["mouth_box"][row])
    if bx1 <= bx0 or by1 <= by0:
        return out
    resized = cv2.resize(mask, (bx1 - bx0, by1 - by0), interpolation=cv2.INTER_LINEAR) > 127
    ix0, iy0, ix1, iy1 = max(bx0, x0), max(by0, y0), min(bx1, x1), min(by1, y1)
    if ix1 > ix0 and iy1 > iy0:
        out[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0] = resized[iy0 - by0:iy1 - by0, ix0 - bx0:ix1 - bx0]
    return out


# ---------------------------------------------------------------- grid
def face_crop(image: np.ndarray, box, height: int) -> np.ndarray:
    import cv2

    x0, y0, x1, y1 = (float(v) for v in box)
    side = max(x1 - x0, y1 - y0) * 1.3
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 + 0.1 * side
    a, b = int(max(cx - side / 2, 0)), int(max(cy - side / 2, 0))
    c, d = int(min(cx + side / 2, image.shape[1])), int(min(cy + side / 2, image.shape[0]))
    crop = image[b:d, a:c]
    return cv2.resize(crop, (max(1, int(crop.shape[1] * height / max(crop.shape[0], 1))), height), interpolation=cv2.INTER_AREA)


def make_grid(pairs: list[tuple[int, np.ndarray, np.ndarray]]) -> np.ndarray:
    import cv2

    height = pairs[0][1].shape[0]
    columns = []
    for frame, before, after in pairs:
        width = min(before.shape[1], after.shape[1])
        column = np.vstack([before[:, :width], after[:height, :width]])
        cv2.putText(column, f"{frame}", (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
        columns.append(column)
    grid = np.hstack(columns)
    cv2.putText(grid, "source", (6, height - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 255, 255), 1, cv2.LINE_AA)
    cv2.putText(grid, "lipsync", (6, 2 * height - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 255, 255), 1, cv2.LINE_AA)
    return grid


# ---------------------------------------------------------------- the stage
def run_flicker(plans, series: str) -> tuple[float, float, float]:
    """Mean frame-to-frame change of a per-frame (frame, output, source) series of each plan, within
    each run of edited frames: (output, source, output - source), averaged over the runs."""
    out, source, edit = [], [], []
    for plan in plans:
        for first, last in runs(plan.choice >= 0):
            values = [(o, s) for f, o, s in getattr(plan, series) if first <= f <= last]
            if len(values) > 1:
                out.append(flicker([o for o, _ in values]))
                source.append(flicker([s for _, s in values]))
                edit.append(flicker([o - s for o, s in values]))
    return tuple(float(np.mean(v)) if v else 0.0 for v in (out, source, edit))


def run(context: StageContext) -> None:
    import cv2

    from tasks.face.schema import read_faces, read_tracks
    from tasks.lipsync.composite import Compositor
    from tasks.speakers.schema import read as read_speakers
    from tasks.visemes import schema as visemes_schema

    started = time.perf_counter()
    config = context.config
    source = picture_video(context.root, context.video)
    try:
        probe = artifacts.read(context.input_dir("ingest") / "probe.json", Probe)
        faces = read_faces(context.input_dir("face") / "faces.npz")
        tracks = read_tracks(context.input_dir("face") / "tracks.json")
        visemes = visemes_schema.read(context.input_dir("visemes") / "visemes.json")
        spoken = source_words(read_speakers(context.input_dir("speakers") / "speakers.json").segments)
    except artifacts.ArtifactError as error:
        raise StageError(str(error)) from None
    width, height, frames = probe.width, probe.height, probe.frames
    if width % 2 or height % 2:
        raise StageError(f"{source} is {width}x{height}: lipsync writes yuv420p, which needs an even size")
    generator = instantiate(config, "generator")
    blend = config.get("blend") or {}
    compositor = Compositor(**blend)
    speech, encode, grid_cfg = config.get("speech") or {}, config.get("encode") or {}, config.get("grid") or {}

    present = {int(t) for t in np.unique(faces["track"]) if t >= 0}
    mapping, unmatched = speaker_tracks(tracks, visemes, present)
    pairs = [(name, track) for name, track in mapping.items()]
    if unmatched and (config.get("limits") or {}).get("lone_faces_speak", True):
        found = lone_faces_speak(unmatched, set(mapping.values()), faces, present, visemes, probe.fps, frames, speech)
        for name, track in found.items():
            log.warning("speaker %s has no face track in tracks.json: they speak with the face alone on screen while "
                        "they speak, most on screen then (track %d)", name, track)
        pairs += list(found.items())
        unmatched = [name for name in unmatched if name not in found]
    if unmatched:
        log.warning("speakers with no face track (left as they are): %s", ", ".join(unmatched))
    curves_of = {s.speaker: s for s in visemes.speakers}
    plans = [plan_track(track, curves_of[name], faces, visemes, frames, probe.fps, config, spoken.get(name, ()))
             for name, track in pairs]
    plans = [plan for plan in plans if plan.rows]

    cuts = {int(c) for c in np.asarray(faces.get("cuts", ())).reshape(-1)} | {int(c) for c in tracks.cuts}
    # pass 1: the banks
    wanted: dict[int, list[tuple[TrackPlan, int]]] = {}
    for plan in plans:
        candidates = bank_candidates(plan, faces, config)
        plan.bank = generator.new_bank(plan.track, faces["landmarks"][list(plan.rows.values())], plan.ranges)
        plan.bank_rows = generator.choose_rows(candidates, faces["frame"][candidates]) if len(candidates) else candidates
        for row in plan.bank_rows:
            wanted.setdefault(int(faces["frame"][row]), []).append((plan, int(row)))
    last_wanted = max(wanted) if wanted else -1
    for index, yuv in enumerate(tqdm(decode(source, width, height), total=last_wanted + 1, unit="frame",
                                     desc=f"lipsync {context.lang}: mouth bank")):
        if index > last_wanted:
            break
        if index in wanted:
            bgr = cv2.cvtColor(yuv, cv2.COLOR_YUV2BGR_I420)
            for plan, row in wanted[index]:
                plan.bank.add(bgr, faces["landmarks"][row], faces["pose"][row], index, row, float(faces["visibility"][row]))
    for plan in plans:
        edit = plan.status == STATUS.index("edit")
        plan.choice = np.full(frames, -1, dtype=int)
        if len(plan.bank) < getattr(generator, "min_bank", 1):
            log.warning("track %d: %d clear exemplars, too few for a bank: left untouched", plan.track, len(plan.bank))
            plan.status[edit] = -1
            plan.weight = np.zeros(frames)
            continue
        generator.finish(plan.bank)
        if plan.held.any() and getattr(plan.bank, "still", False):
            # a photo's lips never moved: nothing talks without a sound, so nothing is held at rest
            replanned = plan_track(plan.track, curves_of[plan.speaker], faces, visemes, frames, probe.fps, config)
            plan.status, plan.targets, plan.held = replanned.status, replanned.targets, replanned.held
            edit = plan.status == STATUS.index("edit")
        poses = np.zeros((frames, 2))
        for frame, row in plan.rows.items():
            poses[frame] = faces["pose"][row][:2]
        for first, last in runs(edit):
            plan.choice[first:last + 1] = generator.plan(plan.bank, plan.targets[first:last + 1], poses[first:last + 1])
        plan.weight = ramp(edit, int(speech.get("ramp_frames", 3)), sorted(cuts))
        log.info("track %d (%s): bank of %d exemplars, %d frames to edit (%d of them the source speaking while the dub "
                 "is silent: the mouth at rest)", plan.track, plan.speaker, len(plan.bank), int(edit.sum()), int((edit & plan.held).sum()))

    edited_frames = sorted({f for p in plans for f in np.flatnonzero(p.choice >= 0)})
    grid_frames = set()
    if edited_frames:
        picks = np.linspace(0, len(edited_frames) - 1, min(int(grid_cfg.get("frames", 4)), len(edited_frames)) + 2)[1:-1]
        grid_frames = {edited_frames[int(round(i))] for i in picks} or {edited_frames[0]}

    # pass 2: render, blend, encode, measure
    rate = frame_rate(source, probe.fps)
    # the face stage's mouth mask is noisy at the lip edges (beard, shadow, teeth): below this share
    # of the mouth box it is not taken for an occluder (an edit keeps original lip pixels otherwise)
    share = (faces["mouth_mask"] > 127).mean(axis=(1, 2))
    min_share = float((config.get("limits") or {}).get("occluder_min_share", 0.2))
    closed_level = float((config.get("articulation") or {}).get("closure_level", 0.05))
    psnr_outside, psnr_frame, areas, grad_out, grad_src, detail_out, detail_src = [], [], [], [], [], [], []
    pairs = []
    written, faces_edited, edit_seconds = 0, 0, 0.0
    with atomic_dir(context.out_dir()) as out:
        encoder = Encoder(out / "video.mkv", width, height, rate, encode.get("codec", "libx264"), encode.get("preset", "ultrafast"))
        try:
            for index, yuv in enumerate(tqdm(decode(source, width, height), total=frames, unit="frame",
                                             desc=f"lipsync {context.lang}: new mouths")):
                if index >= frames:
                    break
                active = [p for p in plans if p.choice[index] >= 0]
                if active:
                    source_yuv, yuv = yuv, yuv.copy()
                    source_bgr = cv2.cvtColor(source_yuv, cv2.COLOR_YUV2BGR_I420)
                    bgr = source_bgr.copy()
                    edited = np.zeros((height, width), bool)
                    boxes = []
                    for plan in active:
                        row = plan.rows[index]
                        tick = time.perf_counter()
                        landmarks = faces["landmarks"][row].astype(float)
                        rendered = generator.render(plan.bank, int(plan.choice[index]), (height, width), landmarks, plan.targets[index])
                        if rendered is None:
                            continue
                        if index == 0 or plan.choice[index - 1] < 0 or index in cuts:
                            compositor.reset(plan.track)  # a new run or a new shot: no colour memory
                        fade_from, weight = crossfade(plan, index, compositor.crossfade_frames, cuts, compositor.crossfade_max_shape,
                                                      closed_level)
                        if fade_from >= 0:
                            other = generator.render(plan.bank, fade_from, (height, width), landmarks, plan.targets[index])
                            rendered = compositor.mix(rendered, other, weight)
                        plan.tears.append(rendered.tear)
                        plan.inner_lent += int(rendered.inner_from >= 0)
                        covered = covered_mask(faces, row, rendered.roi) if share[row] >= min_share else None
                        plan.partly_occluded += int(covered is not None and covered.any())
                        pixels, alpha = compositor.blend(bgr, rendered, plan.weight[index], covered, plan.track)
                        x0, y0, x1, y1 = rendered.roi
                        changed = alpha > 0
                        paste(yuv, pixels, changed, rendered.roi, height, width)
                        bgr[y0:y1, x0:x1] = np.where(changed[..., None], pixels, bgr[y0:y1, x0:x1])
                        edited[y0:y1, x0:x1] |= changed
                        boxes.append(rendered.roi)
                        edit_seconds += time.perf_counter() - tick
                        faces_edited += 1
                        grad_out.append(boundary_gradient(bgr[y0:y1, x0:x1], alpha))
                        grad_src.append(boundary_gradient(source_bgr[y0:y1, x0:x1], alpha))
                        inside = alpha > 0.5
                        if inside.any():
                            detail_out.append(detail(bgr[y0:y1, x0:x1], inside))
                            detail_src.append(detail(source_bgr[y0:y1, x0:x1], inside))
                        region = inside & ~rendered.mouth  # the skin: its colour must not flicker
                        if region.any():
                            plan.luma.append((index, float(yuv[y0:y1, x0:x1][region].mean()),
                                              float(source_yuv[y0:y1, x0:x1][region].mean())))
                        if getattr(rendered, "lips", None) is not None:
                            new_lips, own_lips = lips_ring(rendered.lips, alpha.shape), lips_ring(rendered.source_lips, alpha.shape)
                            if new_lips.sum() >= 10 and own_lips.sum() >= 10:
                                plan.lips_luma.append((index, float(yuv[y0:y1, x0:x1][new_lips].mean()),
                                                       float(source_yuv[y0:y1, x0:x1][own_lips].mean())))
                    final = cv2.cvtColor(yuv, cv2.COLOR_YUV2BGR_I420)
                    if boxes:
                        # outside the union of the ROIs the I420 samples are the source's own: no error there
                        bx0, by0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
                        bx1, by1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
                        diff = (final[by0:by1, bx0:bx1].astype(np.int32) - source_bgr[by0:by1, bx0:bx1]) ** 2
                        outside = ~edited[by0:by1, bx0:bx1]
                        psnr_frame.append(_psnr(float(diff.sum()), height * width * 3))
                        psnr_outside.append(_psnr(float(diff[outside].sum()), int(height * width - edited.sum()) * 3))
                        areas.append(float(edited.mean()))
                    if index in grid_frames:
                        box = faces["box"][active[0].rows[index]]
                        h = int(grid_cfg.get("height", 240))
                        pairs.append((index, face_crop(source_bgr, box, h), face_crop(final, box, h)))
                encoder.write(yuv)
                written += 1
        finally:
            encoder.close()
        if written != frames:
            log.warning("decoded %d frames, probe.json says %d", written, frames)
        seconds = time.perf_counter() - started
        fo, fs, fe = run_flicker(plans, "luma")
        lo, ls, _ = run_flicker(plans, "lips_luma")
        go, gs = (float(np.mean(grad_out)) if grad_out else 0.0), (float(np.mean(grad_src)) if grad_src else 0.0)
        do, ds = (float(np.mean(detail_out)) if detail_out else 0.0), (float(np.mean(detail_src)) if detail_src else 0.0)
        metrics = schema.LipsyncMetrics(
            psnr_outside_min=round(min(psnr_outside, default=99.0), 3), psnr_outside_mean=round(float(np.mean(psnr_outside)) if psnr_outside else 99.0, 3),
            psnr_frame_min=round(min(psnr_frame, default=99.0), 3), edited_area=round(float(np.mean(areas)) if areas else 0.0, 5),
            boundary_gradient=round(go, 3), boundary_gradient_source=round(gs, 3), boundary_gradient_ratio=round(go / gs, 3) if gs else 1.0,
            flicker=round(fo, 4), flicker_source=round(fs, 4), flicker_ratio=round(fo / fs, 3) if fs else 1.0,
            edit_flicker=round(fe, 4),
            fps=round(written / max(seconds, 1e-6), 2), seconds=round(seconds, 2),
            edit_ms_per_face=round(1000 * edit_seconds / max(faces_edited, 1), 2),
            detail_ratio=round(do / ds, 3) if ds else 1.0,
            lips_flicker=round(lo, 4), lips_flicker_source=round(ls, 4), lips_flicker_ratio=round(lo / ls, 3) if ls else 1.0)
        track_reports = []
        for plan in plans:
            edited = plan.choice >= 0
            present = np.zeros(frames, bool)
            present[list(plan.rows)] = True
            untouched = {reason: int(((plan.status == STATUS.index(reason)) & present).sum()) for reason in schema.REASONS if reason in STATUS}
            untouched["no_exemplar"] = int(((plan.status == -1) & present).sum())
            chosen = plan.choice[edited]
            seq = plan.bank.sequence if plan.bank.sequence is not None else np.zeros(0)
            switches = int(sum(1 for a, b in zip(chosen[:-1], chosen[1:]) if a != b and seq[b] != seq[a] + 1)) if len(chosen) else 0
            error = float(np.abs(plan.bank.features[chosen] - plan.targets[edited]).mean()) if len(chosen) else 0.0
            track_reports.append(schema.TrackReport(plan.track, plan.speaker, len(plan.bank), int(present.sum()), int(edited.sum()),
                                                    untouched, plan.partly_occluded, switches, round(error, 4),
                                                    int(np.sum(np.asarray(plan.tears) > TORN)),
                                                    round(float(np.mean(plan.tears)) if plan.tears else 0.0, 4), plan.inner_lent,
                                                    int((edited & plan.held).sum())))
        report = schema.LipsyncReport(context.video, context.lang, getattr(generator, "name", type(generator).__name__), width, height,
                                      probe.fps, written, len(edited_frames), encode.get("codec", "libx264"), tuple(track_reports),
                                      tuple(unmatched), metrics, {k: v for k, v in config.items() if k != "grid"})
        schema.write(out / "report.json", report)
        if pairs:
            cv2.imwrite(str(out / "grid.png"), make_grid(sorted(pairs, key=lambda p: p[0])))
    log.info("%d/%d frames edited; PSNR outside the mouth min %.1f dB; boundary gradient x%.2f; flicker x%.2f (lips "
             "x%.2f); detail x%.2f; %.1f frames/s", len(edited_frames), written, metrics.psnr_outside_min,
             metrics.boundary_gradient_ratio, metrics.flicker_ratio, metrics.lips_flicker_ratio, metrics.detail_ratio, metrics.fps)


def _psnr(sse: float, count: int) -> float:
    if count <= 0 or sse <= 0:
        return 99.0
    return float(min(99.0, 10 * np.log10(255.0 ** 2 / (sse / count))))


if __name__ == "__main__":
    main("lipsync", run)
