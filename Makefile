# `make run` and `make test` are the whole set-up on a machine with Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
WITH := scripts/with-services
CHROMIUM ?= /usr/bin/chromium  # what the browser tests launch (tests/live.py)
export PYTHONUNBUFFERED := 1

.PHONY: run test test-clock lint check test-deps browser-deps migrate demo services-down bench bench-smoke clean

$(BIN)/.installed: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

migrate: $(BIN)/.installed
	$(WITH) $(BIN)/python manage.py migrate_schemas --verbosity 0

demo: migrate
	$(WITH) $(BIN)/python manage.py seed_demo

run: $(BIN)/.installed
	scripts/run

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	$(WITH) $(BIN)/mypy

check: $(BIN)/.installed
	$(WITH) $(BIN)/python manage.py makemigrations --check --dry-run

# The browser tests drive Debian's Chromium through Playwright (Playwright's own browser download
# does not work here), the load-generator tests drive wrk, and tests/test_deploy.py checks deploy/
# with nginx -t and systemd-analyze verify: all installed when missing (on a host running systemd,
# Debian's nginx package also starts its own nginx.service: `systemctl disable --now nginx`).
test-deps:
	@missing=""; [ -x $(CHROMIUM) ] || missing="$$missing chromium"; \
	command -v wrk >/dev/null || missing="$$missing wrk"; \
	[ -x /usr/sbin/nginx ] || missing="$$missing nginx"; \
	command -v systemd-analyze >/dev/null || missing="$$missing systemd"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi; \
	  echo "installing$$missing for the tests"; \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing \
	  || { $$sudo apt-get update && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; }; \
	fi

browser-deps: test-deps

test: lint check test-deps
	$(WITH) $(BIN)/python -m pytest -q $(PYTEST_ARGS)

# The tests that read the time, at each of the fixed instants of tests/clock.py (a Saturday
# evening, New York working hours, New Year's Eve, the DST changes of New York and Dublin).
# `make test` itself runs at one fixed instant (CLINIC_TEST_NOW picks another).
test-clock: $(BIN)/.installed test-deps
	$(WITH) $(BIN)/python scripts/test_clock.py $(PYTEST_ARGS)

services-down:
	$(BIN)/python scripts/services.py down

clean: services-down
	rm -rf .run

# Benchmarks (bench/README.md). `bench` runs every scenario at full length (about 25 minutes;
# BENCH_ARGS="--quick" or "--only search"); `bench-smoke` checks the invariants at small scale
# in under 2 minutes and fails only when one breaks, never on timing.
bench: $(BIN)/.installed
	$(WITH) $(BIN)/python bench/run.py $(BENCH_ARGS)

bench-smoke: $(BIN)/.installed
	$(WITH) $(BIN)/python bench/run.py --smoke $(BENCH_ARGS)
