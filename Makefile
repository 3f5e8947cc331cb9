# loglabel: the two commands a fresh machine needs are `make demo` and `make test`.
PYTHON_BIN ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export PYTHON := $(abspath $(BIN))/python
# The local broker's port for demo, bench and kafka-*: `make demo LOGLABEL_KAFKA_PORT=9192`
# (or export it). kafka.sh refuses a port that something else holds.
LOGLABEL_KAFKA_PORT ?= 9092
export LOGLABEL_KAFKA_PORT

.PHONY: install demo test lint unit kafka-start kafka-stop kafka-status bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON_BIN) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

## The main job end to end: local Kafka, simulated traffic with a drift, labels, drift events.
demo: install
	deploy/kafka/kafka.sh start
	$(BIN)/loglabel demo --bootstrap 127.0.0.1:$(LOGLABEL_KAFKA_PORT) --output demo-output

## Lint, type-check, then every test (starts its own Kafka on 127.0.0.1:19092).
test: install lint
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

unit: install
	$(BIN)/pytest -m 'not kafka and not slow and not bench'

bench: install
	deploy/kafka/kafka.sh start
	$(BIN)/loglabel bench --bootstrap 127.0.0.1:$(LOGLABEL_KAFKA_PORT)

kafka-start:
	deploy/kafka/kafka.sh start
kafka-stop:
	deploy/kafka/kafka.sh stop
kafka-status:
	deploy/kafka/kafka.sh status

clean:
	rm -rf $(VENV) demo-output .pytest_cache .mypy_cache .ruff_cache
