# Every target creates or reuses the virtualenv in $(VENV) from the pinned requirements.txt.
VENV ?= .venv
PY := $(VENV)/bin/python
SYSTEM_PYTHON ?= python3
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONDONTWRITEBYTECODE = 1

.PHONY: venv test lint demo bench bench-quality clean

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(SYSTEM_PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

venv: $(VENV)/.installed

$(VENV)/.bench-installed: $(VENV)/.installed requirements-bench.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-bench.txt
	touch $@

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: lint
	$(PY) -m pytest

demo: venv
	$(PY) -m training.demo

bench-quality: $(VENV)/.bench-installed
	$(PY) -m training.bench_quality

bench: bench-quality

clean:
	rm -rf artifacts .pytest_cache .ruff_cache
