# Every target installs what it needs into .venv first; all targets are idempotent.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-test
BENCH_STAMP := $(VENV)/.installed-bench
# Extra arguments for JupyterLab, e.g. make lab LAB_ARGS="--no-browser --port 8899"
LAB_ARGS ?=
# JupyterLab refuses to run as root without --allow-root (containers, CI-like boxes).
ROOT_ARGS := $(if $(filter 0,$(shell id -u)),--allow-root)

.PHONY: test report lab bench clean setup browser

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

# The browser test opens the reports in Debian's chromium; install it when it is missing.
browser:
	@if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium with apt-get (for the browser test)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "chromium is missing: install Debian's chromium package (as root: apt-get install chromium)" >&2; exit 1; \
	  fi; \
	fi

test: $(STAMP) browser
	$(PY) -m pytest

report: $(STAMP)
	$(PY) -m reliability report

lab: $(STAMP)
	$(PY) -m jupyter lab $(ROOT_ARGS) $(LAB_ARGS) notebooks/

bench: $(BENCH_STAMP)
	$(PY) -m benchmarks

clean:
	rm -rf reports/ .pytest_cache .hypothesis
