# The commands a person types. Each target installs what it needs into .venv first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install test lint pytest bench clean book book-check serve

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

pytest: $(STAMP)
	# one torch thread per worker: two xdist workers on two cores must not oversubscribe them
	OMP_NUM_THREADS=1 $(PY) -m pytest -n 2

# student-edition after book: it reuses the execution cache, and its test scans the HTML
test: lint book book-check student-edition pytest

bench: $(STAMP)
	$(PY) benchmarks/bench_optim.py
	$(PY) benchmarks/bench_train.py
	$(PY) benchmarks/bench_grading.py

clean:
	rm -rf _build .pytest_cache .ruff_cache

include mk/grading.mk

# Strict: warnings are errors and a cell that raises fails the build; execution is cached.
# One torch thread: the book's networks are tiny, and splitting their matrix products across
# threads costs more than it saves. Seed offset 0: the runs the prose describes.
book: $(STAMP)
	OMP_NUM_THREADS=1 NNBOLTS_SEED_OFFSET=0 $(VENV)/bin/jupyter-book build . --builder html -W --keep-going

# Every chapter executed again under other CPU kernels, 2 threads and seed offset 1
# (tools/book_check.py declares the configuration): the book must build on any machine.
book-check: $(STAMP)
	$(PY) tools/book_check.py

serve: book
	$(PY) -m http.server --directory _build/html 8000

# What students receive, with no answer in it (tools/student_edition.py): the book's HTML without
# the instructor guide (it reuses make book's execution cache, so after `make book` nothing is
# executed again), the released notebooks, nnbolts and a requirements.txt without nbgrader, in
# _build/student. Publish that folder; keep this repository private. tests/test_student_edition.py
# scans every file of it for solutions, hidden tests and quiz keys.
.PHONY: student-edition
student-edition: $(STAMP)
	$(PY) tools/student_edition.py
