# Two commands matter: `make run` and `make test`. Both build .venv from pyproject.toml
# on first use (and again whenever pyproject.toml changes).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install run test bench openapi lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## Serve on 127.0.0.1:8000 with the embedded memory store (override with DESCENT_* variables).
run: $(STAMP)
	$(PY) -m service

## The whole suite, against the Redis at DESCENT_TEST_REDIS_URL or a private redis-server.
test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

## Benchmarks: optimizer math against torch.optim, then the HTTP service.
bench: $(STAMP)
	$(PY) bench/optim.py
	@if [ -f bench/service.py ]; then $(PY) bench/service.py; fi

## Rewrite the committed OpenAPI document from the app.
openapi: $(STAMP)
	$(PY) -m service.openapi > openapi/openapi.json

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
