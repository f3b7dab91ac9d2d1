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
    "mt": ("speakers",),
    "tts": ("mt",),
    "visemes": ("tts", "face"),
    "lipsync": ("visemes", "face"),
    "render": ("tts", "lipsync"),
    "evaluate": ("render",),
}
assert tuple(DAG) == STAGES, "every stage token has its place in the flow"


def upstream_closure(stage: str) -> set[str]:
    """`stage` and every stage it waits for, directly or not."""
    found, todo = set(), [stage]
    while todo:
        name = todo.pop()
        if name not in found:
            found.add(name)
            todo.extend(DAG[name])
    return found
