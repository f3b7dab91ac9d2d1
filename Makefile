# The two commands of the README:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: setup demo test test-all benchmark clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/setup.sh
	PYTHON=$(PYTHON) VENV=$(VENV) bash scripts/setup.sh
	touch $@

demo: setup
	$(BIN)/dub demo

test: setup
	$(BIN)/python -m pytest -q

benchmark: setup
	$(BIN)/python scripts/benchmark.py

clean:
	rm -rf data/*/ params.yaml videos.yaml dvc.lock demo/
