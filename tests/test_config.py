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
