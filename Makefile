# Two entry points for a fresh machine (see README.md):
#   make demo   sets up .venv and runs the whole workflow on the built-in demo data
#   make test   sets up .venv and runs the test suite
# Other targets: setup (environment only), lint (ruff, snakefmt, snakemake --lint, mypy,
# import layers, config/README.md up to date), bench.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch first, pinned: on the development machines this resolves to a CPU wheel on disk,
# and no later step may replace it with a CUDA build.
TORCH ?= torch==2.13.0
CORES ?= all

.PHONY: setup demo test lint bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	# tinysoundfont renders the demo; its pyaudio requirement (live playback) is not needed.
	$(BIN)/python -m pip install --quiet --no-deps "tinysoundfont==0.3.7"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

demo: setup
	$(BIN)/snakemake --cores $(CORES)

test: setup
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check src tests workflow/scripts benchmarks tools
	$(BIN)/ruff format --check src tests workflow/scripts benchmarks tools
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint
	$(BIN)/mypy
	$(BIN)/python tools/check_layers.py
	$(BIN)/python tools/config_reference.py --check

bench: setup
	$(BIN)/python benchmarks/feature_throughput.py
	$(BIN)/python benchmarks/dag_scale.py

clean:
	rm -rf results resources .snakemake
