"""The order of the stages, shared by the flow and `dub status` (the same edges as dvc.yaml's deps)."""
from __future__ import annotations

from tasks.stage import STAGES

# Which stages each stage waits for (the same edges as dvc.yaml's deps). A per-language stage
# waiting for a per-video one waits for that video's run of it. Order: a topological order.
DAG: dict[str, tuple[str, ...]] = {
    "ingest": (),
    "asr": ("ingest",),
    "speakers": ("asr",),
    "face": ("speakers",),
    "reference": ("asr", "speakers", "face"),
    "mt": ("speakers",),
    "tts": ("mt",),
    "visemes": ("tts", "face"),
    "lipsync": ("visemes", "face", "speakers"),
    "render": ("tts", "lipsync"),
    "evaluate": ("render", "reference", "face", "visemes"),
}
assert tuple(DAG) == STAGES, "every stage token has its place in the flow"

# Per-video stages that wait for a stage in every language (fan-in), after all of DAG. Each is an
# option of the stage it follows: its code is in that stage's package, its config group (named
# like the stage, with an `enabled` switch) is defined beside that stage's options in conf/.
FAN_IN: dict[str, tuple[str, ...]] = {
    "multitrack": ("render",),
}
ENTRY_MODULES = {"multitrack": "tasks.render.multitrack"}


def entry_module(stage: str) -> str:
    """The module `python -m` runs for `stage` (the same command as in dvc.yaml)."""
    return ENTRY_MODULES.get(stage, f"tasks.{stage}")


def enabled_fan_in(config: dict) -> list[str]:
    """The fan-in stages a run with this config asks for (each is switched on in its own group)."""
    return [stage for stage in FAN_IN if (config.get(stage) or {}).get("enabled")]


def upstream_closure(stage: str) -> set[str]:
    """`stage` and every stage it waits for, directly or not."""
    found, todo = set(), [stage]
    while todo:
        name = todo.pop()
        if name not in found:
            found.add(name)
            todo.extend(DAG[name])
    return found
