# The README's quick start: `make lab` and `make test`, each from a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Development and CI pin the CPU build of torch; users get pyproject's range.
TORCH  := torch==2.13.0

.PHONY: lab serve test test-torch-range bench clean chromium catalogs

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

# The live lab on http://127.0.0.1:8765/ (Ctrl-C stops it; it writes no file).
serve: $(VENV)/.lab-installed
	$(BIN)/lossopt lab serve

chromium:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

test: $(VENV)/.dev-installed chromium
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest

# The library tests on both ends of the torch range that pyproject.toml states
# (noxfile.py). The registry's torch builds are several GB each: their
# environments are kept in $LOSSOPT_TORCH_ENVS (~/.cache/lossopt/torch-envs),
# outside the clone, and reused by every later run.
test-torch-range: $(VENV)/.dev-installed
	$(BIN)/nox

# The side-by-side benchmarks (minutes; pytorch-metric-learning as a peer).
bench: $(VENV)/.dev-installed
	$(BIN)/python -m pip install -q $(TORCH) -e '.[dev,bench]'
	$(BIN)/python -m benchmarks

# The lab's message catalogs: every string the code wraps in _() (or ngettext, N_) is
# extracted into locale/lossopt.pot and merged into each language's .po, new messages empty
# and changed ones fuzzy; tests/lab/test_i18n.py fails until each is translated. The .po is
# compiled when the lab loads it: there is no .mo to build. A new language:
#   $(BIN)/pybabel init -i $(LOCALE)/lossopt.pot -d $(LOCALE) -D lossopt -l LANG
LOCALE := src/lossopt/lab/locale
catalogs: $(VENV)/.dev-installed
	$(BIN)/pybabel extract -F babel.cfg -c Translators: --add-location=file --sort-by-file \
	  --project=lossopt --copyright-holder='the lossopt authors' -w 100 \
	  -o $(LOCALE)/lossopt.pot src/lossopt
	$(BIN)/pybabel update -i $(LOCALE)/lossopt.pot -d $(LOCALE) -D lossopt -w 100 --previous

# Reports are removed only when they hold nothing but what the lab wrote
# (the files its .lossopt-report marker lists).
clean:
	rm -rf $(VENV) .pytest_cache
	@$(PYTHON) -c 'import json, os, shutil; \
	own = lambda d: set(os.listdir(d)) <= {".lossopt-report", *json.load(open(d + "/.lossopt-report"))["files"]}; \
	[shutil.rmtree(d) for d in ("lab-report", "compare-report") if os.path.isfile(d + "/.lossopt-report") and own(d)]'

