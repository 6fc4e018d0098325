# Two commands set everything up on a fresh machine (see README.md):
#   make app    create .venv/, install everything, start the web app on the embedded model
#   make test   create/update the same .venv/ and run the default test tier
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: app test test-slow install lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall only when the dependency list changes; pip alone takes ~30 s to find nothing to do.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[gpu,dev]"
	touch $(STAMP)

install: $(STAMP)

app: install
	$(BIN)/ta serve

test: install
	$(BIN)/python -m pytest

test-slow: install
	$(BIN)/python -m pytest -m slow

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .cache .pytest_cache
