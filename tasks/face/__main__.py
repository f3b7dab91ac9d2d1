"""python -m tasks.face --video V: face tracks of the registered source video."""
from __future__ import annotations

import dataclasses
import time

import numpy as np

from tasks.artifacts import ArtifactError, Probe, atomic_dir, read
from tasks.face.pipeline import FaceAnalysis, FaceOptions, analyze, choose_faces, continuity, read_frames
from tasks.face.schema import FaceTrack, FaceTracks, SegmentFace, write_faces, write_tracks
from tasks.face.tracking import spans
from tasks.speakers.schema import read as read_speakers
from tasks.stage import StageContext, StageError, instantiate, log, main, picture_video


def build_backend(config: dict):
    """The configured backend; a configuration problem (e.g. a missing model folder) is a StageError
    even when Hydra wraps it, so the stage fails with one line instead of a traceback."""
    try:
        return instantiate(config, "backend")
    except StageError:
        raise
    except Exception as error:
        cause = error
        while cause is not None and not isinstance(cause, StageError):
            cause = cause.__cause__ or cause.__context__
        if cause is not None:
            raise cause from None
        raise


def options_from(config: dict) -> FaceOptions:
    known = {f.name for f in dataclasses.fields(FaceOptions)}
    unknown = sorted(set(config.get("tracking") or {}) - known)
    if unknown:
        raise StageError(f"unknown face.tracking option(s): {', '.join(unknown)}")
    return FaceOptions(**(config.get("tracking") or {}))


def to_tracks(result: FaceAnalysis, video: str) -> FaceTracks:
    speaker_of = {t: s for s, t in result.speakers.items() if t is not None}
    tracks = []
    for t in result.track_ids():
        sel = result.track == t
        frames = np.unique(result.frame[sel])
        speaker = speaker_of.get(t)
        tracks.append(FaceTrack(
            id=t, first_frame=int(frames[0]), last_frame=int(frames[-1]), frames=len(frames),
            spans=tuple((int(a), int(b)) for a, b in spans(frames)), seconds=round(len(frames) / result.fps, 3),
            speaker=speaker, speaking_score=float(result.speaker_scores.get(speaker, {}).get(t, 0.0)) if speaker else 0.0,
            mouth_visibility=round(float(result.visibility[sel].mean()), 4),
            mean_pose=tuple(round(float(v), 2) for v in result.pose[sel].mean(axis=0)),
            embedding=tuple(round(float(v), 6) for v in result.embeddings.get(t, np.zeros(0))),
        ))
    segments = tuple(SegmentFace(s["id"], s["start"], s["end"], s["speaker"], s["track"],
                                 {str(k): v for k, v in s["scores"].items()}) for s in result.segments)
    stats = {"analysis_seconds": round(result.seconds, 3), "analysis_fps": round(result.analysis_fps, 2),
             "faces": int(len(result.frame))}
    for t in result.track_ids():
        stats[f"track{t}_coverage_of_clip"] = round(continuity(result, t)["coverage_of_clip"], 4)
    return FaceTracks(video=video, width=result.width, height=result.height, fps=result.fps, frames=result.frames,
                      backend=result.backend, cuts=tuple(result.cuts), tracks=tuple(tracks), speakers=result.speakers,
                      segments=segments, speaker_scores={s: {str(k): v for k, v in row.items()}
                                                         for s, row in result.speaker_scores.items()}, stats=stats,
                      speaker_basis=dict(result.speaker_basis))


def to_arrays(result: FaceAnalysis) -> dict[str, np.ndarray]:
    shot = np.zeros(result.frames, dtype=np.int32)
    for cut in result.cuts:
        shot[cut:] += 1
    arrays = {name: getattr(result, name) for name in ("frame", "track", "fragment", "box", "landmarks", "landmarks_raw",
                                                       "detected", "pose", "rvec", "tvec", "visibility", "occluder",
                                                       "mouth_box", "mouth_mask", "mouth_open")}
    return {**arrays, "times": result.times.astype(np.float64), "shot": shot, "cuts": np.array(result.cuts, dtype=np.int32)}


def run(context: StageContext) -> None:
    config = context.config
    source = picture_video(context.root, context.video)
    ingest = context.input_dir("ingest")
    try:
        probe = read(ingest / "probe.json", Probe)
    except ArtifactError as error:
        raise StageError(str(error)) from None
    segments = None
    audio = stereo = None
    if config.get("speakers", True):
        try:
            labelled = read_speakers(context.input_dir("speakers") / "speakers.json")
        except ArtifactError as error:
            raise StageError(str(error)) from None
        segments = [(s.id, s.start, s.end, s.speaker) for s in labelled.segments]
        from tasks.media import read_wav

        audio = read_wav(ingest / "audio.wav")
        soundtrack = ingest / "soundtrack.wav"
        stereo = read_wav(soundtrack) if probe.audio_channels >= 2 and soundtrack.exists() else None
    backend = build_backend(config)
    options = options_from(config)
    result = analyze(read_frames(str(source)), backend, options, probe.fps, total=probe.frames, segments=segments,
                     audio=audio, progress=config.get("progress", True), stereo=stereo)
    if result.frames == 0:
        raise StageError(f"no frames decoded from {source}")
    try:
        choose_faces(result, dict(config.get("speaker_faces") or {}))
    except ValueError as error:
        raise StageError(str(error)) from None
    log.info("%d frames in %.1f s (%.1f fps), %d faces, %d tracks, cuts at %s, speakers %s", result.frames,
             result.seconds, result.analysis_fps, len(result.frame), len(result.track_ids()), result.cuts,
             result.speakers)
    with atomic_dir(context.out_dir()) as out:
        write_faces(out / "faces.npz", to_arrays(result))
        write_tracks(out / "tracks.json", to_tracks(result, context.video))
        from tasks.face.render import contact_sheet, debug_video

        contact_sheet(result, out / "contact_sheet.png")
        if config.get("debug_video", True):
            started = time.perf_counter()
            debug_video(read_frames(str(source)), result, out / "debug.mp4", **(config.get("debug") or {}))
            log.info("debug video in %.1f s", time.perf_counter() - started)


if __name__ == "__main__":
    main("face", run)
