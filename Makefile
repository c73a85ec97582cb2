# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# The CPU wheel is pinned so a fresh set-up never pulls a multi-GB CUDA build of torch.
# GPU users: see README ("Installing with CUDA").
TORCH  ?= torch==2.13.0
SHARED_DATA := $(abspath ../shared/datasets)
export GRAPHKIT_DATA ?= $(if $(wildcard $(SHARED_DATA)),$(SHARED_DATA),)
export OMP_NUM_THREADS ?= 2
PYTEST_WORKERS ?= 2

.PHONY: setup demo test lint bench-report clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check "$(TORCH)"
	$(PY) -m pip install -q --disable-pip-version-check -e ".[test]"
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(PY) -m graphkit demo

test: setup
	$(PY) -m ruff check graphkit benchmarks examples tests
	$(PY) -m pytest -n $(PYTEST_WORKERS) --durations=25 tests

lint: setup
	$(PY) -m ruff check graphkit benchmarks examples tests

bench-report: setup
	$(PY) -m benchmarks.report

clean:
	rm -rf $(VENV) demo-results .pytest_cache
