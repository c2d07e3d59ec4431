# Two commands matter: `make run` and `make test`. Both build .venv from the pyproject.toml
# files (the service and the Python client) on first use, and again whenever they change.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
RUN_STAMP  := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
PIP    := $(PY) -m pip install --quiet --disable-pip-version-check

.PHONY: install run test bench openapi lint clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# The server alone: what `make run` needs.
$(RUN_STAMP): pyproject.toml | $(PY)
	$(PIP) -e .
	touch $@

# Everything the tests and benchmarks use: test extra (torch is pinned to the CPU build
# on this machine's disk), the Python client with its torch and CLI extras.
$(TEST_STAMP): pyproject.toml clients/python/pyproject.toml | $(PY)
	$(PIP) -e '.[test]' -e 'clients/python[torch,cli]'
	touch $@ $(RUN_STAMP)

install: $(TEST_STAMP)

## Serve on 127.0.0.1:8000 with the embedded memory store (override with DESCENT_* variables).
run: $(RUN_STAMP)
	$(PY) -m service

## The whole suite, against the Redis at DESCENT_TEST_REDIS_URL or a private redis-server.
test: $(TEST_STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

## Benchmarks: optimizer math against torch.optim, then the HTTP service.
bench: $(TEST_STAMP)
	$(PY) bench/optim.py
	@if [ -f bench/service.py ]; then $(PY) bench/service.py; fi

## Rewrite the committed OpenAPI document from the app.
openapi: $(RUN_STAMP)
	$(PY) -m service.openapi > openapi/openapi.json

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
