# Two commands for a new machine (see README):
#   make demo   — create .venv, install motiflab, run the main job on the built-in sample
#   make test   — create .venv, install motiflab + test tools (+ Chromium), run every test tier
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: demo test test-core test-notebooks test-browser bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.core: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.full: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[interactive,test]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (motiflab)" >/dev/null
	@touch $(VENV)/.core $@

$(VENV)/.bench: pyproject.toml | $(VENV)/.full
	$(BIN)/python -m pip install --quiet -e ".[interactive,test,bench]"
	@touch $@

demo: $(VENV)/.core
	$(BIN)/motiflab run sample --out motiflab-result.npz --hierarchy motiflab-hierarchy.json --overwrite
	$(BIN)/motiflab demo --out motiflab-demo.html --overwrite

# Every tier: core unit tests, notebook execution, real-browser UI tests.
test: $(VENV)/.full
	bash scripts/ensure-chromium.sh
	$(BIN)/python -m pytest -n 2 --dist loadfile $(PYTEST_ARGS)

test-core: $(VENV)/.full
	$(BIN)/python -m pytest -m "not notebooks and not browser" $(PYTEST_ARGS)

test-notebooks: $(VENV)/.full
	$(BIN)/python -m pytest -m notebooks tests/notebooks $(PYTEST_ARGS)

test-browser: $(VENV)/.full
	bash scripts/ensure-chromium.sh
	$(BIN)/python -m pytest -m browser tests/browser $(PYTEST_ARGS)

bench: $(VENV)/.bench
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache test-artifacts
