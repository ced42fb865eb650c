# `make lab` opens the series, `make test` runs the tests; both create .venv and install the pinned
# requirements on first use (and again whenever requirements.txt changes).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup lab test lint run-all fonts
setup: $(VENV)/.installed fonts

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

fonts:  # helpers.py holds the list of CJK fonts and warns with the install command when none is found
	@$(BIN)/python -c "import helpers" 2>&1 | grep -i "cjk font" || true

lab: setup
	$(BIN)/jupyter lab notebooks/

test: setup
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .

run-all: setup
	$(BIN)/python notebooks/run_all.py
