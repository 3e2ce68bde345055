# LULC Change Explorer: `make run` starts the app on the bundled demo data, `make test` runs all tests.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8501

.PHONY: run test lint bench venv clean fake-sh

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -r requirements.txt
	# the project itself, editable (scripts and benches import lulc_core without sys.path edits)
	$(PY) -m pip install --no-deps --no-build-isolation -e .
	touch $@

run: venv
	$(PY) -m ui.serve --server.port $(PORT)

test: venv lint
	$(PY) -m pytest -q -ra

bench: venv
	$(PY) bench/bench_classifier.py
	$(PY) bench/bench_pipeline.py   # per-stage seconds and peak RSS; writes docs/bench_pipeline.txt

lint: venv
	$(PY) -m ruff check .

# A local fake of the Sentinel Hub services over the bundled demo scenes (offline development; prints
# the SH_* and REQUESTS_CA_BUNDLE settings to use). PORT_SH=... to move it.
fake-sh: venv
	$(PY) -m tests.fakes.sentinelhub --port $(or $(PORT_SH),8765)

clean:
	rm -rf $(VENV) .pytest_cache
