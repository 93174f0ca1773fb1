# Two entry points for a fresh machine (see README):
#   make book   create .venv, install everything, build the book (HTML in _build/html)
#   make test   create .venv, install everything, run the whole test suite
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Small-profile papermill runs land here (outside the source tree's notebooks).
RUNS := _build/papermill
CHAPTERS := $(sort $(wildcard book/[0-9]*.ipynb))

export PLOTLY_RENDERER := notebook
export HF_HUB_OFFLINE := 1
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: venv book test lint unit notebooks nbval build-book bench sync-notebooks clean

venv: $(STAMP)

# torch is installed first, alone, so the CPU wheel satisfies every later
# requirement and nothing resolves to a CUDA build.
$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q torch==2.13.0 2>&1 | { grep -v '^WARNING: Location' || true; }
	$(BIN)/python -m pip install -q -r requirements.txt 2>&1 | { grep -v '^WARNING: Location' || true; }
	$(BIN)/python -m pip install -q --no-deps -e . 2>&1 | { grep -v '^WARNING: Location' || true; }
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

book: venv build-book

# The book must typeset its formulas offline: MathJax from the build, never a CDN (and, where
# Chromium is installed, every formula typeset in it with the network cut off).
build-book:
	$(BIN)/jupyter-book build . --all
	$(BIN)/python tests/book/check_math_offline.py _build/html

test: venv lint unit notebooks nbval build-book

# pyflakes, pycodestyle, import order and bugbear over the library, the chapters and the tests.
lint:
	$(BIN)/ruff check .

unit:
	$(BIN)/python -m pytest tests

# Every chapter, run through papermill with its small default parameters.
notebooks:
	mkdir -p $(RUNS)
	for nb in $(CHAPTERS); do \
	  echo "papermill $$nb"; \
	  $(BIN)/papermill --no-progress-bar --execution-timeout 900 -p profile small "$$nb" "$(RUNS)/$$(basename $$nb)"; \
	done

nbval:
	$(BIN)/python -m pytest --nbval-lax --nbval-cell-timeout=900 -p no:cacheprovider $(CHAPTERS)

# Maintainers: regenerate every chapter's .ipynb from its jupytext .py source and
# store small-profile outputs (plotly as JSON, not the 3 MB inline bundle).
sync-notebooks: venv
	for src in $(sort $(wildcard book/[0-9]*.py)); do \
	  nb="$${src%.py}.ipynb"; \
	  $(BIN)/jupytext --to ipynb -q "$$src" -o "$$nb"; \
	  PLOTLY_RENDERER=plotly_mimetype $(BIN)/papermill --no-progress-bar --log-level WARNING "$$nb" "$$nb"; \
	done

bench:
	$(BIN)/python tests/benchmarks/bench_flame.py

clean:
	rm -rf _build
