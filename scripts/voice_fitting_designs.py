"""Measure the voice-fitting design (tasks/tts/fitting.py) of the default settings in each language
and ship it beside the module (tasks/tts/designs/), so that no first dub pays 2-2.5 min of
syntheses for it. Rerun after changing conf/tts `matching.fitting` or the Kokoro styles; a test
fails while a language's shipped design does not match the settings.

    python scripts/voice_fitting_designs.py [es pt fr en]
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flows.config import compose  # noqa: E402
from tasks.stage import instantiate  # noqa: E402
from tasks.tts.fitting import SHIPPED_DESIGNS  # noqa: E402


def main(languages: list[str]) -> None:
    from tasks.speakers.encoder import SpeakerEncoder

    fitter = instantiate(compose()["tts"]["matching"], "fitting")
    encoder = SpeakerEncoder()
    for language in languages:
        fitter.write_design(language, encoder, SHIPPED_DESIGNS)
        print(SHIPPED_DESIGNS / fitter.design_name(language))


if __name__ == "__main__":
    main(sys.argv[1:] or ["es", "pt", "fr", "en"])
