# The README's two commands: `make demo` (the main job on its built-in default) and `make test`.
# Both build .venv first: the torch build that fits this machine, pinned, then occ-hf with its test extras,
# installed with that torch as a constraint so that pip never pulls a different one.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ARCH := $(shell uname -m)

# x86_64: the CUDA build lies on disk here and also runs on CPU; it is the one torchvision matches.
# aarch64: the CPU build that torchvision has wheels for.
ifeq ($(ARCH),aarch64)
TORCH_PINS := torch==2.9.1 torchvision==0.24.1
else
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
endif

.PHONY: demo test lint format setup

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml setup.py Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(TORCH_PINS)
	printf '%s\n' $(TORCH_PINS) > $(VENV)/torch-constraints.txt
	$(BIN)/pip install --quiet --constraint $(VENV)/torch-constraints.txt --editable ".[test]"
	touch $@

demo: $(VENV)/.installed
	$(BIN)/occ-hf demo

test: $(VENV)/.installed lint
	$(BIN)/python -m pytest -n 2 tests

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
