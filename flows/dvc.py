"""The few DVC commands the flow needs. DVC alone decides what is stale and records what ran.

DVC holds a repository lock while it works, so calls from the flow's parallel language branches
go through one mutex, and a lock held by another process is waited out.
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

from flows.config import PROJECT_ROOT

_MUTEX = threading.Lock()
LOCK_WAIT_S = 120


class DvcError(RuntimeError):
    pass


def stage_name(stage: str, video: str, lang: str | None = None) -> str:
    """DVC's name for one item of a foreach/matrix stage: `asr@talk`, `mt@talk-es`."""
    return f"{stage}@{video}-{lang}" if lang else f"{stage}@{video}"


def dvc(*args: str, root: Path = PROJECT_ROOT) -> str:
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        with _MUTEX:
            result = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, capture_output=True, text=True)
        if result.returncode == 0:
            return result.stdout
        busy = "lock" in result.stderr.lower() and "unable to acquire" in result.stderr.lower()
        if not busy or time.monotonic() > deadline:
            message = (result.stderr.strip() or result.stdout.strip()).splitlines()
            raise DvcError(f"dvc {' '.join(args)} failed: {message[-1] if message else result.returncode}")
        time.sleep(1.0)


def stage_items(stages, video: str, langs: list[str]) -> list[str]:
    """The DVC stage names of `stages` for one video: per language where the stage is."""
    from tasks.stage import PER_LANGUAGE

    return [stage_name(s, video, lang) for s in stages for lang in (langs if s in PER_LANGUAGE else [None])]


def stale(targets: list[str], root: Path = PROJECT_ROOT) -> dict[str, list]:
    """Stages among `targets` that DVC would rerun, with its reasons.

    One status of the whole pipeline, filtered: DVC answers that in about a second, while asking
    it about many named targets costs it several."""
    output = dvc("status", "--json", root=root)
    wanted = set(targets)
    return {name: reasons for name, reasons in json.loads(output or "{}").items() if name in wanted}


def is_stale(target: str, root: Path = PROJECT_ROOT) -> bool:
    return target in stale([target], root)


def commit(target: str, root: Path = PROJECT_ROOT) -> None:
    """Record in dvc.lock what produced `target`'s outputs, and cache them."""
    dvc("commit", "--force", "--quiet", target, root=root)


def push(targets: list[str], root: Path = PROJECT_ROOT) -> None:
    dvc("push", "--quiet", *targets, root=root)


def locked_stages(root: Path = PROJECT_ROOT) -> set[str]:
    """Stage items that dvc.lock records as having run at least once."""
    import yaml

    lock = root / "dvc.lock"
    if not lock.exists():
        return set()
    return set((yaml.safe_load(lock.read_text()) or {}).get("stages", {}))
