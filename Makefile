# Quick start: `make demo` runs the main job on sample_data/, `make test` runs the tests.
# Both create .venv and install the package on first use (needs only python3, pip and make).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO := runs/sample

.PHONY: install test lint demo bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,beam,dask]"
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/pytest -q

demo: $(STAMP)
	$(BIN)/tfrec build sample_data/images sample_data/labels.csv --out $(DEMO)/shards \
		--size 64 --group-col patient_id --overwrite
	$(BIN)/tfrec build sample_data/test_images --out $(DEMO)/shards --size 64 --overwrite
	$(BIN)/tfrec inspect $(DEMO)/shards --grid $(DEMO)/grid.png
	$(BIN)/tfrec train $(DEMO)/shards --out $(DEMO)/run --overwrite --quiet --epochs 12 \
		--augment sample_data/augment.json
	$(BIN)/tfrec predict $(DEMO)/shards --run $(DEMO)/run --tta 4

bench: $(STAMP)
	$(BIN)/python benchmarks/build.py

clean:
	rm -rf $(VENV) runs benchmarks/_work
