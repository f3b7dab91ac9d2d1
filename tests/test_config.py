"""Every option of every config group, and every experiment, composes and builds its backends."""
from __future__ import annotations

from pathlib import Path

import pytest

from flows.config import CONF_DIR, compose, supported_targets, video_name
from tasks.stage import STAGES, instantiate

GROUPS = sorted(p.name for p in CONF_DIR.iterdir() if p.is_dir() and p.name != "experiment")
OPTIONS = [(group, option.stem) for group in GROUPS for option in sorted((CONF_DIR / group).glob("*.yaml"))]
EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))


def test_every_stage_has_a_config_group():
    assert set(STAGES) <= set(GROUPS)


@pytest.mark.parametrize("group,option", OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_option_composes(group, option):
    config = compose([f"{group}={option}"])
    assert set(STAGES) <= set(config)
    if group == "mt":
        translator = instantiate(config["mt"])
        assert translator.targets(), "a translator config must support at least one target"
    if group == "tts":
        voices = config["tts"]["voices"]
        assert voices
        for lang in voices:
            assert instantiate(voices, lang).name


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_composes(experiment):
    default = compose([])
    config = compose([f"experiment={experiment}"])
    assert config != default, f"experiment {experiment} changes nothing"


def test_default_demo_languages_are_supported():
    config = compose([])
    assert set(config["langs"]) <= supported_targets(config)


def test_overrides_reach_the_composed_config():
    config = compose(["langs=[es,fr]", "render=prores", "tts.timing.max_speed=1.2"])
    assert config["langs"] == ["es", "fr"]
    assert config["render"]["container"] == "mov"
    assert config["tts"]["timing"]["max_speed"] == 1.2


@pytest.mark.parametrize("path,name", [
    ("talk.mp4", "talk"),
    ("/x/My Talk (final).MP4", "my_talk_final"),
    ("a-b.c.mkv", "a_b_c"),
    ("???.mp4", "video"),
])
def test_video_names_are_stage_safe(path, name):
    assert video_name(Path(path)) == name


@pytest.mark.parametrize("render", ["mp4", "prores"])
def test_multitrack_is_composed_with_every_render_option(render):
    config = compose([f"render={render}", "multitrack.enabled=true", "multitrack.picture_lang=es"])
    assert config["multitrack"] == {"enabled": True, "picture_lang": "es", "include_original": True}
    assert "multitrack" not in config["render"], "render's own params stay apart, so switching it reruns no render"
    assert compose([f"render={render}"])["multitrack"]["enabled"] is False


def test_photo_settings_compose_and_build():
    from tasks.ingest.photo import PhotoSettings

    config = compose(["ingest.photo.audio=/tmp/speech.wav", "ingest.photo.fps=30"])
    settings = PhotoSettings.from_config(config["ingest"]["photo"])
    assert (settings.audio, settings.fps, settings.script) == ("/tmp/speech.wav", 30, None)
    assert settings.script_lang in config["tts"]["voices"], "a script must be voiceable by the configured TTS"


def test_dvc_stages_match_the_flow_and_read_composed_params():
    import yaml

    from flows.dag import DAG, FAN_IN, entry_module

    stages = yaml.safe_load((Path(__file__).resolve().parent.parent / "dvc.yaml").read_text())["stages"]
    assert set(stages) == set(DAG) | set(FAN_IN)
    config = compose([])
    for name, stage in stages.items():
        body = stage.get("do", stage)
        assert body["cmd"].startswith(f"python -m {entry_module(name)} "), name
        for param in body.get("params", []):
            key = param if isinstance(param, str) else None
            if key:
                assert key.split(".")[0] in config, f"{name} reads params `{key}` that conf/ does not compose"
