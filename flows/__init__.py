"""Prefect flows and the `dub` CLI: they order stages and route work; stage logic lives in tasks/."""
