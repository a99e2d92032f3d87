# Two commands set everything up: `make demo` and `make test`. Both create .venv themselves.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

# One thread per library keeps timings honest on 2 cores and avoids BLAS/Numba oversubscription.
export OPENBLAS_NUM_THREADS ?= 1
export OMP_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1

.PHONY: demo test bench lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m course_lib.demo

test: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) benchmarks/run_benchmarks.py

lint: $(STAMP)
	$(PY) -m ruff check course_lib autograder tests benchmarks

clean:
	rm -rf $(VENV) build .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
