# Self-installing targets: the first `make test` / `make reproduce` creates .venv (pip, torch first).
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM := false
# Bytecode is cached on first import (into .venv and the ignored __pycache__ folders): where the
# environment sets PYTHONDONTWRITEBYTECODE (CI images do), every kernel, worker and test process
# would otherwise recompile torch, open_clip and sentence-transformers in memory (~12 s of CPU
# each time), since the install no longer byte-compiles the venv.
unexport PYTHONDONTWRITEBYTECODE
PROFILE ?= embedded
PYTEST_ARGS ?=
# Two pytest-xdist workers (one per core here); tests that share the smoke study stay on one
# (--dist loadgroup, grouped in tests/conftest.py). TEST_WORKERS=0 runs them in this process.
TEST_WORKERS ?= 2

.PHONY: install test reproduce book bench models clean

install: $(STAMP)

# torch first and pinned: with torch==2.13.0 installed nothing later can pull a CUDA build.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
# --no-compile: pip would byte-compile all ~21,500 modules of the venv one at a time (~80 s of
# CPU, a third of the install), and a compileall of them all still took 40 s on 2 cores; the
# package and its tests import a quarter of that code (~100 of 350 MB of sources). Python
# writes each imported module's .pyc on its first import instead (see `unexport` below).
	$(BIN)/pip install -q --no-compile torch==2.13.0
	$(BIN)/pip install -q --no-compile -e ".[dev]"
	$(BIN)/python -c "from cti_repro.tv_compat import install_pth; print(install_pth())"
	$(BIN)/python -c "import cti_repro.tv_compat as t; print(\"torchvision native ops:\", t.ensure_torchvision_importable())"
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

reproduce: $(STAMP)
	$(BIN)/cti-repro reproduce --profile $(PROFILE) --ablations

book: $(STAMP)
	$(BIN)/cti-repro report --profile $(PROFILE)

bench: $(STAMP)
	$(BIN)/pip install -q -e ".[bench]"
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf book/_build book/runs book/generated runs cache

models: $(STAMP)
	$(BIN)/cti-repro models mpnet
