# Two commands on a fresh machine (Python 3.11 + make): `make run` and `make test`.
# Each creates .venv and installs from pyproject.toml by itself, again when it changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?= -m "not slow"

# Debian packages the slow tests use for real: a PostgreSQL server behind `mlflow server`, and
# a headless browser for the MLflow UI. `make system-deps` installs the missing ones (root).
SYSTEM_PACKAGES := postgresql chromium chromium-driver

.PHONY: run test lint format bench clean system-deps docs docs-serve

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e ".[test]"
	touch $@

$(VENV)/.installed-docs: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e ".[docs]"
	touch $@

run: $(VENV)/.installed  ## train the default experiment
	$(BIN)/rnnexp $(ARGS)

# the tests on every core (pytest-xdist): most of a test's time is a process starting or a
# store answering, so two run side by side on two cores in ~0.6 of the time
test: $(VENV)/.installed-test lint  ## lint, then the test suite (CI adds the slow tests)
	$(BIN)/python -m pytest -n auto --dist worksteal $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check rnnexp tests benchmarks docs/hooks.py
	$(BIN)/ruff format --check rnnexp tests benchmarks docs/hooks.py

# the user's guide (docs/, mkdocs.yml) into outputs/site; --strict: a broken link or reference
# fails the build
docs: $(VENV)/.installed-docs  ## build the documentation site
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

docs-serve: $(VENV)/.installed-docs  ## the site on http://127.0.0.1:8000, rebuilt on each save
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --strict

bench: $(VENV)/.installed  ## benchmarks/throughput.py against PyTorch (the bench extra)
	$(BIN)/pip install -q -e ".[bench]"
	$(BIN)/python benchmarks/throughput.py --threads 1

format: $(VENV)/.installed-test
	$(BIN)/ruff check --fix rnnexp tests benchmarks docs/hooks.py
	$(BIN)/ruff format rnnexp tests benchmarks docs/hooks.py

system-deps:  ## the Debian packages of the slow tests (CI runs this before `make test`)
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  echo "installing $$missing"; \
	  $$sudo apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing; \
	fi

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
	find rnnexp -name '*.nbi' -o -name '*.nbc' | xargs rm -f
