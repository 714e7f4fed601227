# ai-platform — run `make help`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STACK ?= dev
BASE ?= origin/main

.PHONY: help setup plan plan-diff check test test-unit test-scripts test-plan test-hosts test-engine test-tools tools fuzz lint docs preview bench clean

help: ## this list
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

setup: ## venv with pinned packages + Debian tools the tests use
	@scripts/setup.sh

plan: setup ## offline plan of STACK (dev|prod) into build/plan/STACK (desired state, no engine)
	@$(PY) -m stacks.plan $(STACK)

plan-diff: setup ## plan of BASE (git ref) vs the working tree for STACK
	@$(PY) -m stacks.plandiff --base $(BASE) --stack $(STACK)

check: setup ## validate the stack files offline (a review: provisioner files may be absent)
	@$(PY) -m stacks check Pulumi.dev.yaml Pulumi.prod.yaml

test: setup test-tools ## every test layer: unit, scripts, plan, hosts, engine
	@$(PY) -m pytest -q tests

fuzz: setup ## the generated hostile-config properties at random with many more examples (figures printed)
	@HYPOTHESIS_PROFILE=fuzz $(PY) -m pytest -q -p no:cacheprovider tests/unit/test_hostile_config.py tests/unit/test_config.py

test-unit: setup
	@$(PY) -m pytest -q tests/unit
test-scripts: setup
	@$(PY) -m pytest -q tests/scripts
test-plan: setup
	@$(PY) -m pytest -q tests/plan
test-hosts: setup test-tools
	@$(PY) -m pytest -q tests/hosts
test-engine: setup ## the Kubernetes layers under the real engine (builds the tools once: docs/engine.md)
	@$(PY) -m pytest -q tests/engine

# the control plane the SSH test hosts run (tests/standin), built once per version and cached
TEST_TOOLS := etcd etcdctl kube-apiserver kube-controller-manager kube-scheduler kubectl kwok
test-tools:
	@for t in $(TEST_TOOLS); do scripts/tools.sh $$t >/dev/null || exit 1; done

tools: ## build every pinned tool once (cached; `make tools &` or `nohup make tools &` builds it in the background)
	@scripts/tools.sh all

lint: setup ## ruff, mypy, shellcheck, actionlint (built once from its Go module, cached)
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .
	@$(VENV)/bin/mypy
	@shellcheck scripts/*.sh tests/standin/*.sh
	@$(PY) -m pytest -q tests/scripts -k shellcheck
	@"$$(scripts/tools.sh actionlint)" .github/workflows/*.yml

docs: setup ## regenerate docs/config.md and docs/config.schema.json from the model
	@$(PY) -m stacks schema

preview: setup ## the real `pulumi preview --diff` (an installed Pulumi CLI, else the built one)
	@scripts/preview.sh $(STACK)

bench: setup ## benchmarks (figures printed): plan time/memory, bootstrap over SSH test hosts (root)
	@$(PY) bench/plan.py
	@$(PY) bench/bootstrap.py

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
