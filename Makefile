# Two entry points for a newcomer: `make demo` and `make test`. Both create .venv when missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo_out

.PHONY: demo test test-fast lint install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,app]'
	touch $(STAMP)

install: $(STAMP)

# OMP_WAIT_POLICY=PASSIVE: OpenMP threads sleep instead of spinning while they wait (on a busy 2-core
# machine spinning made CPU training steps ~10x slower).
test: $(STAMP)
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python -m pytest -q

test-fast: $(STAMP)
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check pdfnet tests scripts

demo: $(STAMP)
	DEMO_DIR=$(DEMO_DIR) PATH=$(CURDIR)/$(BIN):$$PATH bash scripts/demo.sh

clean:
	rm -rf $(DEMO_DIR) .pytest_cache
