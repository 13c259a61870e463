# The commands a person types. Each target installs what it needs into .venv first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install test lint pytest bench clean

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check lib tests benchmarks

pytest: $(STAMP)
	# one torch thread per worker: two xdist workers on two cores must not oversubscribe them
	OMP_NUM_THREADS=1 $(PY) -m pytest -n 2

test: lint book pytest

bench: $(STAMP)
	$(PY) benchmarks/bench_optim.py
	$(PY) benchmarks/bench_train.py
	$(PY) benchmarks/bench_grading.py

clean:
	rm -rf _build .pytest_cache .ruff_cache

include mk/grading.mk

.PHONY: book serve
# Strict: warnings are errors and a cell that raises fails the build; execution is cached.
book: $(STAMP)
	$(VENV)/bin/jupyter-book build . --builder html -W --keep-going

serve: book
	$(PY) -m http.server --directory _build/html 8000
