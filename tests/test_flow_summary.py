"""The run's summary table (flows/summary.py): what each language's dub came out as."""
from __future__ import annotations

import json

import pytest

from flows.summary import artifact_key, corrected_lines, faces_edited, language_row, speaker_voices, summary_markdown

METRICS = {"wer": 0.133, "language_ok": 1.0, "ends_within_300ms": 1.0, "max_speed": 1.4,
           "lipsync_closure_excess": 0.46, "source_lipsync_closure_excess": 0.59,
           "lipsync_aperture_contrast": 0.52, "source_lipsync_aperture_contrast": 0.35}


@pytest.mark.parametrize("metrics, cells", [
    (METRICS, ["13.3%", "yes", "100%", "1.40x", "0.46 / 0.59 (0.78x)", "0.52 / 0.35 (1.49x) | -"]),
    ({**METRICS, "language_ok": 0.0, "source_lipsync_closure_excess": 0.0}, ["no", "0.46 / 0.00"]),
    ({**METRICS, "source_still": 1.0}, ["| 0.46 / still picture | 0.52 / still picture |"]),   # a photo: no reference
    ({**METRICS, "source_still": 0.0}, ["0.46 / 0.59 (0.78x)"]),
    ({**METRICS, "lipsync_releases": 5, "lipsync_releases_seen": 4, "lipsync_release_offset_ms": 14}, ["| +14 ms (4 of 5) |"]),
    ({**METRICS, "lipsync_releases": 3, "lipsync_releases_seen": 0}, ["| - (0 of 3) |"]),   # no reopening seen
    ({"wer": 0.5}, ["50.0%", "| - |"]),                        # lip sync switched off: dashes
    ({}, ["| - | - | - | - | - | - | - |"]),                 # no metrics at all
])
def test_language_row(metrics, cells):
    row = language_row("es", "data/render/v/es/v.es.mp4", "made", metrics, "1 of 3", "S0 kokoro-jm_kumo", "S0 face 0, 90 frames")
    assert row.startswith("| es | `data/render/v/es/v.es.mp4` | made | S0 kokoro-jm_kumo | S0 face 0, 90 frames | 1 of 3 |")
    assert row.endswith(" |") and row.count(" | ") == 12
    for cell in cells:
        assert cell in row


@pytest.mark.parametrize("translation, cell", [
    ({"segments": [{"text": "a", "edited": True}, {"text": "b"}, {"text": "c", "edited": False}]}, "1 of 3"),
    ({"segments": []}, "0 of 0"),
    ({}, "-"),
])
def test_corrected_lines(translation, cell):
    assert corrected_lines(translation) == cell


@pytest.mark.parametrize("segments, cell", [
    ({"segments": [{"speaker": "S1", "voice": "kokoro-jm_kumo-es"}, {"speaker": "S0", "voice": "kokoro-jf_nezumi+jm_kumo-es"},
                   {"speaker": "S1", "voice": "kokoro-jm_kumo-es"}]}, "S0 kokoro-jf_nezumi+jm_kumo, S1 kokoro-jm_kumo"),
    ({"segments": [{"speaker": "S0", "voice": "kokoro-jf_alpha:0.43+jm_kumo:0.589|jf_alpha:-0.027+jm_kumo:0.196-es"}]}, "S0 fitted"),
    ({}, "-"),
])
def test_speaker_voices_name_each_speakers_voice_as_a_cast_would(segments, cell):
    assert speaker_voices(segments, "es") == cell


def test_summary_reads_each_language_metrics(tmp_path):
    folder = tmp_path / "data" / "evaluate" / "talk" / "es"
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps(METRICS))
    mt = tmp_path / "data" / "mt" / "talk" / "es"
    mt.mkdir(parents=True)
    (mt / "translation.json").write_text(json.dumps({"segments": [{"text": "a", "edited": True}, {"text": "b"}]}))
    text = summary_markdown("talk", tmp_path, {"es": "a.mp4", "pt": "b.mp4"}, {"es": "made", "pt": "up to date"})
    rows = [line for line in text.splitlines() if line.startswith("| es") or line.startswith("| pt")]
    assert len(rows) == 2 and "13.3%" in rows[0] and "up to date" in rows[1] and "13.3%" not in rows[1]
    assert "| made | - | - | 1 of 2 |" in rows[0] and "| up to date | - | - | - |" in rows[1]
    assert all(row.count(" | ") == text.splitlines()[2].count(" | ") for row in rows)   # as many cells as headers


def lipsync_track(track, speaker, edited, held=0):
    return {"track": track, "speaker": speaker, "frames_edited": edited, "held_at_rest": held}


@pytest.mark.parametrize("report, basis, cell", [
    ({"tracks": [lipsync_track(0, "S0", 250, 49)]}, {"S0": "sync"}, "S0 face 0, 250 frames (49 at rest)"),
    ({"tracks": [lipsync_track(1, "S0", 44), lipsync_track(0, "S1", 86)]},
     {"S0": "still picture: stereo", "S1": "still picture: stereo"},
     "S0 face 1, 44 frames [still picture: stereo]; S1 face 0, 86 frames [still picture: stereo]"),
    ({"tracks": [lipsync_track(2, "S0", 10)], "unmatched_speakers": ["S1"]}, {"S0": "chosen"},
     "S0 face 2, 10 frames [chosen]; S1 no face"),
    ({"tracks": [lipsync_track(0, "S0", 12)]}, {}, "S0 face 0, 12 frames"),       # tracks.json of before the basis
    ({}, {"S0": "sync"}, "-"),                                                   # no lipsync report
])
def test_faces_moved_say_which_face_each_voice_moved_and_why(report, basis, cell):
    assert faces_edited(report, {"speaker_basis": basis}) == cell


@pytest.mark.parametrize("video, key", [
    ("frontal_man_suit", "dub-frontal-man-suit"),
    ("Talk 2.final", "dub-talk-2-final"),
    ("___", "dub-video"),
])
def test_artifact_key(video, key):
    assert artifact_key(video) == key
