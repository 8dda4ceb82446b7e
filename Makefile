# One-command entry points. Each target installs what is missing first, so a fresh machine needs
# only Python 3.13 (on PATH or installed through pyenv), Node 20 and make.
SHELL := /bin/bash
# The Python that Azure runs the app on (infra/ deploys Flex Consumption with Python 3.13).
PYTHON_VERSION := 3.13
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: help setup browser test test-matrix check unit demo run bench chaos clean

help:
	@echo "make demo   - run the whole signing pipeline locally (Azurite + sandbox + host), with a summary"
	@echo "make test   - static checks and the full test suite"
	@echo "make run    - start Azurite, the Connective sandbox and the local host until Ctrl-C"
	@echo "make bench  - run every benchmark and write bench/results/latest.json"

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@python="$$(devtools/find-python $(PYTHON_VERSION))" || exit 1; \
	if [ -x $(PY) ] && [ "$$($(PY) -c 'import sys; print("%d.%d" % sys.version_info[:2])')" != "$(PYTHON_VERSION)" ]; then \
	  echo "error: $(VENV) was made with another Python than $(PYTHON_VERSION); run \`make clean\` and try again" >&2; exit 1; fi; \
	echo "$$python -m venv $(VENV)"; "$$python" -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

# Debian's Chromium, for the test that signs through the sandbox's ActionUrl page.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is missing and this user cannot apt-get install it; the browser test will be skipped"; fi; }

# checkov and pip-audit live in their own venv: checkov pins an older pycep-parser than the Bicep
# syntax test uses. They only read files, so that venv uses the machine's default python3 (checkov
# is not tested on 3.13 yet). The vulnerability audit passes with "skipped" where its database is
# unreachable.
IAC_VENV ?= .venv-iac

$(IAC_VENV)/.installed: devtools/requirements-checks.txt
	python3 -m venv $(IAC_VENV)
	$(IAC_VENV)/bin/python -m pip install --disable-pip-version-check -q -r devtools/requirements-checks.txt
	touch $@

# azure-cli in its own venv too (about 70 s and 730 MB once; then cached): the hooks' az flags are
# checked against its own --help (devtools/az_commands.py).
AZCLI_VENV ?= .venv-azcli

$(AZCLI_VENV)/.installed: devtools/requirements-azcli.txt
	python3 -m venv $(AZCLI_VENV)
	$(AZCLI_VENV)/bin/python -m pip install --disable-pip-version-check -q -r devtools/requirements-azcli.txt
	touch $@

check: setup $(IAC_VENV)/.installed $(AZCLI_VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(VENV)/bin/shellcheck scripts/*.sh
	CHECKOV=$(IAC_VENV)/bin/checkov devtools/iac_check.sh
	$(PY) -m devtools.az_commands --verify-cli $(AZCLI_VENV)/bin/az
	$(PY) -m devtools.vuln_audit --pip-audit $(IAC_VENV)/bin/pip-audit

unit: setup
	$(PY) -m pytest $(PYTEST_ARGS)

# The long form of the Connective variant matrix (tests/contract) is left out here: one variant of
# every behaviour still runs. `make test-matrix` runs every variant.
test: setup browser check
	$(PY) -m pytest -m "not matrix" $(PYTEST_ARGS)

test-matrix: setup
	$(PY) -m pytest -m matrix $(PYTEST_ARGS)

demo: setup
	$(PY) -m devtools.demo

run: setup
	$(PY) -m devtools.run

bench: setup
	$(PY) -m bench

chaos: setup
	$(PY) -m bench.chaos

clean:
	rm -rf $(VENV) $(IAC_VENV) $(AZCLI_VENV) node_modules .pytest_cache .mypy_cache .ruff_cache
