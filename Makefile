# The two commands of the quick start: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test lint typecheck secrets unit install clean bench schema indexes

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,embeddings]"
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(BIN)/genmedia serve

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy .

secrets: $(STAMP)
	$(BIN)/python scripts/check-secrets.py

test: $(STAMP) lint typecheck secrets
	bash scripts/run-tests.sh

bench: $(STAMP)
	$(BIN)/python bench/run.py

indexes: $(STAMP)
	$(BIN)/python deploy/indexes.py > deploy/firestore.indexes.json

schema: $(STAMP)
	$(BIN)/genmedia export-schema > schema.graphql

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
