"""Compose conf/ with Hydra and turn it into what DVC reads: params.yaml and videos.yaml."""
from __future__ import annotations

import filecmp
import hashlib
import json
import os
import re
import shutil
import unicodedata
from pathlib import Path
from typing import Any

import yaml

from tasks.artifacts import atomic_path
from tasks.stage import PARAMS_FILE, StageError, instantiate

CODE_ROOT = Path(__file__).resolve().parent.parent
# Where data/, params.yaml and dvc.yaml live: this checkout, or a workspace set by DUB_ROOT.
PROJECT_ROOT = Path(os.environ.get("DUB_ROOT") or CODE_ROOT).resolve()
CONF_DIR = PROJECT_ROOT / "conf" if (PROJECT_ROOT / "conf").is_dir() else CODE_ROOT / "conf"
VIDEOS_FILE = "videos.yaml"


def compose(overrides: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """The resolved configuration for these Hydra overrides, as plain data."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        config = hydra_compose(config_name="config", overrides=list(overrides))
    return OmegaConf.to_container(config, resolve=True)  # type: ignore[return-value]


def quoted(value: str) -> str:
    """A Hydra override value that keeps the spaces, commas and brackets of a path as they are."""
    return "'" + value.replace("'", "\\'") + "'"


def video_name(path: str | Path) -> str:
    """A stage-name-safe token for a video: its file stem, lower case, [a-z0-9_] only, accents dropped
    ("Entrevista José" -> entrevista_jose). Where letters of another script are dropped, a digest of
    the stem follows, so that two such names stay two videos ("интервью" -> video_<6 hex>)."""
    stem = unicodedata.normalize("NFKD", Path(path).stem)
    kept = "".join(c for c in stem if c.isascii())
    token = re.sub(r"[^a-z0-9_]+", "_", kept.lower()).strip("_") or "video"
    if any(not c.isascii() and not unicodedata.combining(c) for c in stem):
        token += "_" + hashlib.sha1(unicodedata.normalize("NFC", Path(path).stem).encode()).hexdigest()[:6]
    return token


def supported_targets(config: dict[str, Any]) -> set[str]:
    """Languages that both the configured translator and the configured voices can produce."""
    translator = instantiate(config["mt"])
    voices = set((config["tts"].get("voices") or {}).keys())
    return set(translator.targets()) & voices


def check_languages(config: dict[str, Any]) -> list[str]:
    langs = [str(lang) for lang in config.get("langs") or []]
    if not langs:
        raise StageError("no target language given: add e.g. langs=[es,pt]")
    supported = supported_targets(config)
    unknown = [lang for lang in langs if lang not in supported]
    if unknown:
        raise StageError(f"unsupported target language {', '.join(unknown)}: supported are {', '.join(sorted(supported))}")
    return langs


def register_input(source: Path, root: Path = PROJECT_ROOT) -> str:
    """Place the input under data/input/<video>/ (a hard link where possible) and return <video>."""
    name = video_name(source)
    folder = root / "data" / "input" / name
    target = folder / source.name
    refuse_another(folder, source.name)
    existing = [p for p in folder.glob("*") if p.is_file()] if folder.exists() else []
    if existing == [target] and filecmp.cmp(source, target, shallow=False):
        return name
    folder.mkdir(parents=True, exist_ok=True)
    for old in existing:
        old.unlink()
    with atomic_path(target) as tmp:
        tmp.unlink()
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copy2(source, tmp)
    return name


def check_name_free(source: Path, root: Path = PROJECT_ROOT) -> None:
    """StageError (one line) where `source`'s token already names another registered input."""
    refuse_another(root / "data" / "input" / video_name(source), source.name)


def registered_source(folder: Path) -> str | None:
    """The file name of the input registered in data/input/<video>/ (a photo's, where its video was
    built from one), or None where nothing is."""
    stamp = folder / PHOTO_STAMP
    if stamp.exists():
        return json.loads(stamp.read_text()).get("photo")
    names = sorted(p.name for p in folder.glob("*") if p.is_file() and not p.name.startswith(".")) if folder.is_dir() else []
    return names[0] if names else None


def refuse_another(folder: Path, source_name: str) -> None:
    """StageError where `folder` already holds another input than `source_name`: both names give
    one token, and registering this one would rerun every stage of the other over its results. A
    new version of the same file (same name) replaces it, as intended."""
    other = registered_source(folder)
    if other not in (None, source_name):
        raise StageError(f"{folder.name} is already the name of another input, {other}, whose results are under "
                         f"data/*/{folder.name}/: rename {source_name} to dub it beside that one, or delete "
                         f"data/input/{folder.name}/ to replace it")


def check_input(source: Path, config: dict[str, Any]) -> None:
    """Raise StageError (one line) unless `source`, with the speech the config gives a photo, can be dubbed."""
    from tasks.ingest.photo import PhotoSettings, check_request, is_photo
    from tasks.media import probe

    photo = PhotoSettings.from_config(config["ingest"].get("photo"))
    if is_photo(source):
        check_request(source, photo)
        voices = config["tts"].get("voices") or {}
        if photo.script and photo.script_lang not in voices:
            raise StageError(f"no voice for the script's language {photo.script_lang} "
                             f"(ingest.photo.script_lang): configured are {', '.join(sorted(voices))}")
        return
    if photo.audio or photo.script:
        raise StageError(f"--audio and --script are for a still photo input, and {source.name} is not an image")
    probe(source)


def register(source: Path, config: dict[str, Any], root: Path = PROJECT_ROOT) -> str:
    """Register a video as it is, or a photo as the video it becomes with its speech; return <video>."""
    from tasks.ingest.photo import is_photo

    return register_photo(source, config, root) if is_photo(source) else register_input(source, root)


PHOTO_STAMP = ".photo.json"  # a dot file: source_video() and the stages never take it for the input


def register_photo(photo: Path, config: dict[str, Any], root: Path = PROJECT_ROOT) -> str:
    """Build the video of `photo` speaking its audio (or voiced script) as data/input/<video>/<video>.mp4.

    A stamp beside it holds the fingerprint of what it was built from, so the same request keeps
    the same registered file (and DVC finds everything up to date) even though voicing a script
    again would not give the same samples."""
    from tasks.ingest.photo import PhotoSettings, build_from_request, fingerprint

    settings = PhotoSettings.from_config(config["ingest"].get("photo"))
    name = video_name(photo)
    folder = root / "data" / "input" / name
    target, stamp = folder / f"{name}.mp4", folder / PHOTO_STAMP
    voices = config["tts"].get("voices") or {}
    refuse_another(folder, photo.name)
    key = fingerprint(photo, settings, voices.get(settings.script_lang))
    if target.exists() and stamp.exists() and json.loads(stamp.read_text()).get("fingerprint") == key:
        return name

    def stamped(value: str | None) -> None:
        with atomic_path(stamp) as tmp:
            tmp.write_text(json.dumps({"fingerprint": value, "photo": photo.name,
                                       "speech": Path(settings.audio or settings.script).name}, indent=2))

    stamped(None)  # building: names the photo, matches no request (an interrupted build is built again)
    build_from_request(photo, settings, target, voices)
    for old in folder.iterdir():
        if old.is_file() and old not in (target, stamp):
            old.unlink()
    stamped(key)
    return name


def load_edits(edits: str | Path) -> dict[str, dict[int, str]]:
    """A corrections file (tasks/mt/edits.py), checked: StageError in one line if missing or malformed."""
    from tasks.mt.edits import read_edits

    source = Path(edits).expanduser()
    if not source.is_file():
        raise StageError(f"edits file not found: {edits}")
    return read_edits(source)


def register_edits(video: str, edits: str | Path | None, root: Path = PROJECT_ROOT) -> None:
    """Keep a corrections file for `video` as data/edits/<video>/edits.yaml; None keeps the one
    already there. What the mt stages read, so later runs keep it."""
    from tasks.mt.edits import kept_edits

    if edits is None:
        return
    corrections = load_edits(edits)
    text = yaml.safe_dump(corrections, sort_keys=True, allow_unicode=True) if corrections else ""
    write_text(kept_edits(root, video), text)


def registered_videos(root: Path = PROJECT_ROOT) -> list[str]:
    folder = root / "data" / "input"
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.exists() else []


def write_text(path: Path, text: str) -> None:
    """Write `text` atomically, leaving the file untouched when it already holds it (DVC sees no change)."""
    if path.exists() and path.read_text() == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_yaml(path: Path, data: dict[str, Any]) -> None:
    write_text(path, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def write_dvc_inputs(config: dict[str, Any], root: Path = PROJECT_ROOT) -> None:
    """params.yaml (the composed config) and videos.yaml (every registered input) for dvc.yaml, and
    an empty corrections file for each video that has none (the mt stages depend on it)."""
    from tasks.mt.edits import kept_edits

    write_yaml(root / PARAMS_FILE, config)
    videos = registered_videos(root)
    write_yaml(root / VIDEOS_FILE, {"videos": videos})
    for video in videos:
        edits = kept_edits(root, video)
        if not edits.exists():
            write_text(edits, "")
