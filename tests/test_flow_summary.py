"""The run's summary table (flows/summary.py): what each language's dub came out as."""
from __future__ import annotations

import json

import pytest

from flows.summary import artifact_key, corrected_lines, language_row, summary_markdown

METRICS = {"wer": 0.133, "language_ok": 1.0, "ends_within_300ms": 1.0, "max_speed": 1.4,
           "lipsync_closure_excess": 0.46, "source_lipsync_closure_excess": 0.59,
           "lipsync_aperture_contrast": 0.52, "source_lipsync_aperture_contrast": 0.35}


@pytest.mark.parametrize("metrics, cells", [
    (METRICS, ["13.3%", "yes", "100%", "1.40x", "0.46 / 0.59 (0.78x)", "0.52 / 0.35 (1.49x)"]),
    ({**METRICS, "language_ok": 0.0, "source_lipsync_closure_excess": 0.0}, ["no", "0.46 / 0.00"]),
    ({"wer": 0.5}, ["50.0%", "| - |"]),                        # lip sync switched off: dashes
    ({}, ["| - | - | - | - | - | - |"]),                     # no metrics at all
])
def test_language_row(metrics, cells):
    row = language_row("es", "data/render/v/es/v.es.mp4", "made", metrics, "1 of 3")
    assert row.startswith("| es | `data/render/v/es/v.es.mp4` | made | 1 of 3 |") and row.endswith(" |")
    assert row.count(" | ") == 9
    for cell in cells:
        assert cell in row


@pytest.mark.parametrize("translation, cell", [
    ({"segments": [{"text": "a", "edited": True}, {"text": "b"}, {"text": "c", "edited": False}]}, "1 of 3"),
    ({"segments": []}, "0 of 0"),
    ({}, "-"),
])
def test_corrected_lines(translation, cell):
    assert corrected_lines(translation) == cell


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
    assert "| made | 1 of 2 |" in rows[0] and "| up to date | - |" in rows[1]
    assert all(row.count(" | ") == text.splitlines()[2].count(" | ") for row in rows)   # as many cells as headers


@pytest.mark.parametrize("video, key", [
    ("frontal_man_suit", "dub-frontal-man-suit"),
    ("Talk 2.final", "dub-talk-2-final"),
    ("___", "dub-video"),
])
def test_artifact_key(video, key):
    assert artifact_key(video) == key
