# loglabel: the two commands a fresh machine needs are `make demo` and `make test`.
PYTHON_BIN ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export PYTHON := $(abspath $(BIN))/python
# The local broker's port for demo, bench and kafka-*: `make demo LOGLABEL_KAFKA_PORT=9192`
# (or export it). kafka.sh refuses a port that something else holds.
LOGLABEL_KAFKA_PORT ?= 9092
export LOGLABEL_KAFKA_PORT

.PHONY: install demo test lint unit chromium report-png kafka-start kafka-stop kafka-status bench clean

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
test: install lint chromium
	$(BIN)/pytest

## The browser the report test drives (Debian's chromium; nothing is downloaded otherwise).
CHROMIUM ?= /usr/bin/chromium
chromium:
	@if [ -x "$(CHROMIUM)" ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
	  echo "make chromium: $(CHROMIUM) is missing and apt-get is not available:" \
	       "install Chromium with your package manager (the report's browser test needs it)" >&2; \
	  exit 1; fi; \
	SUDO=; if [ "$$(id -u)" != 0 ]; then SUDO=sudo; fi; \
	echo "installing chromium from the system's packages ..."; \
	$$SUDO apt-get update -qq && \
	DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends \
	  chromium >/dev/null && [ -x "$(CHROMIUM)" ] || \
	  { echo "make chromium: apt-get could not install chromium" >&2; exit 1; }

## docs/report.png: the report of a run of the demo's size, as the browser test renders it
## (on the broker of LOGLABEL_TEST_BOOTSTRAP, else the tests' own on 127.0.0.1:19092).
report-png: install chromium
	LOGLABEL_REPORT_PNG=$(abspath docs/report.png) LOGLABEL_REPORT_DEMO_COUNT=40000 \
	  $(BIN)/pytest -q -p no:cacheprovider \
	  tests/labeler/ops/report/test_browser.py

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
