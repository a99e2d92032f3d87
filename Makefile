# Two commands set everything up: `make demo` and `make test`. Both create .venv themselves.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

# One thread per library keeps timings honest on 2 cores and avoids BLAS/Numba oversubscription.
export OPENBLAS_NUM_THREADS ?= 1
export OMP_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1

.PHONY: demo test bench lint clean lab

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

# The main job: train a ConvNet on the digits; run the instructor's nbgrader cycle on all three
# assignments (release, autograde sample submissions, feedback, gradebook); execute every
# lecture notebook into build/notebooks/*.html.
demo: $(STAMP)
	$(PY) -m course_lib.demo
	$(PY) -m autograder.course_demo --dir build/demo_course
	MPLBACKEND=Agg $(VENV)/bin/jupyter nbconvert --to html --execute --log-level=WARN \
		--ExecutePreprocessor.timeout=600 --output-dir build/notebooks notebooks/[0-9]*.ipynb
	@echo "Lecture notebooks as HTML: build/notebooks/"

test: $(STAMP)
	$(PY) -m pytest

# The course book: executes the lecture notebooks once (or reuses the copies `make test` left in
# build/executed_notebooks, when their source is unchanged), releases the assignments with
# nbgrader, and builds a static site with Jupyter Book. Open build/book/src/_build/html/index.html.
.PHONY: book
book: $(STAMP)
	MPLBACKEND=Agg $(PY) book/build.py --out build/book

# JupyterLab for students and instructors (Formgrader, Assignment List, Validate) with the venv
# first on PATH, also in its terminals: they run a non-login shell, because a login shell (what
# Jupyter starts when its output is not a terminal) resets PATH from /etc/profile.
# Extra options: make lab LAB_ARGS="--port=8899 --ServerApp.root_dir=/path/to/course".
LAB_SHELL ?= /bin/bash
lab: $(STAMP)
	PATH="$(abspath $(VENV))/bin:$$PATH" $(abspath $(VENV))/bin/jupyter lab \
		--ServerApp.terminado_settings="shell_command=['$(LAB_SHELL)']" $(LAB_ARGS)

# Headline table with all cores on both sides, then a 1-thread table (sets its own thread counts).
# `make bench BENCH=--short`: the headline rows only, a few minutes. See benchmarks/README.md.
BENCH ?=
bench: $(STAMP)
	$(PY) benchmarks/run_benchmarks.py $(BENCH)

lint: $(STAMP)
	$(PY) -m ruff check course_lib autograder tests benchmarks

clean:
	rm -rf $(VENV) build .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
