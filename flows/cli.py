"""`dub`: dub a video from the command line with Hydra overrides.

    dub input=talk.mp4 langs=[es,pt,fr]      dub it (runs the Prefect flow); `dub talk.mp4 ...` too
    dub portrait.jpg --audio speech.wav      a still photo speaking that audio, dubbed like a video
    dub portrait.jpg --script words.txt      ... speaking that text, voiced in ingest.photo.script_lang
    dub talk.mp4 langs=[es] --edits fix.yaml corrected translations ({lang: {segment id: text}}; the
                                             template is data/mt/<video>/<lang>/edits.yaml): kept for
                                             later runs, only the changed languages redone
    dub demo                                  dub a generated demo clip (no outside file)
    dub status [input=talk.mp4 langs=[es]]   which stages DVC finds up to date
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from flows.dag import FAN_IN, enabled_fan_in, upstream_closure
from flows.config import (PROJECT_ROOT, check_input, check_languages, check_name_free, compose, load_edits, quoted,
                          registered_videos, video_name, write_dvc_inputs)
from tasks.stage import BAD_INPUT_EXIT, PER_LANGUAGE, STAGES, StageError

DEMO_VIDEO = PROJECT_ROOT / "demo" / "astronaut_talk.mp4"


def fail(message: str, code: int = BAD_INPUT_EXIT) -> None:
    print(f"dub: error: {message}", file=sys.stderr)
    sys.exit(code)


# Command-line options that stand for Hydra overrides of a path (made absolute: the flow runs elsewhere).
PATH_OPTIONS = {"--audio": "ingest.photo.audio", "--script": "ingest.photo.script", "--edits": "edits"}
PATH_KEYS = {"input", *PATH_OPTIONS.values()}   # settings whose value is a path (key=path as well as the options)


def expand_arguments(argv: list[str]) -> list[str]:
    """`dub photo.jpg --audio a.wav langs=[es]` -> `input=... ingest.photo.audio=... langs=[es]`."""
    expanded, rest = [], list(argv)
    while rest:
        arg = rest.pop(0)
        option, has_value, value = arg.partition("=")
        if option in PATH_OPTIONS:
            if not has_value:
                if not rest or rest[0].startswith("-") or ("=" in rest[0] and not Path(rest[0]).exists()):
                    fail(f"{option} needs a file: {option} path/to/file")
                value = rest.pop(0)
            expanded.append(f"{PATH_OPTIONS[option]}={quoted(str(Path(value).expanduser().absolute()))}")
        elif arg.startswith("-"):
            fail(f"unknown option {arg}: options are {', '.join(PATH_OPTIONS)}; settings are key=value (see conf/)")
        elif not has_value and not arg.startswith(("~", "+")):  # not a Hydra deletion or addition
            expanded.append(f"input={quoted(str(Path(arg).expanduser().absolute()))}")
        elif option in PATH_KEYS and value and value[0] not in "'\"":
            # Hydra's override grammar reads ( ) [ ] , ' ! # and accented letters as syntax: a path
            # such as "Entrevista (José).mp4" is quoted whole
            expanded.append(f"{option}={quoted(str(Path(value).expanduser().absolute()))}")
        else:
            expanded.append(arg)
    return expanded


def split_overrides(argv: list[str]) -> tuple[str | None, list[str], list[str]]:
    """Pull out `input=` and `langs=` (flow parameters); the rest stay Hydra overrides."""
    config = compose(argv)
    rest = [a for a in argv if not a.split("=", 1)[0].lstrip("+~") in ("input", "langs")]
    return config.get("input"), [str(lang) for lang in config.get("langs") or []], rest


def run(argv: list[str]) -> None:
    input_path, langs, overrides = split_overrides(argv)
    if not input_path:
        fail("no input video: give input=path/to/video.mp4 (or run `dub demo`)")

    config = compose(argv)
    try:
        check_languages(config)
        check_input(Path(input_path).expanduser(), config)
        check_name_free(Path(input_path).expanduser())
        if config.get("edits"):
            load_edits(config["edits"])   # fail now, not minutes later in the mt stage
    except StageError as error:
        fail(str(error))
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    if config["runtime"].get("prefect_api_url"):
        os.environ["PREFECT_API_URL"] = config["runtime"]["prefect_api_url"]
    from prefect.task_runners import ThreadPoolTaskRunner

    from flows.dub import StageFailed, dub
    from flows.dvc import DvcError

    workers = max(1, int(config["runtime"]["parallel_langs"]))
    try:
        outputs = dub.with_options(task_runner=ThreadPoolTaskRunner(max_workers=workers))(
            input=str(Path(input_path).expanduser().resolve()), langs=langs, overrides=overrides)
    except StageFailed as error:
        fail(str(error), BAD_INPUT_EXIT if error.bad_input else 1)
    except StageError as error:
        fail(str(error))
    except DvcError as error:
        fail(str(error), 1)
    print()
    for lang, path in outputs.items():
        print(f"{lang}: {Path(path).relative_to(PROJECT_ROOT) if Path(path).is_relative_to(PROJECT_ROOT) else path}")


def status(argv: list[str]) -> None:
    """A table: one row per video (and language), one column per stage, DVC's verdict in each cell."""
    from flows import dvc

    config = compose(argv)
    videos = [video_name(config["input"])] if config.get("input") else registered_videos()
    if not videos:
        fail("nothing registered yet: run `dub input=...` first")
    write_dvc_inputs(config)  # what a run with these overrides would compare against
    langs = [str(lang) for lang in config.get("langs") or []]
    fan_in = enabled_fan_in(config)
    # every stage, not only the last ones: a stale upstream stage is what makes them stale
    targets = [item for v in videos for item in dvc.stage_items([*STAGES, *fan_in], v, langs)]
    try:
        stale = dvc.stale(targets)
    except dvc.DvcError as error:
        fail(str(error), 1)
    locked = dvc.locked_stages()
    columns = [*STAGES, *FAN_IN]
    print(f"{'video':<24}{'lang':<6}" + "".join(f"{s:<11}" for s in columns))
    for video in videos:
        for lang in langs:
            def name(stage: str) -> str:
                return dvc.stage_name(stage, video, lang if stage in PER_LANGUAGE else None)

            def verdict(stage: str, upstream: set[str]) -> str:
                if name(stage) not in locked:
                    return "never run"
                if any(name(s) in stale or name(s) not in locked for s in upstream):
                    return "stale"
                return "up to date"

            cells = [verdict(stage, upstream_closure(stage)) for stage in STAGES]
            cells += [verdict(stage, {stage}.union(*(upstream_closure(need) for need in FAN_IN[stage])))
                      if stage in fan_in else "off" for stage in FAN_IN]
            print(f"{video:<24}{lang:<6}" + "".join(f"{c:<11}" for c in cells))


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["status"]:
            status(expand_arguments(argv[1:]))
        elif argv[:1] == ["demo"]:
            from flows.demo import build_demo_video

            run(expand_arguments([f"input={build_demo_video(DEMO_VIDEO)}", *argv[1:]]))
        elif argv[:1] in (["-h"], ["--help"], ["help"]):
            print(__doc__)
        else:
            run(expand_arguments(argv))
    except StageError as error:
        fail(str(error))
    except Exception as error:  # Hydra's override errors and the like: one line, not a traceback
        if type(error).__module__.startswith(("hydra", "omegaconf")):
            fail(str(error).splitlines()[0])
        raise


if __name__ == "__main__":
    main()
