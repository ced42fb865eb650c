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

fonts:
	@$(BIN)/python -c "import matplotlib.font_manager as f, sys; sys.exit(not {'Noto Sans CJK SC', 'WenQuanYi Micro Hei', 'WenQuanYi Zen Hei', 'Source Han Sans SC', 'PingFang SC', 'Microsoft YaHei', 'SimHei'} & {x.name for x in f.fontManager.ttflist})" \
	  || echo "No CJK font found: Chinese labels in figures would be boxes. Debian/Ubuntu: sudo apt-get install fonts-wqy-microhei"

lab: setup
	$(BIN)/jupyter lab notebooks/

test: setup
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .

run-all: setup
	$(BIN)/python notebooks/run_all.py
