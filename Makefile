# Preference fine-tuning course: set up, run and test everything from here.
#
#   make venv        create .venv and install the course (torch pinned; CPU wheel without an NVIDIA GPU)
#   make data        fetch and cache the corpus (~/.cache/preference-course)
#   make lab         open the notebooks in JupyterLab
#   make run         execute every notebook headless into build/ (.ipynb and .html)
#   make notebooks   re-execute the committed notebooks in place, cpu profile
#   make test        unit tests and every notebook and solution under nbval, smoke profile
#   make assignments regenerate the student versions (assignments/) from their sources (solutions/)
#   make solutions   re-execute the solution notebooks in place, cpu profile
#   make grade       grade submissions: make grade SUBMISSIONS=folder ASSIGNMENT=a1_diverse_preferences
#   make bench       the course against TRL and transformers on identical work (benchmarks/results/)
#   make site        build the course site into build/site (notebooks as committed, docs/) and check it in Chromium
#   make clean       remove build/
#
# Variables: PYTHON (python3), TORCH_VERSION (2.13.0), TORCH_INDEX (where torch
# comes from; unset: the CPU index below on a machine without nvidia-smi if it can
# be reached, else the default index), NOTEBOOKS (folders that `make test` runs
# under nbval), SUBMISSIONS, ASSIGNMENT and GRADE_OPTIONS (for `make grade`, e.g.
# GRADE_OPTIONS="--jobs 2 --output ~/grades/a1"; see tools/grade.py --help).

PYTHON ?= python3
VENV ?= .venv
TORCH_VERSION ?= 2.13.0
TORCH_INDEX ?=
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
NOTEBOOKS ?= notebooks solutions
BUILD ?= build

BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP := $(BIN)/python -m pip

.DEFAULT_GOAL := help
.PHONY: help venv data run notebooks lab test assignments solutions grade bench site clean torch-index

help:
	@sed -n 's/^#   make /  make /p' $(firstword $(MAKEFILE_LIST))

# Where torch comes from. PyPI's default Linux wheel is a CUDA build of several GB:
# right with an NVIDIA GPU, a waste without one. So: TORCH_INDEX if given; the
# default index where nvidia-smi exists; else the CPU index, if it answers within
# 10 s (some networks reach only PyPI; their PyPI mirror then has to do).
torch-index:
	@if [ -n "$(TORCH_INDEX)" ]; then echo "$(TORCH_INDEX)"; \
	elif command -v nvidia-smi >/dev/null 2>&1; then echo "default"; \
	elif $(PYTHON) -c "import urllib.request as u; u.urlopen('$(TORCH_CPU_INDEX)/torch/', timeout=10)" \
	    >/dev/null 2>&1; then echo "$(TORCH_CPU_INDEX)"; \
	else echo "no NVIDIA GPU, but $(TORCH_CPU_INDEX) cannot be reached: torch from the default index" >&2; \
	  echo "default"; fi

venv: $(STAMP)

# torch first and pinned: a bare or open-ended torch requirement would pull a
# newer CUDA build (several GB); afterwards pyproject's `torch>=2.6` is already
# satisfied and pip installs no other torch.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	@index=$$($(MAKE) -s --no-print-directory torch-index); \
	echo "torch==$(TORCH_VERSION) from $$index index"; \
	if [ "$$index" = default ]; then $(PIP) install -q "torch==$(TORCH_VERSION)"; \
	else $(PIP) install -q "torch==$(TORCH_VERSION)" --index-url "$$index"; fi
	$(PIP) install -q -e ".[dev,lab,site]"
	@touch $@

data: venv
	$(BIN)/python -m course_utils.data

test run notebooks solutions: export PYTHONHASHSEED := 0

run: venv data
	$(BIN)/python tools/run_notebooks.py --output-dir $(BUILD) --html $(sort $(wildcard notebooks/[0-9]*.ipynb))

notebooks: venv data
	$(BIN)/python tools/run_notebooks.py --inplace --profile cpu $(sort $(wildcard notebooks/[0-9]*.ipynb))

assignments: venv
	$(BIN)/python tools/assignments.py

solutions: venv data
	$(BIN)/python tools/run_notebooks.py --inplace --profile cpu $(sort $(wildcard solutions/*.ipynb))

grade: venv data
	@if [ -z "$(SUBMISSIONS)" ] || [ -z "$(ASSIGNMENT)" ]; then \
	  echo "usage: make grade SUBMISSIONS=folder ASSIGNMENT=name [GRADE_OPTIONS='--jobs 2 --output dir']"; \
	  echo "assignments: $(basename $(notdir $(wildcard solutions/*.ipynb)))"; exit 2; fi
	$(BIN)/python tools/grade.py "$(SUBMISSIONS)" --assignment "$(ASSIGNMENT)" $(GRADE_OPTIONS)

bench: venv data
	$(BIN)/python benchmarks/run.py

lab: venv data
	$(BIN)/jupyter lab notebooks/

# Two processes at once: the unit tests in the background, the notebooks in order in front, with one torch
# thread (two threads fight the unit tests' processes for the two cores). Measured from a fresh clone on the 2-core
# machine: pytest 16m24s so, 18m52s one after the other. The notebooks' smoke runs go to a fresh temporary folder
# (test the code, not a cache) and they write no bytecode: the repository stays as the grading tests, which check
# that it is unchanged, saw it.
test: venv data
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || echo "NOTE: no Chromium here: the browser check \
	of the course site (tests/test_site.py) is SKIPPED (Debian: apt-get install chromium chromium-driver)"
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT; \
	echo "unit tests (tests/) in the background; the notebooks under nbval meanwhile:"; \
	COURSE_PROFILE=smoke $(BIN)/python -m pytest -q -p no:cacheprovider tests > "$$tmp/unit-tests.log" 2>&1 & \
	unit=$$!; \
	COURSE_PROFILE=smoke COURSE_RUNS_DIR="$$tmp/runs" PYTHONDONTWRITEBYTECODE=1 OMP_NUM_THREADS=1 \
	  $(BIN)/python -m pytest -q -p no:cacheprovider --nbval-lax --nbval-cell-timeout=600 $(NOTEBOOKS); \
	notebooks=$$?; wait $$unit; unit=$$?; \
	echo "--- unit tests (tests/):"; cat "$$tmp/unit-tests.log"; \
	echo "make test: notebooks exit $$notebooks, unit tests exit $$unit"; [ $$notebooks = 0 ] && [ $$unit = 0 ]

# the site from the committed notebooks (never executed), then the browser check where Chromium is installed
site: venv
	$(BIN)/python tools/site_build.py --output $(BUILD)/site
	$(BIN)/python tools/check_site.py $(BUILD)/site

clean:
	rm -rf $(BUILD)
