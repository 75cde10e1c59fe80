# Two commands are all the set-up: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# the request path's modules, which the install compiles with mypyc (proxy/compiled.py)
HOT    := $(shell sed -n 's/^    "\(proxy[a-z0-9_.]*\)",$$/\1/p' proxy/compiled.py | tr . / | sed 's/$$/.py/')

.PHONY: demo test bench venv clean tools

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml setup.py proxy/compiled.py $(HOT)
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/meshtui demo

# System tools some tests and benchmarks drive for real (ssh client, tmux, wrk, nginx, h2load).
tools:
	@sh .ci/install-tools

test: $(STAMP) tools
	$(BIN)/python -m pytest

bench: $(STAMP)
	@sh .ci/install-tools bench
	$(BIN)/python -m benchmarks.run_all

clean:
	rm -rf $(VENV) .pytest_cache
