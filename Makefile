# Plain entry points. `make test` is what CI runs after installing the
# system packages (see .ci/run).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python

.PHONY: venv kafka up down check run bench test test-unit test-slow clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed, found " + sys.version'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,bench,report]'
	touch $@

kafka: venv            ## resolve the Kafka jars into the cache (once)
	$(PY) -m streamtrain.localkafka classpath > /dev/null

up: venv               ## start the local broker on localhost:9092
	$(PY) -m streamtrain.localkafka up

down: venv             ## stop the local broker
	$(PY) -m streamtrain.localkafka down

check: up              ## round-trip one sample through the local broker
	$(PY) -m streamtrain.localkafka check

run: venv kafka        ## the whole pipeline on a local broker, then the report
	$(PY) -m streamtrain.demo $(DEMO_ARGS)

bench: venv kafka      ## every benchmark, one run (under 15 minutes)
	$(PY) -m benchmarks

test: venv kafka       ## every test, against a real broker
	$(PY) -m pytest

test-unit: venv        ## unit tests alone, no broker
	$(PY) -m pytest -m "not integration"

test-slow: venv kafka  ## the long fault-injection variants too
	$(PY) -m pytest -m "slow or not slow"

clean:
	rm -rf $(VENV) *.egg-info
