# Two entry points for a fresh machine with Python 3.11 and make:
#   make run   - set up, then run the main job end to end on the embedded sample corpus
#   make test  - set up, then run the whole test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.newsstance-installed

.PHONY: run test lint setup clean

run: $(STAMP)
	$(BIN)/newsstance run

test: $(STAMP)
	$(BIN)/ruff check scripts tests benchmarks examples
	$(BIN)/newsstance studio install
	$(BIN)/python -m pytest -n 2 --dist loadgroup

lint: $(STAMP)
	$(BIN)/ruff check scripts tests benchmarks examples
	$(BIN)/ruff format --check scripts tests benchmarks examples
	$(BIN)/mypy

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) .newsstance dist corpus/normalized
