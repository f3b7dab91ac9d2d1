"""The real pipeline, end to end, on a real clip: Prefect flow, DVC stages, real models, real ffmpeg.

One workspace is shared by the tests below, in order: the first dub, a rerun that must reuse
everything, a config change that must rerun only the stages downstream of it, an interrupted run
that must resume, and bad inputs that must fail in one line and write nothing.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tasks.media import probe
from tests.conftest import make_workspace, run_dub, shared_media

pytestmark = pytest.mark.slow
CLIP = "video/frontal_man_suit.mp4"
LANGS = ["pt", "es"]


def downstream(stage: str) -> set[str]:
    """`stage` and every stage that depends on it, by the flow's DAG."""
    from flows.dag import DAG

    found = {stage}
    for name, needs in DAG.items():
        if found & set(needs):
            found.add(name)
    return found


def ran_stages(output: str) -> set[str]:
    """Stage items the flow actually ran (it logs `running -m tasks.<stage> --video V [--lang L]`)."""
    found = re.findall(r"running -m tasks\.(\w+) --video (\w+)(?: --lang (\w+))?", output)
    return {f"{stage}@{video}-{lang}" if lang else f"{stage}@{video}" for stage, video, lang in found}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    return make_workspace(tmp_path_factory.mktemp("workspace"))


def dub(workspace: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return run_dub(workspace, *args, timeout=timeout)


@pytest.fixture(scope="module")
def clip() -> Path:
    return shared_media(CLIP)


@pytest.fixture(scope="module")
def first_run(workspace, clip):
    result = dub(workspace, f"input={clip}", f"langs=[{','.join(LANGS)}]")
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_the_run_ends_with_its_summary(first_run):
    log = first_run.stdout + first_run.stderr
    assert "# Dubbed: frontal_man_suit" in log
    assert all(f"| {lang} | `" in log for lang in LANGS)


@pytest.mark.parametrize("lang", LANGS)
def test_dubbed_video_keeps_the_picture_and_speaks_the_language(workspace, clip, first_run, lang):
    source = probe(clip)
    output = workspace / "data" / "render" / "frontal_man_suit" / lang / f"frontal_man_suit.{lang}.mp4"
    result = probe(output)
    assert (result.width, result.height) == (source.width, source.height)
    assert abs(result.frames - source.frames) <= 1
    assert abs(result.duration - source.duration) <= 1 / source.fps
    metrics = json.loads((workspace / "data" / "evaluate" / "frontal_man_suit" / lang / "metrics.json").read_text())
    assert metrics["language_ok"] == 1.0, metrics
    assert metrics["wer"] <= 0.30, metrics
    plot = workspace / "data" / "evaluate" / "frontal_man_suit" / lang / "lipsync.png"
    assert plot.read_bytes()[:4] == b"\x89PNG" and plot.stat().st_size > 20_000   # two panels of curves
    voiced = json.loads((workspace / "data" / "tts" / "frontal_man_suit" / lang / "segments.json").read_text())["segments"]
    subtitles = output.with_suffix(".srt").read_text(encoding="utf-8")
    assert " ".join(subtitles.split()).count(" --> ") == len([s for s in voiced if s["text"].strip()])
    assert all(" ".join(s["text"].split()) in " ".join(subtitles.split()) for s in voiced)


def test_the_dub_plays_over_the_soundtrack_without_its_speech(workspace, first_run):
    from tasks.media import read_wav

    ingested = workspace / "data" / "ingest" / "frontal_man_suit"
    track, rate = read_wav(ingested / "soundtrack.wav")
    background, _ = read_wav(ingested / "background.wav")
    assert background.shape == track.shape
    speech = slice(int(0.3 * rate), int(2.0 * rate))   # "My biggest weakness is asking for help"
    left_db = 10 * np.log10(np.mean(background[speech] ** 2) / np.mean(track[speech] ** 2))
    assert left_db < -20.0, f"{left_db:.1f} dB of the speech is left under the dub"


def test_the_source_is_measured_once_for_every_language(workspace, first_run):
    from tasks import artifacts
    from tasks.artifacts import SourceLipSync

    assert ran_stages(first_run.stdout + first_run.stderr) >= {"reference@frontal_man_suit"}
    reading = artifacts.read(workspace / "data" / "reference" / "frontal_man_suit" / "report.json", SourceLipSync)
    assert reading.measured and reading.language == "en" and reading.scores["closures"] > 0
    source = probe(workspace / "data" / "input" / "frontal_man_suit" / "frontal_man_suit.mp4")
    assert len(reading.opening) == pytest.approx(reading.fps * source.duration, abs=2)   # a constant-rate grid
    for lang in LANGS:
        metrics = json.loads((workspace / "data" / "evaluate" / "frontal_man_suit" / lang / "metrics.json").read_text())
        assert metrics["source_lipsync_closure_excess"] == reading.scores["closure_excess"]
        assert metrics["source_lipsync_aperture_contrast"] == reading.scores["aperture_contrast"]


def test_rerun_does_no_model_work(workspace, clip, first_run):
    lock_before = (workspace / "dvc.lock").stat().st_mtime_ns
    started = time.perf_counter()
    result = dub(workspace, f"input={clip}", f"langs=[{','.join(LANGS)}]")
    elapsed = time.perf_counter() - started
    assert result.returncode == 0, result.stderr[-3000:]
    assert ran_stages(result.stdout + result.stderr) == set()
    assert (workspace / "dvc.lock").stat().st_mtime_ns == lock_before
    assert "Cached" in result.stdout + result.stderr
    print(f"no-op rerun took {elapsed:.1f} s")


def test_status_shows_a_changed_stage_and_its_downstream_stale(workspace, clip, first_run):
    result = dub(workspace, "status", f"input={clip}", "langs=[pt]", "mt=apertium")
    assert result.returncode == 0, result.stderr[-3000:]
    header, row = [line.split() for line in result.stdout.strip().splitlines()[-2:]]
    verdicts = dict(zip(header[2:], " ".join(row[2:]).replace("up to date", "up-to-date").split()))
    from tasks.stage import STAGES

    assert {stage for stage in STAGES if verdicts[stage] == "stale"} == downstream("mt"), verdicts
    assert verdicts["asr"] == "up-to-date"


def test_changing_mt_config_reruns_only_mt_and_downstream(workspace, clip, first_run):
    result = dub(workspace, f"input={clip}", "langs=[pt]", "mt=apertium")
    assert result.returncode == 0, result.stderr[-3000:]
    assert ran_stages(result.stdout + result.stderr) == {f"{s}@frontal_man_suit-pt" for s in downstream("mt")}


def test_run_killed_during_tts_resumes_from_tts(workspace, clip, first_run):
    env = {**os.environ, "DUB_ROOT": str(workspace), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "flows.cli", f"input={clip}", "langs=[pt]", "tts.timing.max_speed=1.3"],
                               cwd=workspace, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    seen = ""
    deadline = time.monotonic() + 300
    while "running -m tasks.tts" not in seen and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen += line
    assert "running -m tasks.tts" in seen, seen[-3000:]
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    result = dub(workspace, f"input={clip}", "langs=[pt]", "tts.timing.max_speed=1.3")
    assert result.returncode == 0, result.stderr[-3000:]
    assert ran_stages(result.stdout + result.stderr) == {f"{s}@frontal_man_suit-pt" for s in downstream("tts")}
    assert not list((workspace / "data" / "tts" / "frontal_man_suit").glob(".pt.*")), "the killed run's temp folder is left"


def test_a_cast_voice_is_said_without_an_audition_and_redoes_from_tts(workspace, clip, first_run):
    """A person casts the speaker's Portuguese voice: only the Portuguese chain from tts reruns, and
    every line is said by that voice (converted toward the speaker as the matched ones are)."""
    result = dub(workspace, f"input={clip}", "langs=[pt]", "tts.timing.max_speed=1.3", "+tts.cast.pt.S0=kokoro-jf_alpha")
    assert result.returncode == 0, result.stderr[-3000:]
    assert ran_stages(result.stdout + result.stderr) == {f"{s}@frontal_man_suit-pt" for s in downstream("tts")}
    segments = json.loads((workspace / "data" / "tts" / "frontal_man_suit" / "pt" / "segments.json").read_text())["segments"]
    assert {segment["voice"] for segment in segments} == {"kokoro-jf_alpha-pt"}
    assert "as cast (tts.cast)" in result.stdout + result.stderr


def test_corrected_translation_redoes_only_its_language_and_is_kept(workspace, clip, first_run, tmp_path):
    """A person's correction of one Portuguese line: that language is voiced and rendered again with
    it, Spanish is not (its mt reruns and gives the same translation), and a later run keeps it."""
    args = (f"input={clip}", "langs=[pt,es]", "tts.timing.max_speed=1.3")
    assert dub(workspace, *args).returncode == 0     # the state to change from (the last test's settings)
    correction = "Olá a todos, isto é um teste."
    fix = tmp_path / "fix.yaml"
    fix.write_text(f"pt:\n  0: {correction}\n", encoding="utf-8")
    result = dub(workspace, *args, f"edits={fix}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert ran_stages(result.stdout + result.stderr) == {f"{s}@frontal_man_suit-{lang}" for s in downstream("mt") for lang in ["pt"]} | {
        "mt@frontal_man_suit-es"}
    translation = json.loads((workspace / "data" / "mt" / "frontal_man_suit" / "pt" / "translation.json").read_text())
    assert (translation["segments"][0]["text"], translation["segments"][0]["edited"]) == (correction, True)
    assert not any(segment["edited"] for segment in translation["segments"][1:])
    assert correction in (workspace / "data" / "render" / "frontal_man_suit" / "pt" / "frontal_man_suit.pt.srt").read_text()
    again = dub(workspace, *args)
    assert again.returncode == 0 and ran_stages(again.stdout + again.stderr) == set()


def test_a_bad_corrections_file_fails_in_one_line(workspace, clip, tmp_path):
    (tmp_path / "bad.yaml").write_text("portuguese:\n  0: Olá\n", encoding="utf-8")
    for edits, message in ((tmp_path / "missing.yaml", "edits file not found"), (tmp_path / "bad.yaml", "not a language code")):
        result = dub(workspace, f"input={clip}", "langs=[pt]", f"edits={edits}", timeout=120)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and message in lines[0], result.stderr


@pytest.mark.parametrize("make_input,langs,message", [
    (lambda d: d / "missing.mp4", "pt", "input not found"),
    (lambda d: (d / "notes.mp4").write_text("not a video") and d / "notes.mp4", "pt", "not a readable video"),
    ("silent_clip", "pt", "no audio track"),
    (lambda d: d / "missing.mp4", "xx", "unsupported target language xx"),
])
def test_bad_input_fails_in_one_line_and_writes_nothing(workspace, request, tmp_path, make_input, langs, message):
    path = request.getfixturevalue(make_input) if isinstance(make_input, str) else make_input(tmp_path)
    before = sorted(p.name for p in (workspace / "data" / "input").iterdir()) if (workspace / "data" / "input").exists() else []
    result = dub(workspace, f"input={path}", f"langs=[{langs}]", timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dub: error:") and message in lines[0], result.stderr
    after = sorted(p.name for p in (workspace / "data" / "input").iterdir()) if (workspace / "data" / "input").exists() else []
    assert after == before
