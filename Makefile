# One entry point for people and CI. `make test` and `make demo` install what they need.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# torch 2.13.0 CPU build; a range it satisfies (see pyproject) keeps it.
TORCH  ?= torch==2.13.0
EXTRAS ?= cpu,train,dev,demo

.PHONY: install lint typecheck unit test audit chaos demo bench clean docs

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip show torch >/dev/null 2>&1 || $(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check streams models producers tests bench
	$(BIN)/ruff format --check streams models producers tests bench
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -m "not integration"

# The test command: lint, types, import rules, then every test (integration included,
# against the embedded broker unless STREAMSCORE_KAFKA__BOOTSTRAP_SERVERS is set).
test: lint typecheck
	$(BIN)/pytest

# Known vulnerabilities in the installed (pinned) dependencies. --strict: a dependency
# that could not be looked up fails the audit instead of passing it silently. Needs the
# PyPI JSON API (pypi.org/pypi/<name>/<version>/json) or api.osv.dev (`-s osv`).
audit: $(STAMP)
	$(BIN)/pip-audit --strict --skip-editable --progress-spinner off

# The fault harness (docs/reliability.md): ARGS="--quick" for the CI form.
chaos: $(STAMP)
	$(BIN)/streamscore chaos $(ARGS)

demo: $(STAMP)
	$(BIN)/streamscore demo $(ARGS)

bench: $(STAMP)
	$(BIN)/streamscore bench $(ARGS)

docs: $(STAMP)
	$(BIN)/streamscore schemas export
	$(BIN)/streamscore settings docs

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache var reports
