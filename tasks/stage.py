"""What every stage entry point shares: its folders, its config group and its error contract.

A stage is run as `python -m tasks.<stage> --video V [--lang L]` from the project root, by DVC
(`dvc repro`) and by the Prefect flow alike. Its settings are its group in `params.yaml`, which the
`dub` CLI (or DVC's Hydra integration) composes from `conf/`.

Exit codes: 0 done; 2 the input or the configuration is wrong (retrying cannot help; one line on
stderr says why); anything else is a crash worth a retry.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

STAGES = ("ingest", "asr", "speakers", "face", "reference", "mt", "tts", "visemes", "lipsync", "render", "evaluate")
PER_LANGUAGE = ("mt", "tts", "visemes", "lipsync", "render", "evaluate")
BAD_INPUT_EXIT = 2
PARAMS_FILE = "params.yaml"

log = logging.getLogger("dub")


class StageError(RuntimeError):
    """A problem with the input or the configuration: reported in one line, never retried."""


@dataclass(frozen=True)
class StageContext:
    stage: str
    video: str
    lang: str | None
    root: Path
    params: dict[str, Any]

    @property
    def config(self) -> dict[str, Any]:
        if self.stage not in self.params:
            raise StageError(f"params.yaml has no `{self.stage}` group: compose it with `dub` (or `dvc exp run`) first")
        return self.params[self.stage] or {}

    def out_dir(self, stage: str | None = None) -> Path:
        return stage_dir(self.root, stage or self.stage, self.video, self.lang if (stage or self.stage) in PER_LANGUAGE else None)

    def input_dir(self, stage: str) -> Path:
        return stage_dir(self.root, stage, self.video, self.lang if stage in PER_LANGUAGE else None)


def stage_dir(root: Path, stage: str, video: str, lang: str | None = None) -> Path:
    folder = Path(root) / "data" / stage / video
    return folder / lang if lang else folder


def source_video(root: Path, video: str) -> Path:
    """The registered input of video `video`: the one file in `data/input/<video>/`."""
    folder = Path(root) / "data" / "input" / video
    files = sorted(p for p in folder.glob("*") if p.is_file() and not p.name.startswith("."))
    if not files:
        raise StageError(f"no input registered for video {video!r} (expected a file in {folder})")
    return files[0]


def picture_video(root: Path, video: str) -> Path:
    """The file whose frames the stages read: the ingest stage's copy of a variable-rate or
    odd-sized source (frame k shown at k / fps, as every stage times it; an even size), else the source."""
    copy = Path(root) / "data" / "ingest" / video / "picture.mkv"
    return copy if copy.exists() else source_video(root, video)


def load_params(root: Path) -> dict[str, Any]:
    path = Path(root) / PARAMS_FILE
    if not path.exists():
        raise StageError(f"{path} is missing: run `dub ...` (it composes conf/ into {PARAMS_FILE}) first")
    return yaml.safe_load(path.read_text()) or {}


def instantiate(config: dict[str, Any], key: str | None = None) -> Any:
    """Build the backend a config names with `_target_` (Hydra's instantiate, imported late)."""
    from hydra.utils import instantiate as hydra_instantiate

    node = config[key] if key else config
    return hydra_instantiate(node, _convert_="all")


def main(stage: str, run: Callable[[StageContext], None], argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog=f"python -m tasks.{stage}")
    parser.add_argument("--video", required=True, help="video name (its folder under data/input)")
    if stage in PER_LANGUAGE:
        parser.add_argument("--lang", required=True, help="target language, ISO 639-1 (es, pt, fr, ...)")
    parser.add_argument("--root", default=".", type=Path, help="project root holding data/ and params.yaml")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {stage} %(levelname)s %(message)s", datefmt="%H:%M:%S")
    started = time.perf_counter()
    try:
        context = StageContext(stage, args.video, getattr(args, "lang", None), args.root, load_params(args.root))
        run(context)
    except StageError as error:
        print(f"error: {stage}: {error}", file=sys.stderr)
        sys.exit(BAD_INPUT_EXIT)
    log.info("done in %.1f s", time.perf_counter() - started)
