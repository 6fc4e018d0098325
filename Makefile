# Two commands set everything up on a fresh machine (see README.md):
#   make app    create .venv/, install everything, start the web app on the embedded model
#   make test   create/update the same .venv/ and run the default test tier
#   make test-ci    what CI runs (.ci/run): every tier but the GPU one, and nothing it needs may be missing
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: app test test-slow test-ci test-gpu install lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall only when the dependency list or the llama.cpp build changes; pip alone takes ~30 s to find nothing
# to do. llama-cpp-python comes first, built portably (never -march=native; see the script), so the project's
# install finds its pin satisfied; then one test decode in a child process (`ta doctor`) names a broken build
# here rather than as a SIGILL in the middle of a test run. A failed step leaves no stamp: the next make retries.
$(STAMP): pyproject.toml scripts/build_llama_cpp.sh | $(BIN)/python
	bash scripts/build_llama_cpp.sh $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[gpu,dev]"
	$(BIN)/python -m tutor.doctor   # = ta doctor, without depending on the entry point
	touch $(STAMP)

install: $(STAMP)

app: install
	$(BIN)/ta serve

# With TA_CI=1 (CI's .ci/run) the same command runs the slow tier too, and a missing data directory, chromium or
# registry is a failure, not a skip (tests/conftest.py, need()).
test: install
	$(BIN)/python -m pytest $(if $(TA_CI),-m "slow or not gpu",)

test-slow: install
	$(BIN)/python -m pytest -m slow

test-ci:
	TA_CI=1 $(MAKE) test

test-gpu: install
	$(BIN)/python -m pytest -m gpu

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .cache .pytest_cache
