"""Audio and video I/O shared by the stages: ffmpeg (shipped by imageio-ffmpeg) and PyAV probing."""
from __future__ import annotations

import subprocess
from functools import lru_cache
from pathlib import Path

import numpy as np

from tasks.artifacts import Probe, atomic_path
from tasks.stage import StageError

SPEECH_RATE = 16_000
# Start offsets up to a few frames are what H.264 B-frame reordering leaves in containers without an
# edit list (frontal_man_suit.mp4: 33 ms, and its lip-sync measure agrees better without the shift);
# longer ones are real (stage_mic_cuts.mp4: 0.844 s, where honouring it turns the own-audio closure
# excess from -0.09 to 0.43).
TRUSTED_VIDEO_DELAY_S = 0.1


@lru_cache(maxsize=1)
def ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def run_ffmpeg(*args: str) -> None:
    command = [ffmpeg(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise RuntimeError(f"ffmpeg failed ({detail}): {' '.join(command)}")


def probe(path: Path | str) -> Probe:
    """Describe a video file, or raise StageError saying in one line why it cannot be dubbed."""
    import av

    path = Path(path)
    if not path.exists():
        raise StageError(f"input not found: {path}")
    if not path.is_file():
        raise StageError(f"input is not a file: {path}")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as error:
        raise StageError(f"not a readable video file: {path} ({error.__class__.__name__})") from None
    with container:
        chosen = main_video(container)
        if chosen is None:  # an audio file's cover art is a video stream of one picture
            covers = " (only a cover picture)" if container.streams.video else ""
            raise StageError(f"no video stream in {path}{covers}: the input must be a video")
        heard = main_audio(container)
        if heard is None:
            raise StageError(f"no audio track in {path}: there is no speech to dub")
        (index, video), (audio_index, audio) = chosen, heard
        if not video.average_rate or not video.width:
            raise StageError(f"video stream of {path} has no frame rate or size: is the file complete?")
        times = _frame_times(container, video)
        frames = len(times)
        if frames == 0:
            raise StageError(f"no decodable video frames in {path}")
        fps = float(video.average_rate)
        steady = constant_rate(times, fps)
        if not steady:
            # the container's average rate is frames / duration; the picture is resampled to the
            # typical frame interval's rate (ingest writes it, see `picture_copy`)
            fps = round(typical_rate(times, fps), 3)
            frames = int(round((times[-1] - times[0]) * fps)) + 1
        duration = float(video.duration * video.time_base) if video.duration and steady else frames / fps
        rotation = _display_rotation(container, video)
        turned = rotation in (90, 270)
        return Probe(
            path=str(path),
            width=video.height if turned else video.width,
            height=video.width if turned else video.height,
            fps=fps,
            frames=frames,
            duration=round(duration, 6),
            video_codec=video.codec_context.name,
            audio_codec=audio.codec_context.name,
            audio_rate=audio.codec_context.sample_rate or 0,
            audio_channels=audio.codec_context.channels or 1,
            video_delay=round(_delay(video, audio), 6),
            rotation=rotation,
            constant_rate=steady,
            video_stream=index,
            audio_stream=audio_index,
        )


STILL_CODECS = frozenset({"mjpeg", "png", "bmp", "gif", "webp", "tiff"})  # what cover pictures are stored as


def main_video(container):
    """(position among the video streams, stream) of the picture to dub, or None where there is
    only cover art: an attached picture is never it; of the rest, a default stream first, then one
    not in a still-picture codec, then the first. MP4 marks its cover as an attached picture and puts
    it last, but a file remuxed to MKV can keep it as a plain one-frame MJPEG stream in first place
    (a Motion-JPEG camera video, alone, is still chosen)."""
    import av

    candidates = [(index, stream) for index, stream in enumerate(container.streams.video)
                  if not stream.disposition & av.stream.Disposition.attached_pic]
    if not candidates:
        return None

    def rank(candidate):
        index, stream = candidate
        return (not stream.disposition & av.stream.Disposition.default, stream.codec_context.name in STILL_CODECS, index)

    return min(candidates, key=rank)


ASIDE_DISPOSITIONS = ("comment", "descriptions", "visual_impaired", "hearing_impaired")  # tracks beside the programme


def main_audio(container):
    """(position among the audio streams, stream) of the sound to dub, or None without one: a
    default stream first, then one not marked as commentary or description, then the first. A film
    with several soundtracks marks the programme's own as the default, which need not come first."""
    import av

    tracks = list(enumerate(container.streams.audio))
    if not tracks:
        return None
    aside = 0
    for name in ASIDE_DISPOSITIONS:
        aside |= getattr(av.stream.Disposition, name, 0)

    def rank(track):
        index, stream = track
        return (not stream.disposition & av.stream.Disposition.default, bool(stream.disposition & aside), index)

    return min(tracks, key=rank)


def constant_rate(times: np.ndarray, fps: float, tolerance_frames: float = 1.5) -> bool:
    """Whether frames shown at `times` (seconds, sorted) stay within `tolerance_frames` of where
    frame k / `fps` puts them: every stage times frame k at k / fps. Phones drop frames in dim light,
    screen recorders skip still ones, and their timestamps drift from k / fps by whole seconds; an
    even pattern of skipped frames (frontal_man_suit.mp4: steps of 1 and 2 thirtieths, 22.1 fps on
    average, 0.6 frames at most from k / fps) and a single lost frame are within it."""
    times = np.asarray(times, dtype=np.float64)
    if len(times) < 2 or fps <= 0:
        return True
    drift = (times - times[0]) - np.arange(len(times)) / fps
    return bool(np.abs(drift).max() <= tolerance_frames / fps)


def typical_rate(times: np.ndarray, fallback: float) -> float:
    """The rate of the typical frame interval of frames shown at `times` (1 / median positive step);
    `fallback` where no two differ."""
    steps = np.diff(np.asarray(times, dtype=np.float64))
    steps = steps[steps > 0]
    return float(1.0 / np.median(steps)) if steps.size else float(fallback)


def picture_copy(source: Path, target: Path, fps: float | None, width: int, height: int, stream: int = 0) -> int:
    """Write the picture of `source` (its video stream `stream`, counted among its video streams:
    `Probe.video_stream`) as the stages need it: at a constant `fps` (each instant shows
    the frame on screen then: frames repeated or dropped; None: its own frames, one for one, for a
    source that is steady already), `width` x `height` (an odd size cropped by
    a pixel: yuv420p, which the lipsync stage and the delivery encode write, needs an even one),
    turned as displayed, without audio, at x264 CRF 10: far under the final encode's loss (CRF 18), a
    tenth of a lossless file's size (DVC keeps a copy of it too). Returns its frame count."""
    import av

    with atomic_path(target) as tmp:
        timing = ["-fps_mode", "cfr", "-r", f"{fps:.6f}"] if fps else ["-fps_mode", "passthrough"]
        run_ffmpeg("-i", str(source), "-map", f"0:v:{stream}", "-an", "-vf", f"crop={width}:{height}:0:0", *timing,
                   "-c:v", "libx264", "-crf", "10", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-f", "matroska", str(tmp))
    with av.open(str(target)) as container:
        return len(_frame_times(container, container.streams.video[0]))


def _display_rotation(container, video) -> int:
    """Degrees (0, 90, 180 or 270) the first picture is turned for display: a phone's portrait video
    is stored landscape with a display matrix, and ffmpeg and OpenCV hand its frames over turned."""
    container.seek(0)
    try:
        for frame in container.decode(video):
            return int(round(float(getattr(frame, "rotation", 0) or 0))) % 360
    except Exception:  # a stream that decodes no picture is refused by the frame count, not here
        return 0
    return 0


def _delay(video, audio) -> float:
    def start(stream) -> float:
        return float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0

    return start(video) - start(audio)


def video_delay(path: Path | str) -> float:
    """How much later than the audio the first picture of `path` is shown (0 without video)."""
    import av

    with av.open(str(path)) as container:
        chosen, heard = main_video(container), main_audio(container)
        if chosen is None or heard is None:
            return 0.0
        return _delay(chosen[1], heard[1])


def _frame_times(container, video) -> np.ndarray:
    """Every video packet's presentation time (seconds, sorted), by demuxing (cheap: nothing is
    decoded), as stream headers can lie about the count and a variable rate is only seen here."""
    times = []
    container.seek(0)
    try:
        for packet in container.demux(video):
            if packet.size:
                times.append(float(packet.pts * video.time_base) if packet.pts is not None else np.nan)
    except Exception as error:  # a truncated file demuxes part-way, then fails
        raise StageError(f"video stream is corrupt after {len(times)} frames: {error.__class__.__name__}") from None
    times = np.asarray(times, dtype=np.float64)
    if np.isnan(times).any():   # no timestamps to judge by: take the stream as constant-rate
        rate = float(video.average_rate or 25)
        return np.arange(len(times)) / rate
    return np.sort(times)


def audio_stream(path: Path | str) -> int:
    """The position among the audio streams of `path` of the one to dub (`main_audio`; 0 without one,
    or where PyAV cannot open it: ffmpeg then says why)."""
    import av

    try:
        with av.open(str(path)) as container:
            heard = main_audio(container)
    except (av.error.FFmpegError, UnicodeDecodeError, OSError):
        return 0
    return 0 if heard is None else heard[0]


def extract_audio(source: Path, target: Path, rate: int | None, channels: int | None) -> Path:
    """Decode the audio track to dub (`main_audio`) to 16-bit WAV, resampled/remixed where asked, and
    aligned to the first picture: audio before it is cut, a late audio start is padded with silence,
    because every stage times frame k at k / fps and the render starts picture and sound together
    (offsets below TRUSTED_VIDEO_DELAY_S are left alone)."""
    args = ["-i", str(source), "-map", f"0:a:{audio_stream(source)}", "-vn", "-c:a", "pcm_s16le"]
    delay = video_delay(source)
    if delay >= TRUSTED_VIDEO_DELAY_S:
        args += ["-af", f"atrim=start={delay:.6f},asetpts=PTS-STARTPTS"]
    elif delay <= -TRUSTED_VIDEO_DELAY_S:
        args += ["-af", f"adelay={-delay * 1000:.1f}:all=1"]
    if rate:
        args += ["-ar", str(rate)]
    if channels:
        args += ["-ac", str(channels)]
    with atomic_path(target) as tmp:
        run_ffmpeg(*args, "-f", "wav", str(tmp))
    return target


def read_wav(path: Path | str) -> tuple[np.ndarray, int]:
    """Float32 samples shaped (samples, channels) and the sample rate."""
    import soundfile

    data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    return data, rate


def write_wav(path: Path | str, samples: np.ndarray, rate: int) -> Path:
    import soundfile

    path = Path(path)
    with atomic_path(path) as tmp:
        soundfile.write(str(tmp), np.clip(samples, -1.0, 1.0), rate, subtype="PCM_16", format="WAV")
    return path


def resample(samples: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    if source_rate == target_rate:
        return samples.astype(np.float32)
    from math import gcd

    from scipy.signal import resample_poly

    divisor = gcd(source_rate, target_rate)
    return resample_poly(samples, target_rate // divisor, source_rate // divisor, axis=0).astype(np.float32)
