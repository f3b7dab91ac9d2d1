"""The dubbing flow: ingest → asr → … → (per language, in parallel) mt → tts → … → render → evaluate,
then the per-video stages that gather every language (multitrack), where they are switched on.

Each stage is a Prefect task that asks DVC whether the stage is stale; if it is, the task runs the
stage's own entry point (`python -m tasks.<stage>`, the very command in dvc.yaml) and then has DVC
record it in dvc.lock. A stage DVC finds up to date ends in a Completed state named "Cached", so
the UI shows what was reused. Prefect's result cache is off: DVC is the only judge of staleness.
"""
from __future__ import annotations

import io
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed
from prefect.task_runners import ThreadPoolTaskRunner

from flows import dvc
from flows.dag import DAG, FAN_IN, enabled_fan_in, entry_module
from flows.config import (PROJECT_ROOT, check_input, check_languages, compose, quoted, register, register_edits,
                          write_dvc_inputs)
from tasks.render import rendered_file
from tasks.stage import BAD_INPUT_EXIT, PER_LANGUAGE

RAN, CACHED = "ran", "cached"


class StageFailed(RuntimeError):
    def __init__(self, stage: str, returncode: int, detail: str):
        super().__init__(f"{stage} failed (exit {returncode}): {detail}")
        self.bad_input = returncode == BAD_INPUT_EXIT


def retry_unless_bad_input(task, task_run, state) -> bool:
    """Retry crashes and transient failures; a bad input fails the same way every time."""
    try:
        state.result()
    except StageFailed as error:
        return not error.bad_input
    except Exception:
        return True
    return False


def _pump(stream, terminal, logger, lines: list[str]) -> None:
    """Relay a stage's output: progress-bar redraws (ending in \r) to the terminal only, whole
    lines to the Prefect logger, which shows them in the terminal and in the UI."""
    buffer, redrawn = "", False
    for chunk in iter(lambda: stream.read(1), ""):
        if chunk == "\r":
            terminal.write("\r" + buffer)
            terminal.flush()
            buffer, redrawn = "", True
        elif chunk == "\n":
            if redrawn:
                terminal.write("\r" + " " * 100 + "\r")
            if buffer.strip():
                lines.append(buffer)
                logger.info(buffer)
            buffer, redrawn = "", False
        else:
            buffer += chunk
    if buffer.strip():
        lines.append(buffer)
        logger.info(buffer)


def run_entry(stage: str, video: str, lang: str | None, root: Path) -> None:
    command = [sys.executable, "-m", entry_module(stage), "--video", video] + (["--lang", lang] if lang else [])
    logger = get_run_logger()
    logger.info("running %s", " ".join(command[1:]))
    process = subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    # newline="" keeps the progress bars' carriage returns (text mode would turn them into newlines)
    output = io.TextIOWrapper(process.stdout, encoding="utf-8", errors="replace", newline="")
    lines: list[str] = []
    pump = threading.Thread(target=_pump, args=(output, sys.stderr, logger, lines), daemon=True)
    pump.start()
    returncode = process.wait()
    pump.join()
    if returncode != 0:
        errors = [line for line in lines if line.startswith("error:")] or lines[-1:] or ["no output"]
        raise StageFailed(stage, returncode, errors[-1].removeprefix("error: "))


@task(task_run_name="{stage}", cache_policy=NO_CACHE, retry_condition_fn=retry_unless_bad_input)
def run_stage(stage: str, video: str, lang: str | None, stale_at_start: list[str], upstream: list[str],
              root: str) -> Any:
    target = dvc.stage_name(stage, video, lang)
    if RAN in upstream:  # upstream outputs changed during this run: ask DVC again
        needed = dvc.is_stale(target, Path(root))
    else:
        needed = target in stale_at_start
    if not needed:
        return Completed(message=f"{target}: DVC says up to date", name="Cached", data=CACHED)
    run_entry(stage, video, lang, Path(root))
    dvc.commit(target, Path(root))
    return RAN


def prepare(input: str, langs: list[str], overrides: list[str], root: Path) -> tuple[dict, str]:
    """Compose the config, check the request and register the input (a video, or a photo with its
    speech); raise StageError if it is bad."""
    config = compose([f"input={quoted(input)}", f"langs=[{','.join(langs)}]", *overrides])
    check_languages(config)
    source = Path(input).expanduser().resolve()
    check_input(source, config)
    video = register(source, config, root)
    register_edits(video, config.get("edits"), root)
    write_dvc_inputs(config, root)
    return config, video


@flow(name="dub", log_prints=True, task_runner=ThreadPoolTaskRunner(max_workers=4))
def dub(input: str, langs: list[str], overrides: list[str] | None = None, root: str = str(PROJECT_ROOT)) -> dict[str, str]:
    """Dub `input` into every language of `langs`; `overrides` are Hydra overrides (e.g. mt=apertium)."""
    logger = get_run_logger()
    config, video = prepare(input, langs, list(overrides or []), Path(root))
    runtime = config["runtime"]
    stage = run_stage.with_options(retries=runtime["retries"], retry_delay_seconds=runtime["retry_delay_s"])
    fan_in = enabled_fan_in(config)
    targets = dvc.stage_items([*DAG, *fan_in], video, langs)
    stale_at_start = list(dvc.stale(targets, Path(root)))
    logger.info("DVC finds %d stale stage(s): %s", len(stale_at_start), ", ".join(stale_at_start) or "none")

    def submit(name: str, lang: str | None, upstream: list):
        return stage.with_options(task_run_name=dvc.stage_name(name, video, lang)).submit(
            name, video, lang, stale_at_start, upstream, root)

    futures: dict[tuple[str, str | None], Any] = {}
    for name, needs in DAG.items():
        for lang in langs if name in PER_LANGUAGE else [None]:
            upstream = [futures[(need, lang if need in PER_LANGUAGE else None)] for need in needs]
            futures[(name, lang)] = submit(name, lang, upstream)
    for name in fan_in:
        futures[(name, None)] = submit(name, None, [futures[(need, lang)] for need in FAN_IN[name] for lang in langs])
    ran = {key: future.result() for key, future in futures.items()}
    results = {lang: ran[("evaluate", lang)] for lang in langs}
    outputs = {lang: str(rendered_file(Path(root), video, lang)) for lang in langs}
    for name in fan_in:
        results[name] = ran[(name, None)]
        outputs[name] = str(next((Path(root) / "data" / name / video).glob(f"{video}.*.*")))
    if runtime.get("push") and any(result == RAN for result in ran.values()):
        dvc.push(targets, Path(root))
    for lang, path in outputs.items():
        logger.info("%s: %s (%s)", lang, path, results[lang])
    publish_summary(video, Path(root), outputs, ran, langs)
    return outputs


def publish_summary(video: str, root: Path, outputs: dict[str, str], ran: dict, langs: list[str]) -> None:
    """The per-language table (flows.summary) as the flow run's markdown artifact and in the log."""
    from prefect.artifacts import create_markdown_artifact

    from flows.summary import artifact_key, summary_markdown

    states = {lang: "made" if any(result == RAN for (name, of), result in ran.items() if of in (lang, None))
              else "up to date" for lang in langs}
    markdown = summary_markdown(video, root, {lang: outputs[lang] for lang in langs}, states)
    markdown += "".join(f"\n{name}: `{path}`\n" for name, path in outputs.items() if name not in langs)
    get_run_logger().info("summary\n%s", markdown)
    create_markdown_artifact(key=artifact_key(video), markdown=markdown, description=f"dubs of {video}")
