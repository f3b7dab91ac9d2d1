"""Language codes as containers store them."""
from __future__ import annotations

# ISO 639-1 -> (ISO 639-2/T, English name). MP4 and MOV store 639-2/T codes and drop 2-letter ones.
LANGUAGES = {
    "ar": ("ara", "Arabic"), "ca": ("cat", "Catalan"), "cs": ("ces", "Czech"), "de": ("deu", "German"),
    "el": ("ell", "Greek"), "en": ("eng", "English"), "es": ("spa", "Spanish"), "fi": ("fin", "Finnish"),
    "fr": ("fra", "French"), "hi": ("hin", "Hindi"), "it": ("ita", "Italian"), "ja": ("jpn", "Japanese"),
    "ko": ("kor", "Korean"), "nl": ("nld", "Dutch"), "pl": ("pol", "Polish"), "pt": ("por", "Portuguese"),
    "ru": ("rus", "Russian"), "sv": ("swe", "Swedish"), "tr": ("tur", "Turkish"), "uk": ("ukr", "Ukrainian"),
    "zh": ("zho", "Chinese"),
}


def iso639_2(lang: str) -> str:
    return LANGUAGES.get(lang, ("und", ""))[0]


def language_name(lang: str) -> str:
    return LANGUAGES.get(lang, ("", lang))[1] or lang
