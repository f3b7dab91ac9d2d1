"""Corrected translations (tasks/mt/edits.py): the file's checks, their application, the template,
and how `dub` keeps the file for the mt stages (flows/config.py)."""
from __future__ import annotations

import pytest
import yaml

from tasks.artifacts import Segment, Transcript, TranslatedSegment, Translation, Word
from tasks.mt.edits import apply_edits, correct_source, edits_template, parse_edits, read_edits
from tasks.stage import StageError

TRANSLATION = Translation("en", "es", "apertium", (
    TranslatedSegment(0, 0.0, 1.5, "S0", "Hello, my name is Jordi.", "Hola, mi nombre es Jordi."),
    TranslatedSegment(1, 1.8, 3.0, "S1", "I love the city.", "Amo la ciudad."),
))


@pytest.mark.parametrize("data,expected", [
    (None, {}),
    ({"es": {1: "Me encanta  la\\nciudad. "}}, {"es": {1: "Me encanta la ciudad."}}),
    ({"es": {0: "Hola."}, "pt": {1: "Adoro a cidade."}}, {"es": {0: "Hola."}, "pt": {1: "Adoro a cidade."}}),
])
def test_parse_edits(data, expected):
    if data and "es" in data and 1 in data["es"]:
        data = {"es": {1: data["es"][1].replace("\\n", "\n")}}
    assert parse_edits(data) == expected


@pytest.mark.parametrize("data,message", [
    (["es"], "expected `language"),
    ({"spanish": {0: "Hola."}}, "not a language code"),
    ({"es": "Hola."}, "expected `segment id: text`"),
    ({"es": {"first": "Hola."}}, "not a segment id"),
    ({"es": {-1: "Hola."}}, "not a segment id"),
    ({"es": {0: "  "}}, "segment 0 has no text"),
    ({"es": {0: None}}, "segment 0 has no text"),
])
def test_parse_edits_says_what_is_wrong(data, message):
    with pytest.raises(StageError, match=message):
        parse_edits(data, "fix.yaml")


def test_apply_edits_replaces_and_marks_only_the_corrected_segments():
    edited = apply_edits(TRANSLATION, {1: "Me encanta la ciudad."})
    assert [s.text for s in edited.segments] == ["Hola, mi nombre es Jordi.", "Me encanta la ciudad."]
    assert [s.edited for s in edited.segments] == [False, True]
    assert edited.segments[1].source_text == "I love the city." and edited.segments[1].start == 1.8
    assert apply_edits(TRANSLATION, {}) == TRANSLATION
    with pytest.raises(StageError, match="no segment 5 .*segments are 0-1"):
        apply_edits(TRANSLATION, {5: "¿Qué?"})


def test_the_template_is_a_corrections_file_of_the_translation_as_it_is(tmp_path):
    edited = apply_edits(TRANSLATION, {1: 'Me "encanta" la ciudad: sí.'})
    text = edits_template(edited)
    assert "# 1.80-3.00 S1" in text and "(corrected)" in text
    path = tmp_path / "edits.yaml"
    path.write_text(text, encoding="utf-8")
    assert read_edits(path) == {"es": {0: "Hola, mi nombre es Jordi.", 1: 'Me "encanta" la ciudad: sí.'}}
    assert apply_edits(TRANSLATION, read_edits(path)["es"]) == edited


def test_read_edits_refuses_broken_yaml_and_takes_a_missing_or_empty_file_as_none(tmp_path):
    assert read_edits(tmp_path / "absent.yaml") == {}
    (tmp_path / "empty.yaml").write_text("")
    assert read_edits(tmp_path / "empty.yaml") == {}
    (tmp_path / "bad.yaml").write_text("es: {0: 'Hola'\n")
    with pytest.raises(StageError, match="bad.yaml is not valid YAML"):
        read_edits(tmp_path / "bad.yaml")


def test_dub_keeps_the_corrections_for_later_runs_and_an_empty_file_for_every_video(tmp_path):
    from flows.config import register_edits, write_dvc_inputs

    for video in ("talk", "other"):
        (tmp_path / "data" / "input" / video).mkdir(parents=True)
    fix = tmp_path / "fix.yaml"
    fix.write_text("es:\n  1: Me encanta la ciudad.\n", encoding="utf-8")
    register_edits("talk", fix, tmp_path)
    write_dvc_inputs({"langs": ["es"]}, tmp_path)
    kept = tmp_path / "data" / "edits" / "talk" / "edits.yaml"
    assert yaml.safe_load(kept.read_text()) == {"es": {1: "Me encanta la ciudad."}}
    assert (tmp_path / "data" / "edits" / "other" / "edits.yaml").read_text() == ""
    register_edits("talk", None, tmp_path)              # a later run without edits= keeps them
    write_dvc_inputs({"langs": ["es"]}, tmp_path)
    assert yaml.safe_load(kept.read_text()) == {"es": {1: "Me encanta la ciudad."}}
    fix.write_text("")                                   # an empty file clears them
    register_edits("talk", fix, tmp_path)
    assert kept.read_text() == ""
    with pytest.raises(StageError, match="edits file not found"):
        register_edits("talk", tmp_path / "nope.yaml", tmp_path)


def test_the_edits_option_is_an_absolute_path_override(tmp_path, monkeypatch):
    from flows.cli import expand_arguments
    from flows.config import compose

    monkeypatch.chdir(tmp_path)
    config = compose(expand_arguments(["talk.mp4", "--edits", "my fixes.yaml", "langs=[es]"]))
    assert config["edits"] == str(tmp_path / "my fixes.yaml")
    assert compose([])["edits"] is None


def test_source_lines_correct_what_was_heard_before_translation():
    heard = Transcript("en", 0.9, (Segment(0, 0.0, 1.5, "Hello.", words=(Word(0.0, 0.5, "Hello."),)),
                                   Segment(1, 1.8, 3.0, "How to use batunnels.", "S1")))
    corrected = correct_source(heard, {1: "How to use the tunnels."})
    assert [s.text for s in corrected.segments] == ["Hello.", "How to use the tunnels."]
    assert corrected.segments[1].speaker == "S1" and corrected.segments[0].words == heard.segments[0].words
    with pytest.raises(StageError, match="edits for en \\(the source\\): no segment 2"):
        correct_source(heard, {2: "?"})
    assert "(en:) correct what the speech recognition heard" in edits_template(TRANSLATION)
