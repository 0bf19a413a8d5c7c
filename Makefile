# baton.deploy developer / CI entry points. `make test` is what CI runs (via .ci/run).
#   make test     bootstrap, then units -> lint -> sanity -> molecule (stops at the first failure)
#   make units    pytest tests/unit (no test collected = failure)
#   make lint     ansible-lint, production profile (scripts/lint.sh)
#   make sanity   ansible-test sanity + units on a copy under ansible_collections/ (scripts/sanity.sh)
#   make molecule every scenario in extensions/molecule/ (scripts/molecule.sh)
#   make demo     bootstrap, then scripts/demo.sh
#   make clean    remove caches and test output (keeps .venv)
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.ONESHELL:
.DEFAULT_GOAL := test

VENV := .venv
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: test bootstrap units lint sanity molecule demo clean

test: bootstrap
	$(MAKE) --no-print-directory units lint sanity molecule

bootstrap:
	scripts/bootstrap.sh

units:
	rc=0; $(VENV)/bin/python -m pytest tests/unit -q || rc=$$?
	if [[ $$rc -eq 5 ]]; then echo "units: pytest collected no tests: failing" >&2; exit 1; fi
	exit $$rc

lint:
	scripts/lint.sh

sanity:
	scripts/sanity.sh

molecule:
	scripts/molecule.sh

demo: bootstrap
	scripts/demo.sh

clean:
	rm -rf .cache .pytest_cache tests/output dist
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
