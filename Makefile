# The two commands a newcomer needs: `make lab` (set up, then run the local flash-sale lab) and `make test`.
# Both create the virtualenv from requirements.txt first, so they work on a fresh clone.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-installed
CHROMIUM ?= /usr/bin/chromium
CHROMEDRIVER ?= /usr/bin/chromedriver

.PHONY: setup browser test test-fast soak lab local clean

setup: $(STAMP) browser

$(STAMP): requirements.txt app/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $(STAMP)

## A real browser for the live view's page tests (tests/test_console.py): Debian's chromium and chromedriver,
## installed with apt-get once (as root); skipped when both are there (bench/browser.py looks at the same paths). It never fails setup: without them only the
## page tests fail, saying how to install them.
browser:
	@if [ -x $(CHROMIUM) ] && [ -x $(CHROMEDRIVER) ]; then \
		true; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "setup: installing Debian's chromium and chromium-driver for the page tests (apt-get, once)"; \
		( apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver \
			>/dev/null ) || echo "setup: could not install chromium (see apt-get's message above): the page tests" \
			"will fail; retry with: apt-get update && apt-get install -y chromium chromium-driver"; \
	else \
		echo "setup: no $(CHROMIUM) or $(CHROMEDRIVER), and no apt-get as root to install them: the page" \
			"tests will fail until Debian's chromium and chromium-driver (or equivalents at those paths) are installed"; \
	fi

## Everything CI runs: unit, end-to-end, fault-injection and Pulumi-mock tests, plus the type check. Most tests wait on
## processes and emulators more than they compute, so they run in TEST_WORKERS pytest-xdist workers (each with its
## own emulators on free ports); the timing-sensitive ones (marked serial) run alone afterwards.
TEST_WORKERS ?= 2

test: setup
	$(PY) -m pytest -n $(TEST_WORKERS) -m "not serial"
	$(PY) -m pytest -m serial

## The quick loop while developing: skips the slow end-to-end tests.
test-fast: setup
	$(PY) -m pytest -n $(TEST_WORKERS) -m "not slow and not serial"
	$(PY) -m pytest -m "serial and not slow"

## Does the suite flake? `make test` three times in a row beside the quick benchmark (a loaded 2-core machine).
soak: setup
	bash .ci/soak 3

## The project's main job on a machine with no AWS account.
lab: setup
	$(PY) -m bench.lab

## Start the local system (emulator + services) and leave it running until Ctrl-C.
local: setup
	$(PY) -m bench.local up

clean:
	rm -rf $(VENV) results .local .pytest_cache .mypy_cache
