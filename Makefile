# Two entry points: `make demo` (set up, run the default study, export) and `make test`.
# PYTHON and VENV choose the interpreter and its virtualenv (`make test-312` sets both).
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Extra pytest arguments, e.g. PYTEST_ARGS='-m "not distributed"'.
PYTEST_ARGS ?=
# The interpreter `make test-312` builds .venv312 with (a full path works too).
PYTHON312 ?= python3.12

.PHONY: setup demo test test-312 lint bench clean

setup: $(STAMP)

# `$(PYTHON) -c` rather than `command -v`: a pyenv shim exists even for a version it will not run.
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys' >/dev/null 2>&1 || { echo "needs $(PYTHON) (set PYTHON=...)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,postgres]'
	touch $(STAMP)

demo: setup
	$(BIN)/bandsearch launch spaces/audio_angle.yaml --study demo
	$(BIN)/bandsearch export demo --out best.yaml

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The fast tests (no two-node cluster, no multi-study runs) on Python 3.12, in a venv of its own.
test-312:
	$(MAKE) --no-print-directory test PYTHON=$(PYTHON312) VENV=.venv312 PYTEST_ARGS='-m "not distributed and not slow"'

lint: setup
	$(BIN)/ruff check .

bench: setup
	$(BIN)/python tests/benchmarks/quickstart_overhead.py

clean:
	rm -rf bandsearch-runs best.yaml
