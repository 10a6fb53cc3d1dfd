# Every target installs what it needs into .venv first; all targets are idempotent.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-test
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: test report lab bench clean setup

setup: $(STAMP)

# Rebuilt when pyproject.toml changes, so a stale .venv never hides a missing dependency.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	@touch $@

$(BENCH_STAMP): pyproject.toml $(STAMP)
	$(PY) -m pip install --quiet -e '.[test,bench]'
	@touch $@

test: $(STAMP)
	$(PY) -m pytest

report: $(STAMP)
	$(PY) -m reliability report

lab: $(STAMP)
	$(PY) -m jupyter lab notebooks/

bench: $(BENCH_STAMP)
	$(PY) -m benchmarks

clean:
	rm -rf reports/ .pytest_cache .hypothesis
