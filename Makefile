# LULC Change Explorer: `make run` starts the app on the bundled demo data, `make test` runs all tests.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8501

.PHONY: run test bench venv clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -r requirements.txt
	touch $@

run: venv
	$(PY) -m streamlit run app.py --server.port $(PORT)

test: venv
	$(PY) -m pytest -q -ra

bench: venv
	$(PY) bench/bench_classifier.py

clean:
	rm -rf $(VENV) .pytest_cache
