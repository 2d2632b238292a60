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

test: lint
	$(BIN)/newsstance studio install
	$(BIN)/python -m pytest -n 2 --dist loadgroup

lint: $(STAMP)
	$(BIN)/ruff check scripts tests benchmarks examples
	$(BIN)/ruff format --check scripts tests benchmarks examples
	$(BIN)/mypy

setup: $(STAMP)

$(STAMP): pyproject.toml
	@echo "setting up $(VENV): installing newsstance and its dependencies (a few minutes on a fresh machine)"
	@$(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --progress-bar off -e '.[dev]' > $(VENV)/install.log 2>&1 \
		|| { tail -n 30 $(VENV)/install.log; echo "pip install failed: see $(VENV)/install.log"; exit 1; }
	@touch $(STAMP)
	@echo "$(VENV) ready (install log: $(VENV)/install.log)"

clean:
	rm -rf $(VENV) .newsstance dist corpus/normalized
