# The README's commands. Everything installs into .venv; the local stack keeps its state in .smspark/.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
# uv installs the project (the venv's pip only bootstraps uv): it resolves and installs the ~160 packages in
# parallel, about half pip's time (measured on a fresh venv: pip 56 s with its cache warm, uv 31 s with an
# empty cache). Like pip here, no byte-compiling (Python compiles what it imports, once).
UV_VERSION := 0.13.8
UV := $(BIN)/uv
INSTALL := $(UV) pip install --python $(BIN)/python --quiet
export DAGSTER_HOME ?= $(CURDIR)/.smspark/dagster

# Demo size for `make run`; e.g. `make run DAYS=3 ROWS=5000`.
DAYS ?= 14
ROWS ?= 20000

.PHONY: install install-dev run test dev stop bench check-java clean

check-java:
	@command -v java >/dev/null 2>&1 || { \
	  echo "error: Java 17 or newer is required by Spark (pyspark 4)."; \
	  echo "       Debian/Ubuntu: sudo apt-get install -y openjdk-17-jre-headless"; \
	  echo "       macOS:         brew install openjdk@17"; exit 1; }

# `make run` / `make dev` need the package only; `make test` adds the test tools (pytest, cfn-lint, ...).
$(STAMP): pyproject.toml setup.cfg
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(UV) || $(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	$(INSTALL) -e .
	@touch $(STAMP)

$(DEV_STAMP): $(STAMP)
	$(INSTALL) -e '.[dev]'
	@touch $(DEV_STAMP)

install: check-java $(STAMP)

install-dev: check-java $(DEV_STAMP)

run: install
	$(BIN)/smspark run --days $(DAYS) --rows $(ROWS)

# Two workers (pytest-xdist) on this project's 2-core machines: 14-18 min instead of about 21 serially. Much of a
# test's time is waiting (a Spark job's start-up, training polls, alarm periods), so two overlap well.
TEST_WORKERS ?= 2

test: install-dev
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS)

dev: install
	$(BIN)/smspark dev --port 3000

stop:
	@if [ -x $(BIN)/smspark ]; then $(BIN)/smspark local stop; else echo "nothing to stop (.venv not installed)"; fi

bench: install
	$(BIN)/python benchmarks/scoring.py

clean: stop
	rm -rf .smspark
