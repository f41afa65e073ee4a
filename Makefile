# Two entry points: `make demo` (set up, run the default study, export) and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "needs $(PYTHON) (set PYTHON=...)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: setup
	$(BIN)/bandsearch launch spaces/audio_angle.yaml --study demo
	$(BIN)/bandsearch export demo --out best.yaml

test: setup
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python tests/benchmarks/quickstart_overhead.py

clean:
	rm -rf bandsearch-runs best.yaml
