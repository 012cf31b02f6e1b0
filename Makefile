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
PROFILE ?= embedded
PYTEST_ARGS ?=

.PHONY: install test reproduce book bench models clean

install: $(STAMP)

# torch first and pinned: with torch==2.13.0 installed nothing later can pull a CUDA build.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[dev]"
	$(BIN)/python -c "from cti_repro.tv_compat import install_pth; print(install_pth())"
	$(BIN)/python -c "import cti_repro.tv_compat as t; print(\"torchvision native ops:\", t.ensure_torchvision_importable())"
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

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
