"""Phoneme -> viseme tables (YAML under conf/visemes/tables/) and IPA tokenization.

A language table maps IPA symbols (espeak-ng output) to viseme classes; the classes and their
target mouth shapes, dominance and typical durations live in `visemes.yaml`. Nothing about
specific phonemes is written in this module.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

TABLES_DIR = Path(__file__).resolve().parents[2] / "conf" / "visemes" / "tables"
SILENCE = "sil"
# Symbols that carry no segment of their own.
STRESS = {"ˈ": 1, "ˌ": 0.5}
LENGTH = "ː"
IGNORED = set("ˑ‿-ʲʰʷ˞̯̩̪̥̃̊͡‖|'\u200d")  # modifiers, ties, diacritics
NOT_LANGUAGES = {"visemes", "common", "sonority"}  # shared files beside the language tables
PAUSE_MARKS = {",": 0.12, ";": 0.15, ":": 0.15, "—": 0.15, ".": 0.3, "!": 0.3, "?": 0.3, "…": 0.3, "\n": 0.3}


@dataclass(frozen=True)
class VisemeClass:
    name: str
    target: dict[str, float]
    dominance: dict[str, float]
    weight: float
    rate: tuple[float, float] = (1.0, 1.0)  # multiplies the dominance decay rate before/after: >1 = more local


@dataclass(frozen=True)
class Phone:
    """One phone of an IPA string: its symbol, viseme, relative duration and word boundary."""

    symbol: str
    viseme: str
    weight: float
    stressed: bool = False
    word: int = 0


@dataclass
class VisemeTable:
    language: str
    espeak_voice: str
    params: tuple[str, ...]
    classes: dict[str, VisemeClass]
    phonemes: dict[str, str]
    closures: tuple[str, ...] = ("PP",)
    vowels: tuple[str, ...] = ()
    unknown: set[str] = field(default_factory=set)
    # word-initial stop -> the approximant it becomes after a sound in the same breath (Spanish
    # "de Barcelona" [deβarθelona]); espeak phonemizes words one at a time and cannot see that
    lenition: dict[str, str] = field(default_factory=dict)
    lenition_kept_after: tuple[str, ...] = ()  # ...except after these phones (nasals: "un beso" keeps [b])

    def viseme(self, symbol: str) -> str | None:
        return self.phonemes.get(unicodedata.normalize("NFD", symbol)[:1])

    def target(self, viseme: str) -> dict[str, float]:
        return self.classes[viseme].target

    def tokenize(self, ipa: str, word: int = 0) -> list[Phone]:
        """Phones of an IPA string; spaces advance the word index, punctuation becomes pauses.

        Unknown symbols are skipped and remembered in `self.unknown` (the caller logs them).
        """
        phones: list[Phone] = []
        stress_next = False
        for char in unicodedata.normalize("NFD", ipa):
            if char in STRESS:
                stress_next = True
            elif char == LENGTH:
                if phones and phones[-1].viseme != SILENCE:
                    last = phones[-1]
                    phones[-1] = Phone(last.symbol + LENGTH, last.viseme, last.weight * 1.6, last.stressed, last.word)
            elif char in PAUSE_MARKS:
                phones.append(Phone(char, SILENCE, PAUSE_MARKS[char] / 0.08, False, word))
                word += 1
            elif char.isspace():
                if phones and phones[-1].word == word:
                    word += 1
            elif char in IGNORED or unicodedata.combining(char):
                continue
            elif char in self.phonemes:
                viseme = self.phonemes[char]
                weight = self.classes[viseme].weight
                stressed = stress_next and viseme in self.vowels
                if stressed:
                    weight *= 1.3
                    stress_next = False
                phones.append(Phone(char, viseme, weight, stressed, word))
            else:
                self.unknown.add(char)
        return phones


def _read(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def _invert(groups: dict[str, list[str]], known: dict[str, VisemeClass], source: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for viseme, symbols in (groups or {}).items():
        if viseme not in known:
            raise ValueError(f"{source}: unknown viseme class {viseme!r} (known: {', '.join(known)})")
        for symbol in symbols or ():
            out[unicodedata.normalize("NFD", str(symbol))[:1]] = viseme
    return out


def _rates(value) -> tuple[float, float]:
    """`rate: 2` (both sides) or `rate: [anticipation, carry-over]`."""
    if isinstance(value, (list, tuple)):
        return float(value[0]), float(value[1])
    return float(value), float(value)


def load_classes(directory: Path = TABLES_DIR) -> tuple[tuple[str, ...], dict[str, VisemeClass], dict]:
    data = _read(Path(directory) / "visemes.yaml")
    params = tuple(data["params"])
    classes = {}
    for name, spec in data["classes"].items():
        dominance = spec.get("dominance", 1.0)
        dominance = {p: float(dominance.get(p, 1.0)) for p in params} if isinstance(dominance, dict) else {p: float(dominance) for p in params}
        classes[name] = VisemeClass(name, {p: float(spec[p]) for p in params}, dominance, float(spec.get("weight", 1.0)),
                                     _rates(spec.get("rate", 1.0)))
    if SILENCE not in classes:
        raise ValueError(f"{directory}/visemes.yaml must define the silence class {SILENCE!r}")
    return params, classes, data


@lru_cache(maxsize=16)
def load_table(language: str, directory: Path = TABLES_DIR) -> VisemeTable:
    """The table of a language (ISO 639-1 or a regional tag like pt-BR: its base language)."""
    directory = Path(directory)
    base = language.strip().lower().replace("_", "-").split("-")[0]
    path = directory / f"{base}.yaml"
    if not path.exists():
        have = sorted(p.stem for p in directory.glob("*.yaml") if p.stem not in NOT_LANGUAGES)
        raise KeyError(f"no viseme table for language {language!r} in {directory} (have: {', '.join(have)})")
    params, classes, data = load_classes(directory)
    spec = _read(path)
    phonemes: dict[str, str] = {}
    if spec.get("inherit"):
        phonemes.update(_invert(_read(directory / f"{spec['inherit']}.yaml"), classes, directory / f"{spec['inherit']}.yaml"))
    phonemes.update(_invert(spec.get("map") or {}, classes, path))
    lenition = {unicodedata.normalize("NFD", a): unicodedata.normalize("NFD", b) for a, b in (spec.get("lenition") or {}).items()}
    return VisemeTable(base, spec.get("espeak_voice", base), params, classes, phonemes,
                       tuple(data.get("closures", ["PP"])), tuple(data.get("vowels", ())), lenition=lenition,
                       lenition_kept_after=tuple(spec.get("lenition_kept_after") or ()))


def languages(directory: Path = TABLES_DIR) -> list[str]:
    return sorted(p.stem for p in Path(directory).glob("*.yaml") if p.stem not in NOT_LANGUAGES)
