# Every target bootstraps .venv from nothing: only python3 (>= 3.10) is needed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test lint typecheck pytest docs docs-serve demo bench clean mutation coverage

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,trio,ses,dkim]'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks tools
	$(VENV)/bin/ruff format --check src tests benchmarks tools

typecheck: $(STAMP)
	$(VENV)/bin/mypy --strict src

pytest: $(STAMP)
	$(PY) -m pytest -q

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir build/site

# The whole check that CI runs: lint, types, tests on asyncio and trio (under coverage, with its
# gates), docs.
test: lint typecheck coverage docs

# The tests under coverage, subprocesses included (the CLI, the demo; [tool.coverage] in
# pyproject.toml), then the gates, in percent of branches and lines: protocol/ and message/
# whole, the package just under the level reached so far (tests/README.md; the aim is 97).
MESSAGE_COVERAGE_MIN ?= 100
COVERAGE_MIN ?= 97
coverage: $(STAMP)
	rm -f .coverage .coverage.*
	$(VENV)/bin/coverage run -m pytest -q
	$(VENV)/bin/coverage combine -q
	$(VENV)/bin/coverage report --include='*/lettre/protocol/*' --fail-under=100
	$(VENV)/bin/coverage report --include='*/lettre/message/*' --fail-under=$(MESSAGE_COVERAGE_MIN)
	$(VENV)/bin/coverage report --fail-under=$(COVERAGE_MIN)

# Mutation testing of the sans-IO core and the message parsers ([tool.mutmut] in pyproject.toml,
# scores in tests/README.md). Slow (tens of minutes), so not part of `make test`. mutmut keeps its
# results in mutants/ and goes on where it stopped; pick mutants with, for example,
# `make mutation MUTANTS='lettre.protocol.replies.*'` (naming mutants re-tests them even when
# they have a result). One worker by default, so that the machine stays usable:
# `make mutation MUTATION_CHILDREN=2` for more.
MUTATION_CHILDREN ?= 1
mutation: $(STAMP)
	$(PY) -m pip install --quiet 'mutmut>=3.8,<4'
	$(VENV)/bin/mutmut run --max-children $(MUTATION_CHILDREN) $(MUTANTS)
	$(PY) tools/mutation_report.py

demo: $(STAMP)
	$(PY) -m lettre demo

bench: $(STAMP)
	$(PY) benchmarks/run.py

docs-serve: $(STAMP)
	$(VENV)/bin/mkdocs serve

clean:
	rm -rf $(VENV) build .mypy_cache .ruff_cache .hypothesis
