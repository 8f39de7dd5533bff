# Two commands on a fresh machine: `make demo` and `make test` (see README.md).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.robustwatch-installed
# The CPU build of PyTorch that lies on this machine's disk; installed before the project so
# that pip never resolves torch to a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?=

.PHONY: demo test lint install promtool bench clean

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/robustwatch demo

# promtool (Debian package `prometheus`) checks the metrics exposition and the alert rules.
# Installed here when running as root; elsewhere those tests skip and say how to install it.
promtool:
	@if ! command -v promtool >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing promtool (Debian package prometheus)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null; \
	fi

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: $(STAMP) promtool lint test-peers
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) benchmarks/throughput.py

clean:
	rm -rf $(VENV) $(PEERS) .pytest_cache .ruff_cache *.egg-info

# The peers robustwatch is measured against (torchattacks, the Adversarial Robustness Toolbox,
# alibi-detect) live in a virtualenv of their own, .peers/, never beside robustwatch:
# `make test-peers` runs the parity tests (tests/peers/; tests/conftest.py, which serves the
# agent tests, is not loaded), `make bench-attacks` the benchmark.
PEERS ?= .peers
PEERS_STAMP := $(PEERS)/.robustwatch-peers-installed
PEERS_PYTEST_ARGS ?=

.PHONY: peers test-peers bench-attacks bench-drift bench-adversarial

$(PEERS_STAMP): scripts/peers-env.sh
	bash scripts/peers-env.sh $(PEERS)
	@touch $(PEERS_STAMP)

peers: $(PEERS_STAMP)

test-peers: $(PEERS_STAMP)
	$(PEERS)/bin/python -m pytest --confcutdir=tests/peers tests/peers $(PEERS_PYTEST_ARGS)

bench-attacks: $(PEERS_STAMP)
	$(PEERS)/bin/python benchmarks/attacks.py

bench-drift: $(PEERS_STAMP)
	$(PEERS)/bin/python benchmarks/drift.py

bench-adversarial: $(PEERS_STAMP) $(STAMP)
	$(PEERS)/bin/python benchmarks/adversarial_detection.py --skip-cost
	$(VENV)/bin/python benchmarks/adversarial_detection.py --skip-attacks
