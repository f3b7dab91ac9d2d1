"""Dubbing pipeline stages: one package per stage, each with a `python -m tasks.<stage>` entry."""
