# `make lab` opens the series, `make test` runs the tests; both create .venv and install the pinned
# requirements on first use (and again whenever requirements.txt changes).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup lab test lint run-all fonts
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings/overrides.json
setup: $(VENV)/.installed $(LAB_SETTINGS) fonts

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

# A quiet JupyterLab for a workshop room: no "official Jupyter news" prompt, no update check (both would
# fetch from the internet). JupyterLab reads these defaults from the environment; tests/test_lab.py checks them.
$(LAB_SETTINGS): Makefile $(VENV)/.installed
	mkdir -p $(dir $@)
	echo '{"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": false}}' > $@

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
