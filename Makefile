# The README's quick start: `make lab` and `make test`, each from a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Development and CI pin the CPU build of torch; users get pyproject's range.
TORCH  := torch==2.13.0

.PHONY: lab test bench clean chromium

# The report's browser test drives Debian's Chromium (never a downloaded one).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.lab-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q $(TORCH) -e '.[lab]'
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q $(TORCH) -e '.[dev]'
	touch $@

lab: $(VENV)/.lab-installed
	$(BIN)/lossopt lab

chromium:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

test: $(VENV)/.dev-installed chromium
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest

# The side-by-side benchmarks (minutes; pytorch-metric-learning as a peer).
bench: $(VENV)/.dev-installed
	$(BIN)/python -m pip install -q $(TORCH) -e '.[dev,bench]'
	$(BIN)/python -m benchmarks

# Reports are removed only when they hold nothing but what the lab wrote
# (the files its .lossopt-report marker lists).
clean:
	rm -rf $(VENV) .pytest_cache
	@$(PYTHON) -c 'import json, os, shutil; \
	own = lambda d: set(os.listdir(d)) <= {".lossopt-report", *json.load(open(d + "/.lossopt-report"))["files"]}; \
	[shutil.rmtree(d) for d in ("lab-report", "compare-report") if os.path.isfile(d + "/.lossopt-report") and own(d)]'

