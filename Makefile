# The two commands a newcomer needs: `make lab` (set up, then run the local flash-sale lab) and `make test`.
# Both create the virtualenv from requirements.txt first, so they work on a fresh clone.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-installed

.PHONY: setup test test-fast lab local clean

setup: $(STAMP)

$(STAMP): requirements.txt app/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $(STAMP)

## Everything CI runs: unit, end-to-end, fault-injection and Pulumi-mock tests, plus the type check.
test: setup
	$(PY) -m pytest

## The quick loop while developing: skips the slow end-to-end tests.
test-fast: setup
	$(PY) -m pytest -m "not slow"

## The project's main job on a machine with no AWS account.
lab: setup
	$(PY) -m ops.lab

## Start the local system (emulator + services) and leave it running until Ctrl-C.
local: setup
	$(PY) -m ops.local up

clean:
	rm -rf $(VENV) results .local .pytest_cache .mypy_cache
