"""Probing and extraction of inputs, including every kind of bad input."""
from __future__ import annotations

import numpy as np
import pytest

from tasks.ingest import ingest
from tasks.media import probe, read_wav
from tasks.stage import StageError


def test_probe_reads_a_generated_clip(generated_clip):
    description = probe(generated_clip)
    assert (description.width, description.height) == (160, 120)
    assert description.fps == pytest.approx(25.0)
    assert description.frames == 50
    assert description.duration == pytest.approx(2.0, abs=0.05)


@pytest.mark.parametrize("fixture,message", [
    ("silent_clip", "no audio track"),
    ("not_a_video", "not a readable video"),
    ("truncated_clip", "not a readable video"),
])
def test_bad_inputs_raise_one_clear_error(request, fixture, message):
    with pytest.raises(StageError, match=message):
        probe(request.getfixturevalue(fixture))


def test_an_audio_file_with_cover_art_is_not_taken_for_a_video(generated_clip, tmp_path):
    from tasks.media import run_ffmpeg

    cover, song = tmp_path / "cover.jpg", tmp_path / "song.m4a"
    run_ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x64:duration=1", "-frames:v", "1", str(cover))
    run_ffmpeg("-i", str(generated_clip), "-i", str(cover), "-map", "0:a", "-map", "1:v", "-c:a", "copy", "-c:v", "mjpeg",
               "-disposition:v:0", "attached_pic", str(song))
    with pytest.raises(StageError, match=r"no video stream in .* \(only a cover picture\): the input must be a video"):
        probe(song)


def test_a_cover_picture_stored_first_is_not_taken_for_the_picture(generated_clip, tmp_path):
    """An MKV remuxed from a video with cover art can hold the cover as a plain one-frame MJPEG
    stream before the video (no attached-picture mark): it was read as the picture, a 64 x 64 video
    of one frame. The video stream is the picture; ingest copies it, as the stages read the first."""
    import cv2

    from tasks.media import run_ffmpeg
    from tasks.stage import picture_video

    cover = tmp_path / "cover.jpg"
    remuxed = tmp_path / "data" / "input" / "clip" / "remuxed.mkv"
    out = tmp_path / "data" / "ingest" / "clip"
    remuxed.parent.mkdir(parents=True)
    out.mkdir(parents=True)
    run_ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:duration=1", "-frames:v", "1", str(cover))
    run_ffmpeg("-i", str(cover), "-i", str(generated_clip), "-map", "0:v", "-map", "1:v", "-map", "1:a",
               "-c:v:0", "mjpeg", "-c:v:1", "copy", "-c:a", "copy", "-disposition:v:0", "0", "-disposition:v:1", "default",
               str(remuxed))
    reference, description = probe(generated_clip), probe(remuxed)
    assert description.video_stream == 1
    assert (description.width, description.height, description.frames) == (reference.width, reference.height, reference.frames)
    written = ingest(remuxed, out)
    assert picture_video(tmp_path, "clip") == out / "picture.mkv" and written.frames == reference.frames
    ok, frame = cv2.VideoCapture(str(out / "picture.mkv")).read()
    assert ok and frame.shape[:2] == (reference.height, reference.width)


@pytest.mark.parametrize("streams,expected", [
    ([("h264", False, True)], 0),                                        # one video
    ([("mjpeg", False, False)], 0),                                      # a Motion-JPEG camera video, alone
    ([("mjpeg", False, False), ("h264", False, False)], 1),              # a cover stored first, no marks
    ([("mjpeg", False, False), ("h264", False, True)], 1),               # ... the video marked default
    ([("png", True, False), ("h264", False, False)], 1),                 # an attached picture first
    ([("h264", False, False), ("mjpeg", True, False)], 0),               # MP4's way: the cover last
    ([("h264", False, False), ("hevc", False, True)], 1),                # two videos: the default one
    ([("mjpeg", True, False)], None),                                    # only a cover: no picture
])
def test_the_picture_is_the_video_stream_that_is_not_a_cover(streams, expected):
    import av

    from tasks.media import main_video

    class Stream:
        def __init__(self, codec, attached, default):
            self.codec_context = type("Codec", (), {"name": codec})()
            self.disposition = (av.stream.Disposition.attached_pic if attached else 0) | (
                av.stream.Disposition.default if default else 0)

    container = type("Container", (), {"streams": type("Streams", (), {"video": [Stream(*s) for s in streams]})()})()
    chosen = main_video(container)
    assert (None if chosen is None else chosen[0]) == expected


def test_the_default_soundtrack_is_the_one_dubbed(generated_clip, tmp_path):
    """A file with two soundtracks whose default is the second (a film with its commentary first):
    the second is what ingest extracts and the stages hear; 0:a:0 was taken whatever the marks."""
    from tasks.media import audio_stream, extract_audio, run_ffmpeg

    two = tmp_path / "two_tracks.mkv"
    run_ffmpeg("-i", str(generated_clip), "-f", "lavfi", "-i", "sine=frequency=300:sample_rate=16000:duration=2",
               "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=16000:duration=2",
               "-map", "0:v", "-map", "1:a", "-map", "2:a", "-c:v", "copy", "-c:a", "pcm_s16le",
               "-disposition:a:0", "0", "-disposition:a:1", "default", str(two))
    assert probe(two).audio_stream == 1 and audio_stream(two) == 1
    samples, rate = read_wav(extract_audio(two, tmp_path / "heard.wav", 16000, 1))
    spectrum = np.abs(np.fft.rfft(samples[:, 0]))
    assert np.fft.rfftfreq(len(samples), 1 / rate)[np.argmax(spectrum)] == pytest.approx(1000, abs=5)


@pytest.mark.parametrize("marks,expected", [
    ([()], 0),                                           # one soundtrack
    ([(), ()], 0),                                       # no marks: the first
    ([(), ("default",)], 1),                             # the default one, wherever it is
    ([("comment",), ()], 1),                             # commentary first, nothing marked default
    ([("default", "comment"), ()], 0),                   # marked default: taken as it says
    ([], None),                                          # none
])
def test_the_sound_to_dub_is_the_default_soundtrack(marks, expected):
    import av

    from tasks.media import main_audio

    class Stream:
        def __init__(self, names):
            self.disposition = 0
            for name in names:
                self.disposition |= getattr(av.stream.Disposition, name)

    container = type("Container", (), {"streams": type("Streams", (), {"audio": [Stream(m) for m in marks]})()})()
    heard = main_audio(container)
    assert (None if heard is None else heard[0]) == expected


def test_missing_file(tmp_path):
    with pytest.raises(StageError, match="input not found"):
        probe(tmp_path / "nope.mp4")


def test_ingest_writes_probe_and_both_audio_tracks(generated_clip, tmp_path):
    description = ingest(generated_clip, tmp_path)
    speech, rate = read_wav(tmp_path / "audio.wav")
    track, track_rate = read_wav(tmp_path / "soundtrack.wav")
    assert rate == 16000 and speech.shape[1] == 1
    assert track_rate == 44100 and track.shape[1] == description.audio_channels
    assert len(speech) / rate == pytest.approx(2.0, abs=0.1)
    assert (tmp_path / "probe.json").exists()
    assert not (tmp_path / "background.wav").exists(), "no separator configured: no background"


def test_the_configured_background_is_the_soundtrack_without_its_speech(generated_clip, tmp_path):
    from tasks.stage import instantiate
    from tests.test_config import compose

    separator = instantiate(compose([])["ingest"], "background")
    ingest(generated_clip, tmp_path, background=separator)
    track, rate = read_wav(tmp_path / "soundtrack.wav")
    background, background_rate = read_wav(tmp_path / "background.wav")
    assert background_rate == rate and background.shape == track.shape
    # the clip's sound is a steady 440 Hz tone, not speech: it stays (over 0.5 s in, the enhancer settled)
    level = lambda x: float(np.sqrt(np.mean(x[rate // 2:] ** 2)))  # noqa: E731
    assert level(background) == pytest.approx(level(track), rel=0.25)


def test_ingest_takes_a_photo_video_like_any_video(tmp_path, tone):
    """A still photo becomes an ordinary input: ingest extracts its speech at full length."""
    from PIL import Image

    from tasks.ingest.photo import PhotoSettings, build_video
    from tasks.media import write_wav

    Image.new("RGB", (99, 75), (180, 140, 120)).save(tmp_path / "portrait.png")
    speech = write_wav(tmp_path / "speech.wav", tone(1.2, 24000), 24000)
    video = build_video(tmp_path / "portrait.png", speech, tmp_path / "portrait.mp4", PhotoSettings())
    description = ingest(video, tmp_path / "ingest")
    extracted, rate = read_wav(tmp_path / "ingest" / "audio.wav")
    assert (description.width, description.height, description.audio_channels) == (98, 74, 1)
    assert len(extracted) / rate == pytest.approx(1.2, abs=0.05)
    assert np.abs(extracted).max() > 0.1, "the speech survives the round trip"


@pytest.mark.parametrize("video_offset,expected_delay,shift", [
    (0.5, 0.5, 0.5), (-0.4, -0.4, -0.4), (0.0, 0.0, 0.0),
    (0.04, 0.04, 0.0),  # about one frame: a B-frame reorder delay, recorded but not applied
])
def test_audio_is_aligned_to_the_first_picture(tmp_path, video_offset, expected_delay, shift):
    """A container whose picture starts after (or before) its sound: the extracted audio is cut
    (or padded) so that its time 0 is the first frame, as every stage times frame k at k / fps."""
    from tasks.media import run_ffmpeg

    source = tmp_path / "offset.mp4"
    shifted = ["-itsoffset", str(abs(video_offset))] if video_offset else []
    video = [*(shifted if video_offset > 0 else []), "-f", "lavfi", "-i", "testsrc=size=160x120:rate=25:duration=2"]
    audio = [*(shifted if video_offset < 0 else []), "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=2"]
    run_ffmpeg(*video, *audio, "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-c:a", "aac", str(source))
    description = ingest(source, tmp_path / "out")
    assert description.video_delay == pytest.approx(expected_delay, abs=0.03)
    speech, rate = read_wav(tmp_path / "out" / "audio.wav")
    assert len(speech) / rate == pytest.approx(2.0 - shift, abs=0.05)
    if shift < 0:  # the padded start is silent
        assert np.abs(speech[: int(0.3 * rate)]).max() < 1e-3


@pytest.mark.parametrize("rotation,displayed", [(90, (120, 160)), (-90, (120, 160)), (180, (160, 120)), (0, (160, 120))])
def test_a_phone_video_is_described_as_displayed(generated_clip, tmp_path, rotation, displayed):
    """A portrait phone video is stored landscape with a display rotation; ffmpeg and OpenCV, which
    read the frames for every stage, hand them over turned, so the probe gives the turned size (the
    lipsync stage read 720 x 1080 frames as 1080 x 720 ones and wrote stripes)."""
    import cv2

    from tasks.lipsync.__main__ import decode
    from tasks.media import run_ffmpeg

    turned = tmp_path / "phone.mp4"
    run_ffmpeg("-display_rotation", str(rotation), "-i", str(generated_clip), "-c", "copy", str(turned))
    description = probe(turned)
    assert (description.width, description.height) == displayed
    assert description.rotation == rotation % 360
    capture = cv2.VideoCapture(str(turned))
    ok, first = capture.read()
    assert ok and first.shape[:2] == displayed[::-1]                 # what the face stage sees
    frame = next(decode(turned, description.width, description.height))
    expected = cv2.cvtColor(first, cv2.COLOR_BGR2YUV_I420)
    assert np.abs(frame.astype(int) - expected).mean() < 3           # what the lipsync stage reads: the same picture


@pytest.mark.parametrize("steps,expected", [
    ([1] * 20, True),                          # constant
    ([1, 2] * 10, True),                       # an even pattern of skipped frames (frontal_man_suit.mp4)
    ([1] * 10 + [2] + [1] * 10, True),         # one frame lost
    ([1] * 10 + [20] + [1] * 10, False),       # a stall: everything after it 19 frames late
    ([1] * 10 + [2] * 10 + [1] * 10, False),   # a dim stretch at half the rate
])
def test_a_variable_frame_rate_is_told_from_a_steady_one(steps, expected):
    from tasks.media import constant_rate

    times = np.concatenate([[0.0], np.cumsum(steps)]) / 25.0
    average = len(steps) / times[-1]            # the container's rate: frames over duration
    assert constant_rate(times, average) == expected


def test_a_variable_rate_video_is_read_at_a_constant_rate(generated_clip, tmp_path):
    """A second of frames missing in the middle (a stall): the stages time frame k at k / fps, so
    ingest writes the picture at 25 fps with the last frame before the stall held through it."""
    import cv2

    from tasks.media import run_ffmpeg
    from tasks.stage import picture_video

    stalled = tmp_path / "data" / "input" / "clip" / "stall.mp4"
    out = tmp_path / "data" / "ingest" / "clip"
    stalled.parent.mkdir(parents=True)
    out.mkdir(parents=True)
    run_ffmpeg("-i", str(generated_clip), "-vf", r"select=not(between(n\,10\,34))", "-fps_mode", "vfr", "-c:a", "copy", str(stalled))
    description = probe(stalled)
    assert not description.constant_rate and description.fps == pytest.approx(25.0)
    written = ingest(stalled, out)
    assert written.frames == pytest.approx(50, abs=1) and picture_video(tmp_path, "clip") == out / "picture.mkv"
    capture = cv2.VideoCapture(str(out / "picture.mkv"))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame.astype(int))
    assert len(frames) == written.frames
    held = [np.abs(frames[k] - frames[9]).mean() for k in range(10, 34)]
    assert max(held) < 1.0 and np.abs(frames[40] - frames[9]).mean() > 1.0   # frame 9 held through the stall


def test_an_odd_size_is_cropped_to_an_even_one_for_the_stages(tmp_path):
    """yuv420p, which the lipsync stage and the delivery encode write, needs an even size: a source of
    161 x 121 is read as 160 x 120 (before, the lipsync stage refused it after every stage before it
    had run)."""
    import cv2

    from tasks.media import run_ffmpeg
    from tasks.stage import picture_video

    odd = tmp_path / "data" / "input" / "clip" / "odd.mkv"
    out = tmp_path / "data" / "ingest" / "clip"
    odd.parent.mkdir(parents=True)
    out.mkdir(parents=True)
    run_ffmpeg("-f", "lavfi", "-i", "testsrc=size=161x121:rate=25:duration=1", "-f", "lavfi",
               "-i", "sine=frequency=440:sample_rate=44100:duration=1", "-c:v", "ffv1", "-c:a", "pcm_s16le", str(odd))
    assert (probe(odd).width, probe(odd).height) == (161, 121)
    written = ingest(odd, out)
    assert (written.width, written.height, written.frames) == (160, 120, 25) and written.duration == pytest.approx(1.0)
    ok, frame = cv2.VideoCapture(str(picture_video(tmp_path, "clip"))).read()
    assert ok and frame.shape[:2] == (120, 160)
