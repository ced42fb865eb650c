# `make lab` opens the series, `make test` runs the tests; both create .venv and install the pinned
# requirements on first use (and again whenever requirements.txt changes).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup lab test lint run-all fonts wheelhouse install-offline offline-check gpu-check
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

# On a GPU machine: the GPU, its CUDA/cuDNN and measured training speed and memory (README, GPU notes)
gpu-check: setup
	$(BIN)/python notebooks/gpu_check.py

# The offline room kit (workshops without internet): every package the requirements need, as wheels in one
# folder to copy to a USB stick. `pip wheel` also builds wheels for the packages published only as source
# (keras-bert and its keras-* dependencies, jieba, snownlp); those are pure Python and serve every platform.
# Other platforms: add their binary wheels with `pip download -r requirements.txt --only-binary=:all:
# --platform macosx_11_0_arm64 (or win_amd64) --python-version 3.11 -d $(WHEELHOUSE)` on a connected machine.
WHEELHOUSE ?= outputs/wheelhouse
wheelhouse: setup
	$(BIN)/pip wheel --quiet -r requirements.txt -w $(WHEELHOUSE)
	@du -sh $(WHEELHOUSE); ls $(WHEELHOUSE) | wc -l

# On a participant's machine, with no network: the same environment as `make setup`, from the kit.
install-offline:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --no-index --find-links $(WHEELHOUSE) -r requirements.txt
	touch $(VENV)/.installed

# The kit works: a fresh venv installs from it with --no-index, imports helpers and loads the embedded model.
offline-check:
	rm -rf outputs/offline-venv
	$(PYTHON) -m venv outputs/offline-venv
	start=$$(date +%s); outputs/offline-venv/bin/pip install --quiet --no-index --find-links $(WHEELHOUSE) \
	  -r requirements.txt && echo "offline install: $$(( $$(date +%s) - start )) s"
	outputs/offline-venv/bin/python -c "import helpers; helpers.load_bert(seq_len=16); print('offline install OK')"
