# baton.deploy developer / CI entry points. `make test` is what CI runs (via .ci/run).
#   make test     bootstrap, then units, lint and sanity side by side (each is mostly one core), then
#                 molecule if all three passed
#   make units    pytest tests/unit (no test collected = failure)
#   make lint     ansible-lint, production profile (scripts/lint.sh)
#   make sanity   ansible-test sanity + units on a copy under ansible_collections/, on every ansible-core
#                 of the version matrix (scripts/sanity.sh): sanity-ci (2.19, every test) and sanity-matrix
#                 (2.20, 2.21: units and the version-dependent tests); one version: make sanity-matrix MATRIX_CORES=2.21
#   make molecule every scenario in extensions/molecule/, slowest first, two at a time (scripts/molecule.sh);
#                 only some: make molecule BATON_MOLECULE_SCENARIOS=faults,default; more at once: BATON_MOLECULE_JOBS=3
#   make demo     bootstrap (CI's toolchain only), then scripts/demo.sh
#   make fleet-figures  the fleet scenario with its fleet-vs-one-host timings (not in CI), printed at the end
#   make bench    bootstrap (CI's toolchain only) + requirements-bench.txt, then the zero-drop benchmark (tests/bench/bench.py);
#                 quick: make bench BENCH_DEPLOYS=3 BENCH_COMBOS=systemd+nginx BENCH_BASELINES=classic
#                 over HTTPS: make bench BENCH_TLS=1; with N workers opening a new connection per request: BENCH_FRESH=N;
#                 runs of Ansible's floor (tests/bench/floor.yml) after each combination: BENCH_FLOOR=N (default 3, 0: none)
#   make clean    remove caches and test output (keeps .venv and the version matrix's .cache/venvs)
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.ONESHELL:
.DEFAULT_GOAL := test

VENV := .venv
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: test bootstrap bootstrap-toolchain units lint sanity sanity-ci sanity-matrix molecule demo fleet-figures bench clean

# First line of a stage's recipe: when the recipe ends (also when it fails), append
# "<stage> <seconds> <rc>" to $BATON_STAGE_TIMES if set (.ci/run sets it and prints the times).
stage_time = trap 'stage_rc=$$?; [[ -z "$${BATON_STAGE_TIMES:-}" ]] || echo "$(1) $$SECONDS $$stage_rc" >>"$$BATON_STAGE_TIMES"' EXIT

test: bootstrap
	$(MAKE) --no-print-directory -j3 --output-sync=target units lint sanity
	$(MAKE) --no-print-directory molecule

bootstrap:
	$(call stage_time,bootstrap)
	scripts/bootstrap.sh

# CI's toolchain only (.venv), not the version matrix's venvs: what demo and bench need.
bootstrap-toolchain:
	BATON_ANSIBLE_MATRIX=0 scripts/bootstrap.sh

units:
	$(call stage_time,units)
	rc=0; $(VENV)/bin/python -m pytest tests/unit -q || rc=$$?
	if [[ $$rc -eq 5 ]]; then echo "units: pytest collected no tests: failing" >&2; exit 1; fi
	exit $$rc

lint:
	$(call stage_time,lint)
	scripts/lint.sh

# The version matrix (README "Supported versions"): CI's ansible-core (.venv) and the extra ones
# (requirements-ansible-<X.Y>.txt). `make sanity` runs both legs; `make test` runs them side by side
# with units and lint (-j3). The extra versions run one after the other: on the same Python,
# ansible-test would build their sanity venvs in the same place.
CI_CORE := $(shell sed -n 's/^ansible-core==\([0-9]*\.[0-9]*\)\..*/\1/p' requirements-test.txt)
MATRIX_CORES := $(patsubst requirements-ansible-%.txt,%,$(wildcard requirements-ansible-*.txt))
sanity: sanity-ci sanity-matrix

sanity-ci:
	$(call stage_time,sanity/$(CI_CORE))
	BATON_ANSIBLE_VERSIONS="$(CI_CORE)" scripts/sanity.sh

sanity-matrix:
	$(call stage_time,sanity/$(subst $(eval) ,+,$(MATRIX_CORES)))
	BATON_ANSIBLE_VERSIONS="$(MATRIX_CORES)" scripts/sanity.sh

molecule:
	$(call stage_time,molecule)
	scripts/molecule.sh

demo: bootstrap-toolchain
	scripts/demo.sh

fleet-figures: bootstrap
	BATON_FLEET_FIGURES=1 BATON_MOLECULE_SCENARIOS=fleet scripts/molecule.sh
	cat tests/output/zero-drop/fleet-figures.json

BENCH_DEPLOYS ?= 20
BENCH_COMBOS ?= systemd+nginx,systemd+caddy,supervisor+nginx,supervisor+caddy,systemd+none
BENCH_BASELINES ?= naive,classic,reuseport
BENCH_TLS ?= 0
BENCH_FRESH ?= 0
BENCH_FLOOR ?= 3
bench: bootstrap-toolchain
	stamp=$(VENV)/.requirements-bench.sha256
	want=$$(sha256sum requirements-bench.txt)
	if [[ "$$(cat $$stamp 2>/dev/null)" != "$$want" ]]; then
		$(VENV)/bin/python -m pip install --disable-pip-version-check -q -r requirements-bench.txt
		echo "$$want" >$$stamp
	fi
	$(VENV)/bin/python tests/bench/bench.py --deploys $(BENCH_DEPLOYS) --combos $(BENCH_COMBOS) \
		--baselines "$(BENCH_BASELINES)" --fresh-workers $(BENCH_FRESH) --floor $(BENCH_FLOOR) $(if $(filter-out 0,$(BENCH_TLS)),--tls)

clean:
	find .cache -mindepth 1 -maxdepth 1 ! -name venvs -exec rm -rf {} + 2>/dev/null || true
	rm -rf .pytest_cache tests/output dist
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
