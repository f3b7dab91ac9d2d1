"""Every option of every config group, and every experiment, composes and builds its backends."""
from __future__ import annotations

from pathlib import Path

import pytest

from flows.config import CONF_DIR, PHOTO_STAMP, check_name_free, compose, register_input, supported_targets, video_name
from tasks.stage import STAGES, StageError, instantiate

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


@pytest.mark.parametrize("face", ["dlib", "insightface"])
def test_faces_can_be_chosen_for_speakers_from_the_command_line(face):
    assert compose([f"face={face}"])["face"]["speaker_faces"] is None
    chosen = compose([f"face={face}", "face.speaker_faces={S0:1,S1:null}"])["face"]["speaker_faces"]
    assert chosen == {"S0": 1, "S1": None}


@pytest.mark.parametrize("path,name", [
    ("talk.mp4", "talk"),
    ("/x/My Talk (final).MP4", "my_talk_final"),
    ("a-b.c.mkv", "a_b_c"),
    ("???.mp4", "video"),
    ("Entrevista José Peña.mov", "entrevista_jose_pena"),
    ("Ça va.mp4", "ca_va"),
])
def test_video_names_are_stage_safe(path, name):
    assert video_name(Path(path)) == name


@pytest.mark.parametrize("first,second", [("интервью.mp4", "лекция.mp4"), ("会议.mp4", "采访.mp4"), ("会议 2024.mp4", "采访 2024.mp4")])
def test_names_in_another_script_stay_apart(first, second):
    a, b = video_name(Path(first)), video_name(Path(second))
    assert a != b, "two videos named in another script must not share a token (one would rerun over the other)"
    assert all(c.isascii() and (c.isalnum() or c == "_") for c in a + b)
    assert a == video_name(Path("/elsewhere") / first), "the token is the name's alone"


def test_another_file_with_the_same_token_is_refused_and_nothing_is_lost(tmp_path):
    first, second = tmp_path / "My Talk.mp4", tmp_path / "my_talk.mp4"
    first.write_bytes(b"first video")
    second.write_bytes(b"second video")
    assert register_input(first, tmp_path / "ws") == "my_talk"
    with pytest.raises(StageError, match=r"another input, My Talk\.mp4.*rename my_talk\.mp4"):
        register_input(second, tmp_path / "ws")
    registered = tmp_path / "ws" / "data" / "input" / "my_talk"
    assert [p.name for p in registered.iterdir()] == ["My Talk.mp4"]
    assert (registered / "My Talk.mp4").read_bytes() == b"first video"
    first.unlink()
    first.write_bytes(b"first video, cut again")  # a new version under the same name replaces it
    register_input(first, tmp_path / "ws")
    assert (registered / "My Talk.mp4").read_bytes() == b"first video, cut again"


def test_a_photo_and_a_video_of_one_name_are_two_inputs(tmp_path):
    folder = tmp_path / "data" / "input" / "talk"
    folder.mkdir(parents=True)
    (folder / "talk.mp4").write_bytes(b"built from the photo")
    (folder / PHOTO_STAMP).write_text('{"fingerprint": "x", "photo": "talk.jpg"}')
    check_name_free(Path("/somewhere/talk.jpg"), tmp_path)
    with pytest.raises(StageError, match="another input, talk.jpg"):
        check_name_free(Path("/somewhere/talk.mp4"), tmp_path)


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


@pytest.mark.parametrize("name", ["Talk!.mp4", "Entrevista (José).mp4", "a,b.mp4", "x[1].mp4", "it's.mp4", "a=b.mp4",
                                  "a#b&c.mp4", "a~b{c}.mp4", "会议.mp4", "My Talk.mp4"])
@pytest.mark.parametrize("key", ["input", "edits"])
def test_a_path_setting_takes_any_file_name(tmp_path, name, key):
    from flows.cli import expand_arguments

    path = tmp_path / name
    assert compose(expand_arguments([f"{key}={path}"]))[key] == str(path), "Hydra's grammar must not read the path"


def test_cli_refuses_a_name_taken_by_another_input_in_one_line(tmp_path, generated_clip):
    from tests.conftest import make_workspace, run_dub

    workspace = make_workspace(tmp_path / "ws")
    taken = workspace / "data" / "input" / "talk" / "talk.mp4"
    taken.parent.mkdir(parents=True)
    taken.write_bytes(generated_clip.read_bytes())
    other = tmp_path / "Talk!.mp4"
    other.write_bytes(generated_clip.read_bytes())
    result = run_dub(workspace, f"input={other}", "langs=[es]", timeout=120)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("dub: error:") and "another input, talk.mp4" in lines[0], result.stderr
    assert [p.name for p in taken.parent.iterdir()] == ["talk.mp4"]
