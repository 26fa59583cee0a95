# Preference fine-tuning course: set up, run and test everything from here.
#
#   make venv   create .venv and install the course (CPU torch, pinned)
#   make data   fetch and cache the corpus (~/.cache/preference-course)
#   make lab    open the notebooks in JupyterLab
#   make run    execute every notebook headless into build/ (.ipynb and .html)
#   make test   unit tests and every notebook under nbval, smoke profile
#   make clean  remove build/
#
# Variables: PYTHON (python3), TORCH_VERSION (2.13.0), TORCH_INDEX (unset; e.g.
# https://download.pytorch.org/whl/cpu where PyPI's default torch is a CUDA
# build), NOTEBOOKS (folders that `make test` runs under nbval).

PYTHON ?= python3
VENV ?= .venv
TORCH_VERSION ?= 2.13.0
TORCH_INDEX ?=
NOTEBOOKS ?= notebooks
BUILD ?= build

BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP := $(BIN)/python -m pip

.DEFAULT_GOAL := help
.PHONY: help venv data run lab test clean

help:
	@sed -n 's/^#   make /  make /p' $(firstword $(MAKEFILE_LIST))

venv: $(STAMP)

# torch first and pinned: a bare or open-ended torch requirement would pull a
# newer CUDA build (several GB); afterwards pyproject's `torch>=2.6` is already
# satisfied and pip installs no other torch.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "torch==$(TORCH_VERSION)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PIP) install -q -e ".[dev,lab]"
	@touch $@

data: venv
	$(BIN)/python -m course_utils.data

test run: export PYTHONHASHSEED := 0

run: venv data
	@mkdir -p $(BUILD)
	@set -e; for nb in $(sort $(wildcard notebooks/[0-9]*.ipynb)); do \
	  name=$$(basename "$$nb" .ipynb); \
	  echo "==> $$nb"; \
	  $(BIN)/jupyter nbconvert --to notebook --execute --ExecutePreprocessor.timeout=1800 \
	    --output-dir $(BUILD) --output "$$name" "$$nb"; \
	  $(BIN)/jupyter nbconvert --to html --output-dir $(BUILD) --output "$$name" "$(BUILD)/$$name.ipynb"; \
	done

lab: venv data
	$(BIN)/jupyter lab notebooks/

test: venv data
	rm -rf notebooks/runs/*-smoke  # smoke checkpoints of earlier runs: test the code, not a cache
	COURSE_PROFILE=smoke $(BIN)/python -m pytest -q -p no:cacheprovider tests \
	  --nbval-lax --nbval-cell-timeout=600 $(NOTEBOOKS)

clean:
	rm -rf $(BUILD)
