# Set-up and everyday targets. `make grid` and `make test` are the README's quick start.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= 2

.PHONY: install grid test rehearse clean

$(BIN)/chaosgrid: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(BIN)/chaosgrid

grid: install
	PATH=$(abspath $(BIN)):$$PATH snakemake --cores $(CORES)

test: install
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/pytest -q -n auto

rehearse: install
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/pytest -q -n auto -m paper

clean:
	rm -rf results .snakemake
